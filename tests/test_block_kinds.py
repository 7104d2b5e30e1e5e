"""Build-level tests of the block kinds mcq, cot and repair (builders/kinds.py): each shipped recipe under
recipes/blocks/ builds (at test scale, through ``build(recipe, out, overrides)`` like ``shardsmith build --set``);
the written documents are decoded back (``writer.inspect_documents``) and checked literally, loss on the answer
only, and the manifest's counts add up. Then the kind-specific promises, each on every written document: Steel's
CoT never states the answer before its explanation, shuffled options keep the answer, repair counts are exact or
the build fails naming every short source, ``on_error`` drops or stops cleanly, ``validation.count`` is exact.

WanJuan exam has no public sample here: the rows below are written in its documented shape (q_type, q_main,
option_a..option_e, std_ans, answer, answer_detail) with the cases Steel's notebook handles: ``故选…`` tails, a
short explanation (non-CoT fallback), a 略 answer, an empty option, a missing std_ans.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO, need_data

from shardsmith.builders import mcq
from shardsmith.builders.block import BuildError
from shardsmith.builders.build import build, load_block_recipe
from shardsmith.builders.kinds import KINDS, read_sources
from shardsmith.builders.writer import inspect_documents
from shardsmith.recipes import RecipeError
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.records import McqQuestion

BLOCKS = REPO / "recipes" / "blocks"
GPT2 = "tokenizer.name=gpt2"  # the Steel recipes name Qwen's tokenizer; GPT-2 loads 4x faster and keeps <|im_end|>
CHATML = re.compile(r"<\|im_start\|>user\n(.*)<\|im_end\|>\n<\|im_start\|>assistant\n(.*)<\|im_end\|>", re.S)

PURE_WHY = ("A、空气中含有氮气、氧气等多种物质，属于混合物；B、蒸馏水只由水一种物质组成，属于纯净物；C、矿泉水中含有水和多种矿物质，"
            "属于混合物；D、食醋中含有醋酸和水，属于混合物。")
MULTI_WHY = "铁和铜都是金属，能导电；塑料和橡胶是绝缘体，不能导电。"
LONG_WHY = "第一步，仔细阅读题干，找出已知条件和所求问题。" * 40  # > 767 GPT-2 tokens: too_long_tokens


def _wj(q_main: str, options: list[str], std_ans, detail: str, q_type: str = "单选题") -> dict:
    row = {"q_type": q_type, "q_main": q_main, "std_ans": std_ans, "answer": std_ans, "answer_detail": detail,
           "grade": "初中", "major": "化学", "keypoint": ""}
    return {**row, **{f"option_{k}": v for k, v in zip("abcde", [*options, "", "", "", "", ""][:5])}}


WANJUAN = [
    _wj("下列物质中，属于纯净物的是（ ）", ["空气", "蒸馏水", "矿泉水", "食醋"], "B", PURE_WHY + "故选B。\n【点评】本题考查纯净物和混合物的判别。"),
    _wj("下列属于化学变化的是", ["冰雪融化", "纸张燃烧", "酒精挥发", "铁丝弯曲"], "B", "纸张燃烧。"),  # short: non-CoT form
    _wj("下列仪器中，可以直接加热的是", ["试管", "烧杯", "量筒", ""], "A",  # empty option_d: three options shown
        "试管可以直接加热；烧杯加热时需要垫石棉网；量筒不能加热。故选A"),
    _wj("水的化学式是", ["H2O", "CO2", "O2", "NaCl"], None, "水由氢元素和氧元素组成，化学式为H2O。"),  # missing std_ans
    _wj("计算题：求溶液的质量分数", ["5%", "10%", "15%", "20%"], "B", "解：过程略，代入公式即可。故选B"),  # 略: dropped
    _wj("下列物质能导电的是", ["铁", "塑料", "铜", "橡胶"], "A、C", MULTI_WHY + "故选AC", q_type="多选题"),
    _wj("下列说法正确的是", ["甲", "乙", "丙", ""], "D", "只有丁的说法符合题意，其余三项均不正确。"),  # D is the empty option
    _wj("下列变化属于物理变化的是", ["蜡烛燃烧", "铁锅生锈", "水结成冰", "食物腐败"], "", "水结成冰只是状态改变，没有新物质生成。"),  # empty
    _wj("下列关于实验步骤的说法正确的是", ["先检查气密性", "先装药品", "先加热", "先收集气体"], "A", LONG_WHY + "故选A"),
    _wj("下列物质中，属于纯净物的是（ ）", ["空气", "蒸馏水", "矿泉水", "食醋"], "B", PURE_WHY + "故选B。\n【点评】本题考查纯净物和混合物的判别。"),
]
BAD_ROWS = {"missing_answer": 2, "omitted_answer": 1, "answer_not_in_options": 1}  # rows 3, 7; 4; 6
ARC_LIMIT = 20


@pytest.fixture(scope="module")
def wanjuan(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wanjuan") / "exam.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in WANJUAN), encoding="utf-8")
    return path


def build_shipped(name: str, out: Path, overrides: list[str], wanjuan: Path | None = None) -> Path:
    """``shardsmith build recipes/blocks/NAME.yaml --out OUT --set tokenizer.name=gpt2 --set ...``."""
    with pytest.MonkeyPatch.context() as mp:
        if wanjuan is not None:
            mp.setenv("WANJUAN_EXAM", str(wanjuan))
        return build(str(BLOCKS / f"{name}.yaml"), str(out), [GPT2, *overrides])


def documents(out: Path) -> list[dict]:
    """Every written document of both splits, decoded."""
    return inspect_documents(out, "train") + inspect_documents(out, "validation")


def chatml(doc: dict) -> tuple[str, str]:
    """(user prompt, assistant reply) of a document in Qwen's ChatML, checking the loss is exactly on the reply."""
    m = CHATML.fullmatch(doc["text"].removeprefix("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"))
    assert m, doc["text"][:200]
    assert doc["loss_runs"] == [m.group(2) + "<|im_end|>"], doc["loss_runs"]  # the template end is the EOS
    return m.group(1), m.group(2)


def assert_counts_add_up(out: Path) -> dict:
    """read = kept + dropped per source, kept = train + validation per source and in the splits; the manifest."""
    man = ShardManifest.load(out)
    m = json.loads((out / "manifest.json").read_text())
    per_source = m["split_rule"]["per_source"]
    for name, c in m["counts"].items():
        assert c["read"] == c["kept"] + sum(c["dropped"].values()), name
        assert c["kept"] == sum(per_source.get(name, {}).values()), name
    for split in ("train", "validation"):
        assert man.splits[split].documents == sum(s[split] for s in per_source.values()), split
        assert len(inspect_documents(out, split)) == man.splits[split].documents, split
    return m


# ---------------------------------------------------------------------------------------------------------------
# steel-mcq: Steel-LLM's non-CoT exam form


@pytest.fixture(scope="module")
def steel_mcq(tmp_path_factory, wanjuan) -> Path:
    need_data("mcq_arc")
    return build_shipped("steel-mcq", tmp_path_factory.mktemp("steel") / "out",
                         [f"sources.english_choice.limit={ARC_LIMIT}"], wanjuan)


def test_steel_mcq_builds_literal_wanjuan_and_arc_documents(steel_mcq):
    pairs = dict(chatml(d) for d in documents(steel_mcq))
    assert pairs["以下是一道单选题:\n下列物质中，属于纯净物的是（ ）\nA. 空气\nB. 蒸馏水\nC. 矿泉水\nD. 食醋\n请给出答案。\n"] == (
        "B。" + PURE_WHY + "故选B。\n【点评】本题考查纯净物和混合物的判别。")
    # the empty option_d is not shown; a 多选题 keeps its letters, sorted, and Steel's fixed 单选题 header
    assert pairs["以下是一道单选题:\n下列仪器中，可以直接加热的是\nA. 试管\nB. 烧杯\nC. 量筒\n请给出答案。\n"] == (
        "A。试管可以直接加热；烧杯加热时需要垫石棉网；量筒不能加热。故选A")
    assert pairs["以下是一道单选题:\n下列物质能导电的是\nA. 铁\nB. 塑料\nC. 铜\nD. 橡胶\n请给出答案。\n"] == "AC。" + MULTI_WHY + "故选AC"
    assert pairs["以下是一道单选题:\n下列属于化学变化的是\nA. 冰雪融化\nB. 纸张燃烧\nC. 酒精挥发\nD. 铁丝弯曲\n请给出答案。\n"] == "B。纸张燃烧。"
    arc = ("The following is a multiple-choice question. Please choose the most suitable one among A, B, C and D as "
           "the answer to this question.\n\nA human CANNOT survive the loss of which of the following?\n"
           "A. The appendix\nB. The liver\nC. A lung\nD. A kidney\n")
    assert pairs[arc] == "B. The liver"
    assert len(pairs) == 4 + ARC_LIMIT


def test_steel_mcq_counts_add_up_and_drop_reasons_are_counted(steel_mcq):
    m = assert_counts_add_up(steel_mcq)
    assert m["counts"]["wanjuan_exam"] == {"read": 10, "kept": 4, "dropped": {
        **BAD_ROWS, "too_long_tokens": 1, "duplicate": 1}}
    assert m["counts"]["english_choice"] == {"read": ARC_LIMIT, "kept": ARC_LIMIT, "dropped": {}}
    assert [s["kind"] for s in m["sources"]] == ["mcq:wanjuan", "mcq:arc"]
    import gzip

    with gzip.open(steel_mcq / "rejected" / "wanjuan_exam.jsonl.gz", "rt", encoding="utf-8") as f:
        rejected = [json.loads(x) for x in f]
    assert Counter(r["reason"] for r in rejected) == Counter(m["counts"]["wanjuan_exam"]["dropped"])
    missing = next(r for r in rejected if r["id"] == "exam.jsonl:3")
    assert (missing["reason"], missing["step"]) == ("missing_answer", "import")
    assert missing["detail"].endswith("exam.jsonl: record 3: field 'std_ans' is empty")
