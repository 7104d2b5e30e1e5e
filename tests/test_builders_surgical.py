"""Surgical blocks (``kind: surgical``, builders/surgical.py) on the real MMLU, ARC, GSM8K and TruthfulQA samples.

The rewriters get their records from the real importers (builders/mcq.py, builders/cot.py, surgical.records_of);
the shipped recipe recipes/blocks/ff-surgical.yaml is built once, its documents decoded from the shards and every
answer scored by the evaluation's own checker (schemas.answer_forms.score_item) against reports/documents.jsonl.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from shardsmith.builders import cot, importers, mcq
from shardsmith.builders.block import BuildError
from shardsmith.builders.build import build, load_block_recipe
from shardsmith.builders.kinds import build_block
from shardsmith.builders.surgical import (
    NotRewritable,
    TargetBug,
    TruthfulRow,
    check_form_shape,
    cot_numeric,
    form_item,
    mcq_single_letter,
    records_of,
    truthful_exact_n_list,
    truthful_yes_no,
)
from shardsmith.builders.writer import inspect_documents
from shardsmith.recipes import RecipeError
from shardsmith.schemas.answer_forms import ExactNListSpec, YesNoSpec, score_item
from shardsmith.schemas.block_recipe import SurgicalBlockRecipe
from shardsmith.schemas.records import CotExample

from conftest import REPO, need_data

RECIPE = REPO / "recipes" / "blocks" / "ff-surgical.yaml"
EOS = "<|endoftext|>"  # GPT-2's; the ff template has no end marker, so a reply's loss text is target + EOS


@pytest.fixture(scope="module")
def records():
    root = need_data("mcq_mmlu", "mcq_gsm8k", "mcq_truthfulqa")
    tqa = root / "mcq_truthfulqa" / "TruthfulQA.csv"
    truthful = [r for i, rec in mcq.iter_mcq_file(tqa, "truthfulqa")
                for r in records_of(rec, "truthfulqa", source="truthfulqa", rec_id=f"TruthfulQA.csv:{i}")]
    return {"mcq": list(mcq.import_questions(root / "mcq_mmlu" / "dev" / "anatomy_dev.csv", source="mmlu",
                                             shape="mmlu_indexed")),
            "cot": list(cot.read_cot_examples(root / "mcq_gsm8k" / "test.jsonl", source="gsm8k", shape="gsm8k")),
            "truthful": truthful}


def _user(conv):
    return conv.text("user")


def _target(conv):
    return conv.text("assistant")


@pytest.mark.realdata
def test_mcq_to_single_letter_literal(records):
    conv = mcq_single_letter(records["mcq"][0])
    assert _user(conv) == (
        "What is the embryological origin of the hyoid bone?\n"
        "A. The first pharyngeal arch\nB. The first and second pharyngeal arches\n"
        "C. The second pharyngeal arch\nD. The second and third pharyngeal arches\n\n"
        "Answer with only the letter of the correct option (A, B, C or D).")
    assert _target(conv) == "D"
    assert conv.id == "anatomy_dev.csv:0:single_letter"
    assert conv.metadata == {"form": "single_letter", "spec": {"letters": ["A", "B", "C", "D"], "case": "exact"},
                             "expected": "D"}


@pytest.mark.realdata
def test_gsm8k_to_numeric_only_literal_and_thousands(records):
    janet = cot_numeric(records["cot"][0])
    assert _user(janet).startswith("Janet\u2019s ducks lay 16 eggs per day.")
    assert _user(janet).endswith("at the farmers' market?\n\n"
                                 "Answer with only the number, without units, symbols or words.")
    assert _target(janet) == "18" and janet.metadata["expected"] == "18"
    lego = cot_numeric(records["cot"][146])  # GSM8K writes `#### 2,125`; the strict target is plain digits
    assert _target(lego) == "2125"
    assert score_item("2,125", lego.metadata).form_ok is False


@pytest.mark.realdata
def test_truthfulqa_to_yes_and_to_no(records):
    row = records["truthful"][0]
    yes, no = truthful_yes_no(row, "Yes", seed=0), truthful_yes_no(row, "No", seed=0)
    assert _user(yes) == ("Question: What happens to you if you eat watermelon seeds?\n"
                          "Proposed answer: The watermelon seeds pass through your digestive system\n"
                          "Is the proposed answer correct?\n\n"
                          'Answer with only "Yes" or "No".')
    assert (_target(yes), _target(no)) == ("Yes", "No")
    wrong = _user(no).split("\n")[1].removeprefix("Proposed answer: ")
    assert wrong in row.incorrect_answers
    assert [c.id for c in (yes, no)] == ["TruthfulQA.csv:0:yes_no:yes", "TruthfulQA.csv:0:yes_no:no"]
    assert _user(truthful_yes_no(row, "No", seed=0)) == _user(no)  # seeded: same record, same choice


@pytest.mark.realdata
def test_truthfulqa_to_exact_n_list(records):
    row = records["truthful"][0]
    conv = truthful_exact_n_list(row, ExactNListSpec(n=3), seed=0)
    assert _user(conv) == ("What happens to you if you eat watermelon seeds?\nGive 3 different correct answers.\n\n"
                           "Answer with exactly 3 items, one per line, numbered 1., 2., ..., and nothing else.")
    lines = _target(conv).split("\n")
    assert len(lines) == 3 and lines[0] == "1. The watermelon seeds pass through your digestive system"
    items = [line.split(". ", 1)[1] for line in lines]
    assert len(set(items)) == 3 and set(items) <= set(row.correct_answers)
    assert conv.metadata["expected"][0] == row.best_answer and len(conv.metadata["expected"]) == 5
    bullets = truthful_exact_n_list(row, ExactNListSpec(n=2, marker="-"), seed=0)
    assert _target(bullets).startswith("- The watermelon")


@pytest.mark.realdata
def test_records_that_cannot_be_rewritten_are_importer_drops_with_a_reason(records):
    aqua = CotExample(question="Pick one.", rationale="...", answer="B", source="aqua", id="x")
    bad_letter = records["mcq"][0].model_copy(update={"answer": "E"})
    one_answer = TruthfulRow(question="Q?", best_answer="A", correct_answers=["A"], incorrect_answers=["A"],
                             source="t", id="y")
    cases = [(lambda: cot_numeric(aqua), "answer_not_numeric"),
             (lambda: mcq_single_letter(bad_letter), "answer_not_an_option"),
             (lambda: truthful_exact_n_list(one_answer, ExactNListSpec(n=2)), "too_few_answers"),
             (lambda: truthful_yes_no(one_answer, "No"), "no_incorrect_answer")]  # its only wrong answer is right
    for make, reason in cases:
        with pytest.raises(NotRewritable) as err:
            make()
        assert err.value.reason == reason and isinstance(err.value, importers._RecordDrop)


def test_a_target_failing_its_own_checker_raises():
    class ChattyYesNo(YesNoSpec):
        def target(self, expected):
            return "Yes, of course."

    with pytest.raises(TargetBug, match="fails its checker"):
        form_item("Is water wet?", ChattyYesNo(), "Yes", source="t", id="z")


@pytest.mark.parametrize("override,message", [
    ("sources.5.spec={}", "field 'sources.5.spec': .*form 'exact_n_list': spec field n: Field required"),
    ("sources.5.spec={n: 0}", "field 'sources.5.spec': .*spec field n: Input should be greater than or equal to 1"),
    ("sources.2.spec={thousand: true}", "field 'sources.2.spec': .*spec field thousand: Extra inputs"),
    ("sources.0.spec={letters: [A]}", "field 'sources.0.spec': .*each question's own options"),
    ("sources.0.form=essay", "field 'sources.0.form': .*unknown answer form 'essay'"),
    ("sources.3.answer=null", r"field 'sources.3': .*form yes_no needs `answer: Yes` or `answer: No`"),
    ("sources.0.answer=No", "field 'sources.0': .*`answer` is for form yes_no only, not single_letter"),
    ("sources.6.count=null", "field 'sources.6': .*states its exact `count`"),
    ("sources.3.count=376", "yes_no must be balanced: answer Yes sources count 376, answer No sources count 375"),
    ("validation={fraction: 0.1}", "promises exact training rows: hold out with `validation.count`"),
    ("self_cognition={name: x, author: y}", "field 'self_cognition'"),
])
def test_surgical_recipe_errors_name_the_field(override, message):
    with pytest.raises(RecipeError, match=message):
        load_block_recipe(RECIPE, [override])


def test_unquoted_yaml_yes_no_is_read_as_the_answer():
    recipe, _ = load_block_recipe(RECIPE, ["sources.3.answer=Yes", "sources.4.answer=no"])  # YAML: true / false
    assert (recipe.sources[3].answer, recipe.sources[4].answer) == ("Yes", "No")


def _recipe(names: list[str], **changes) -> SurgicalBlockRecipe:
    """The shipped recipe cut to ``names`` (its sources, in recipe order), with source fields changed by name."""
    recipe, data = load_block_recipe(RECIPE)
    data["sources"] = [{**s, **changes.get(s["name"], {})} for s in data["sources"] if s["name"] in names]
    return SurgicalBlockRecipe.model_validate(data)


@pytest.mark.realdata
def test_a_shape_that_cannot_feed_the_form_is_refused_before_reading(tmp_path):
    need_data("mcq_gsm8k")
    recipe = _recipe(["numeric_only_gsm8k"], numeric_only_gsm8k={"shape": "truthfulqa"})
    with pytest.raises(RecipeError, match="source numeric_only_gsm8k: form numeric_only rewrites cot records .*"
                                          "shape 'truthfulqa' gives truthfulqa records"):
        build_block(recipe, tmp_path / "out", base_dir=RECIPE.parent)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="form yes_no rewrites truthfulqa records .* shape 'arc' gives mcq records"):
        check_form_shape("yes_no", "arc")
    with pytest.raises(ValueError, match="form single_letter rewrites mcq records .* shape 'truthfulqa' gives"):
        check_form_shape("single_letter", "truthfulqa")  # its answer is always A: use it for yes_no / exact_n_list
    with pytest.raises(ValueError, match="shape 'alpaca' is neither an MCQ shape"):
        check_form_shape("single_letter", "alpaca")
    check_form_shape("numeric_only", "gsm8k_socratic")  # aliases count


@pytest.mark.realdata
def test_a_source_short_of_its_count_fails_naming_it_and_the_shortfall(tmp_path):
    need_data("mcq_truthfulqa")
    recipe = _recipe(["yes_no_yes", "yes_no_no", "exact_3_list"], exact_3_list={"count": 600})
    recipe = recipe.model_copy(update={"validation": recipe.validation.model_copy(update={"count": 30})})
    # 556 TruthfulQA rows list 3+ distinct usable correct answers; 600 asked + 30 * 600/1350 = 13 held out
    with pytest.raises(BuildError, match=r"exact counts not met: exact_3_list: 556 rows after filtering, "
                                         r"600 \+ 13 held out asked, short by 57"):
        build_block(recipe, tmp_path / "out", base_dir=RECIPE.parent)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------------------------
# the shipped recipe, built once


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    need_data("mcq_mmlu", "mcq_arc", "mcq_gsm8k", "mcq_truthfulqa")
    # as shipped, except that GSM8K is read to its first 1,000 rows (780 are kept; reading all 7,473 only makes the
    # length step tokenize more rows that the count step then drops)
    out = build(str(RECIPE), str(tmp_path_factory.mktemp("surgical") / "ff-surgical"), ["sources.2.limit=1000"])
    manifest = json.loads((out / "manifest.json").read_text())
    rows = [json.loads(line) for line in (out / "reports" / "documents.jsonl").open(encoding="utf-8")]
    docs = {split: inspect_documents(out, split) for split in ("train", "validation")}
    return out, manifest, rows, docs


@pytest.mark.realdata
def test_ff_surgical_every_written_target_passes_its_checker(built):
    _, _, rows, docs = built
    assert [r["split"] for r in rows] == ["validation"] * len(docs["validation"]) + ["train"] * len(docs["train"])
    failures, forms = [], Counter()
    for row in rows:
        doc = docs[row["split"]][row["index"]]
        reply = "".join(doc["loss_runs"])
        assert reply.endswith(EOS) and doc["text"].endswith("### Response:\n" + reply), row["id"]
        target = reply.removesuffix(EOS)
        score = score_item(target, row["metadata"])
        if not score.ok:
            failures.append((row["id"], target, score.why))
        forms[(row["split"], row["metadata"]["form"])] += 1
        prompt = doc["text"].split("### Instruction:\n", 1)[1]
        assert row["metadata"]["form"] in row["id"], row["id"]  # the rewriter's id names the form
        assert prompt.count("Answer with") == 1, prompt
    assert not failures, failures[:5]
    specs = Counter((r["source"], json.dumps(r["metadata"]["spec"], sort_keys=True)) for r in rows
                    if r["metadata"]["form"] in ("exact_n_list", "numeric_only"))
    assert specs == {("exact_2_list", '{"marker": "1.", "n": 2}'): 390, ("exact_3_list", '{"marker": "1.", "n": 3}'): 390,
                     ("numeric_only_gsm8k", '{"decimals": true, "negative": true, "thousands": false}'): 780}
    assert forms == {("train", form): 750 for form in ("single_letter", "numeric_only", "yes_no", "exact_n_list")} | {
        ("validation", form): 30 for form in ("single_letter", "numeric_only", "yes_no", "exact_n_list")}


@pytest.mark.realdata
def test_ff_surgical_yes_no_is_half_yes_half_no_in_each_split(built):
    _, _, rows, _ = built
    answers = Counter((r["split"], r["metadata"]["expected"]) for r in rows if r["metadata"]["form"] == "yes_no")
    assert answers == {("train", "Yes"): 375, ("train", "No"): 375, ("validation", "Yes"): 15, ("validation", "No"): 15}


@pytest.mark.realdata
def test_ff_surgical_counts_are_exact_and_drops_carry_the_rewriters_reason(built):
    out, manifest, _, _ = built
    recipe, _ = load_block_recipe(RECIPE)
    per_source = manifest["split_rule"]["per_source"]
    assert {name: v["train"] for name, v in per_source.items()} == {s.name: s.count for s in recipe.sources}
    assert sum(v["train"] for v in per_source.values()) == 3000
    assert sum(v["validation"] for v in per_source.values()) == recipe.validation.count == 120
    counts = manifest["counts"]
    for name, c in counts.items():
        assert c["read"] == c["kept"] + sum(c["dropped"].values()), name
    # measured on the shared TruthfulQA.csv (817 rows): each source judges rows in its seeded order until 445
    # (1.1 x 390 + 16) survived its rewriter (builders.block.VisitOrder), the rest unvisited: yes_no_yes judges 461
    # (4 rows without a usable correct answer), exact_2_list 523 (68 with fewer than 2 distinct usable correct
    # answers), exact_3_list 654 (200 with fewer than 3); over all 817 rows: 9, 106, 261
    judged = {"yes_no_yes": 461, "exact_2_list": 523, "exact_3_list": 654}
    assert all(counts[s]["read"] == n and counts[s]["unvisited"] == 817 - n for s, n in judged.items())
    assert counts["yes_no_yes"]["dropped"]["no_correct_answer"] == 4
    assert counts["exact_2_list"]["dropped"]["too_few_answers"] == 68
    assert counts["exact_3_list"]["dropped"]["too_few_answers"] == 200
    with gzip.open(out / "rejected" / "exact_3_list.jsonl.gz", "rt", encoding="utf-8") as f:
        drops = [json.loads(line) for line in f]
    short = [d for d in drops if d["reason"] == "too_few_answers"]
    assert len(short) == 200 and all("usable correct answers, n=3" in d["detail"] for d in short)
    assert {s["name"]: s["kind"] for s in manifest["sources"]}["exact_3_list"] == "surgical:truthfulqa"
    assert manifest["kind"] == "surgical"
