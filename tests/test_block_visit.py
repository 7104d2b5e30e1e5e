"""Sources that keep a fixed number of rows (``count``; a distill pool's share) are read in a seeded order and only a
prefix of it is judged (``builders.block.VisitOrder``: records until enough survived import): the rows written must
be exactly those that judging every record keeps — with the default prefix, with every record judged, with exactly
the target surviving import, and with a prefix too short for its target (the build then judges the source whole).
Built on the real ARC (two files: the order runs across them) and TruthfulQA samples with small counts."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import pytest
from conftest import REPO, need_data

from shardsmith.builders import kinds
from shardsmith.builders.build import load_block_recipe
from shardsmith.builders.distill import plan_pool, pool_of_ordered, pool_order
from shardsmith.builders.kinds import build_block
from shardsmith.builders.writer import inspect_documents
from shardsmith.schemas.block_recipe import SurgicalBlockRecipe

RECIPE = REPO / "recipes" / "blocks" / "ff-surgical.yaml"
COUNTS = {"single_letter_arc": 40, "exact_3_list": 40}  # exact_3_list: a third of TruthfulQA rows are dropped


def _recipe() -> SurgicalBlockRecipe:
    _, data = load_block_recipe(RECIPE)
    data["sources"] = [{**s, "count": COUNTS[s["name"]]} for s in data["sources"] if s["name"] in COUNTS]
    data["validation"] = {"count": 8}
    return SurgicalBlockRecipe.model_validate(data)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """name -> (documents of both splits, manifest counts), one build per prefix size."""
    need_data("mcq_arc", "mcq_truthfulqa")
    out = {}
    for name, margin, extra in [("default", kinds.VISIT_MARGIN, kinds.VISIT_EXTRA), ("all", 1, 10**9),
                                ("target_only", 1, 0), ("half", 0.5, 0), ("none", 0, 0)]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(kinds, "VISIT_MARGIN", margin)
            mp.setattr(kinds, "VISIT_EXTRA", extra)
            block = build_block(_recipe(), tmp_path_factory.mktemp(name) / "out", base_dir=RECIPE.parent)
        docs = {split: [d["text"] for d in inspect_documents(block, split)] for split in ("train", "validation")}
        out[name] = docs, json.loads((block / "manifest.json").read_text())["counts"]
    return out


def test_a_judged_prefix_writes_the_rows_judging_every_record_writes(builds):
    docs_all, counts_all = builds["all"]
    assert len(docs_all["train"]) == sum(COUNTS.values()) and len(docs_all["validation"]) == 8
    assert all("unvisited" not in c for c in counts_all.values())
    for name in ("default", "target_only", "half", "none"):
        assert builds[name][0] == docs_all, name


def test_counts_add_up_over_the_visited_records_and_name_the_unvisited(builds):
    _, counts = builds["default"]
    goal = math.ceil(kinds.VISIT_MARGIN * (40 + 4)) + kinds.VISIT_EXTRA  # 4: its held-out share
    arc = counts["single_letter_arc"]  # every ARC record survives import: the first part is the goal, no more
    assert arc["read"] == goal and arc["read"] + arc["unvisited"] == 869
    # exact_3_list's importer drops a third of TruthfulQA's rows: it reads on, in parts sized by that rate, until
    # the goal survived import — far fewer than its 817 rows
    short3 = counts["exact_3_list"]
    assert short3["read"] - short3["dropped"]["too_few_answers"] >= goal and short3["read"] < 817 - 400
    for c in counts.values():
        assert c["read"] == c["kept"] + sum(c["dropped"].values())
    # exactly the target survives import, and no later filter drops: enough, and nothing more is read
    _, exact = builds["target_only"]
    assert exact["single_letter_arc"]["read"] == 44 and "unvisited" in exact["exact_3_list"]
    # half the target survives import: short, so a second pass judges a prefix grown by the shortfall (44 / 22 and
    # a tenth): enough, and still not every record
    _, short = builds["half"]
    assert short["single_letter_arc"]["read"] == math.ceil(22 * Fraction(44 / 22 * 1.1))
    assert all("unvisited" in short[s] and short[s]["kept"] == exact[s]["kept"] for s in COUNTS)
    # no record judged at first: nothing to size a second prefix by, so the build judges every record
    _, none = builds["none"]
    assert all("unvisited" not in none[s] and none[s] == builds["all"][1][s] for s in COUNTS)


def test_more_visit_grows_a_short_sources_goal_by_its_shortfall():
    scale = kinds.more_visit({}, {"a": (100, 50), "b": (10, 0)})
    assert scale["a"] == pytest.approx(2.2) and math.isinf(scale["b"])
    assert kinds.more_visit(scale, {"a": (100, 80)}) == {"a": pytest.approx(2.2 * 1.25 * 1.1), "b": math.inf}


def test_plan_pool_takes_the_head_of_each_sources_seeded_order():
    pools = {"a": [_q("a", i) for i in range(50)], "b": [_q("b", i) for i in range(30)]}
    pool = plan_pool(pools, {"a": 3, "b": 1}, 8, seed=5)
    heads = {k: [v[i].id for i in pool_order(len(v), 5, k)] for k, v in pools.items()}
    assert [q.id for q in pool] == heads["a"][:6] + heads["b"][:2]
    ordered = {k: [v[i] for i in pool_order(len(v), 5, k)] for k, v in pools.items()}
    assert [q.id for q in pool_of_ordered(ordered, {"a": 3, "b": 1}, 8)] == [q.id for q in pool]


def _q(source: str, i: int):
    from shardsmith.schemas.records import Conversation, Message

    return Conversation(messages=[Message(role="user", content=f"{source} {i}?"), Message(role="assistant", content="!")],
                        source=source, id=f"{source}-{i}")
