"""The TRUTH-list bench, the format bench (answer-form checkers as evaluators) and CMMLU's China specific group."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import need_data
from eval_fixtures import bench_folder, tiny_model

FILES = {
    "mcq_truthfulqa": ["TruthfulQA.csv"],
    "mcq_mmlu": ["test/anatomy_test.csv"],
    "mcq_gsm8k": ["test.jsonl"],
    "mcq_cmmlu": ["test/anatomy.csv", "test/chinese_history.csv", "test/ancient_chinese.csv"],
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    shared = need_data(*FILES)
    tmp = tmp_path_factory.mktemp("evalmore")
    return shared, tiny_model(tmp / "model"), bench_folder(shared, tmp / "bench", FILES)


@pytest.fixture(scope="module")
def lm(env):
    from shardsmith.evaluation.lm import CausalLM

    return CausalLM(env[1], batch_size=16)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]


# --- the TRUTH-list rule ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("response,accepted,rejected,correct,matched,vetoed_by", [
    ("It is Paris.", ["Paris"], [], True, "Paris", None),  # contains
    ("paris", ["Paris"], [], True, "Paris", None),  # equals, case-folded
    ("The answer is 42", ["4"], [], False, None, None),  # whole tokens: 4 is not in 42
    ("eiffel   tower!", ["The Eiffel Tower"], [], True, "The Eiffel Tower", None),  # articles, punctuation, spaces
    ("Tower Eiffel", ["Eiffel Tower"], [], False, None, None),  # a contiguous run, in order
    ("Lyon, then Paris", ["Marseille", "Paris", "Lyon"], [], True, "Paris", None),  # first accepted in list order
    ("Paris or Lyon", ["Paris"], ["Lyon"], False, "Paris", "Lyon"),  # a FALSE answer vetoes
    ("It is not in Paris", ["not in Paris"], ["in Paris"], True, "not in Paris", None),  # FALSE inside the TRUE one
    ("首都是北京。", ["北京"], [], True, "北京", None),  # CJK: one token per character
    ("???", ["!!"], [], False, None, None),  # an answer that normalises to nothing never matches
    ("", ["Paris"], [], False, None, None),
])
def test_truth_match_rule(response, accepted, rejected, correct, matched, vetoed_by):
    from shardsmith.evaluation.truth_list import truth_match

    verdict = truth_match(response, accepted, rejected)
    assert (verdict.correct, verdict.matched, verdict.vetoed_by) == (correct, matched, vetoed_by)


def test_truth_list_from_truthfulqa_csv(env):
    """accepted = Best Answer + Correct Answers split on ';' (no "I have no comment" unless it is the only one),
    FALSE = Incorrect Answers; categories from the CSV."""
    from shardsmith.evaluation import load_items

    shared, _, bench = env
    items = load_items("truth_list", data=bench)
    with open(shared / "mcq_truthfulqa" / "TruthfulQA.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(items) == len(rows) == 817
    first, row = items[0], rows[0]
    assert first.prompt == f"Q: {row['Question']}\nA:" and first.subject == row["Category"]
    assert first.gold["accepted"][0] == row["Best Answer"]
    assert set(first.gold["accepted"]) == {a.strip() for a in row["Correct Answers"].split(";")}
    assert set(first.gold["rejected"]) == {a.strip() for a in row["Incorrect Answers"].split(";")}
    only_no_comment = [it for it in items if it.gold["accepted"] == ["I have no comment"]]
    assert len(only_no_comment) == 9
    assert not any("I have no comment" in it.gold["accepted"] for it in items if it not in only_no_comment)


# --- the format bench: checkers as evaluators ---------------------------------------------------------------------
PLANTED = [  # (form, spec, expected, generation, format_ok, correct)
    ("yes_no", {}, "Yes", "Yes", True, True),
    ("yes_no", {}, "Yes", "No.\n", True, False),
    ("yes_no", {}, "No", "Yes, because it is.", False, False),
    ("single_letter", {"letters": ["A", "B", "C", "D"]}, "B", "B", True, True),
    ("single_letter", {"letters": ["A", "B", "C", "D"]}, "B", "C", True, False),
    ("single_letter", {"letters": ["A", "B", "C", "D"]}, "B", "(B)", False, False),
    ("single_letter", {"letters": ["A", "B", "C", "D"]}, "B", "Answer: B", False, False),
    ("numeric_only", {}, "42", "42", True, True),
    ("numeric_only", {}, "42", "42 apples", False, False),
    ("exact_n_list", {"n": 2}, ["red", "blue", "green"], "1. Red\n2. green", True, True),
    ("exact_n_list", {"n": 2}, ["red", "blue", "green"], "1. red\n2. pink", True, False),
    ("exact_n_list", {"n": 2}, ["red", "blue", "green"], "Sure:\n1. red\n2. blue", False, False),
    ("numeric_only", {}, None, "7", True, None),  # no answer key: counts for format_ok only
]


def test_checkers_as_evaluators_on_planted_generations():
    """Rows scored as the format bench scores a generation, summarised into results.json: known compliance and
    correctness per form."""
    from shardsmith.evaluation.run import GENERATIONS, summarise

    gen = GENERATIONS["surgical"]
    rows = []
    for i, (form, spec, expected, text, form_ok, correct) in enumerate(PLANTED):
        gold = {"form": form, "spec": spec, "expected": expected}
        chosen = gen.chosen(gold, text)
        assert (chosen["form_ok"], chosen["correct"]) == (form_ok, correct), (text, chosen["why"])
        rows.append({"benchmark": "surgical", "id": str(i), "subject": form, "gold": gold, "chosen": chosen,
                     "generated": text})
    entry = summarise(rows, ["surgical"])["surgical"]
    assert entry["primary"] == "format_ok"
    assert entry["metrics"]["format_ok"]["n"] == 13 and entry["metrics"]["format_ok"]["acc"] == 8 / 13
    assert entry["metrics"]["correct"]["n"] == 12 and entry["metrics"]["correct"]["acc"] == 4 / 12
    forms = entry["forms"]
    assert {f: (m["format_ok"]["acc"], m["correct"]["acc"]) for f, m in forms.items()} == {
        "yes_no": (2 / 3, 1 / 3), "single_letter": (2 / 4, 1 / 4), "numeric_only": (2 / 3, 1 / 2),
        "exact_n_list": (2 / 3, 1 / 3)}
    assert forms["numeric_only"]["format_ok"]["n"] == 3 and forms["numeric_only"]["correct"]["n"] == 2


def test_default_format_set_is_the_surgical_builders(env):
    """The default split is built by builders/surgical.py's rewriters: every form, the block's prompts, and each
    item's own strict target passes its checker."""
    from shardsmith.builders.mcq import import_questions
    from shardsmith.builders.surgical import mcq_single_letter
    from shardsmith.evaluation import load_items
    from shardsmith.schemas.answer_forms import parse_spec

    _, _, bench = env
    items = load_items("surgical", data=bench, limit=3)
    forms = [it.subject for it in items]
    assert {f: forms.count(f) for f in set(forms)} == {"single_letter": 3, "numeric_only": 3, "yes_no": 6,
                                                        "exact_n_list": 3}
    yes_no = [it.gold["expected"] for it in items if it.subject == "yes_no"]
    assert sorted(yes_no) == ["No"] * 3 + ["Yes"] * 3
    q = next(iter(import_questions(bench / "mcq_mmlu" / "test" / "anatomy_test.csv", source="mmlu")))
    assert items[0].prompt == mcq_single_letter(q).messages[0].content and items[0].chat
    for it in items:
        spec = parse_spec(it.gold["form"], it.gold["spec"])
        target = spec.target(it.gold["expected"][:spec.n] if it.subject == "exact_n_list" else it.gold["expected"])
        assert spec.check(target, it.gold["expected"]).ok


# --- end to end on a tiny model -----------------------------------------------------------------------------------
def test_truth_list_and_format_bench_end_to_end(env, lm, tmp_path):
    from shardsmith.evaluation import evaluate
    from shardsmith.evaluation.truth_list import truth_match
    from shardsmith.schemas.answer_forms import score

    _, model, bench = env
    results = evaluate(model, ["truth_list", "surgical"], 0, tmp_path, data=bench, limit=2, max_new_tokens=6,
                       progress=False, lm=lm)["benchmarks"]
    rows = _rows(tmp_path)
    truth = [r for r in rows if r["benchmark"] == "truth_list"]
    assert len(truth) == 2 and results["truth_list"]["primary"] == "truth_match"
    for r in truth:  # the row holds the generation, the accepted list and the matched answer
        verdict = truth_match(r["generated"], r["gold"]["accepted"], r["gold"]["rejected"])
        assert "\n" not in r["generated"] and r["chosen"]["matched"] == verdict.matched
    hits = [truth_match(r["generated"], r["gold"]["accepted"], r["gold"]["rejected"]).correct for r in truth]
    assert results["truth_list"]["metrics"]["truth_match"]["acc"] == sum(hits) / 2
    form_rows = [r for r in rows if r["benchmark"] == "surgical"]
    assert len(form_rows) == 10 and set(results["surgical"]["forms"]) == {"single_letter", "numeric_only", "yes_no",
                                                                          "exact_n_list"}
    ok = [score(r["generated"], r["gold"]["form"], r["gold"]["spec"], r["gold"]["expected"]).form_ok
          for r in form_rows]
    assert results["surgical"]["metrics"]["format_ok"]["acc"] == sum(ok) / len(ok)
    assert results["surgical"]["metrics"]["correct"]["n"] == 10


def test_custom_files_end_to_end(env, lm, tmp_path):
    """``--split custom``: TRUTH-list JSON lines and a format set (one row a documents.jsonl answer-key row with the
    prompt added)."""
    from shardsmith.evaluation import evaluate

    _, model, _ = env
    root = tmp_path / "bench"
    (root / "truth_list").mkdir(parents=True)
    (root / "truth_list" / "mine.jsonl").write_text(
        '{"id": "cap", "prompt": "Q: Capital of France?\\nA:", "accepted": ["Paris"], "rejected": ["Lyon"], '
        '"category": "geography"}\n{"prompt": "2 + 2 =", "accepted": ["4", "four"], "category": "arithmetic"}\n',
        encoding="utf-8")
    (root / "surgical").mkdir()
    (root / "surgical" / "set.jsonl").write_text(
        '{"id": "a", "prompt": "Is water wet?\\n\\nAnswer with only \\"Yes\\" or \\"No\\".", "form": "yes_no", '
        '"expected": "Yes"}\n'
        '{"prompt": "How many legs has a cat?", "split": "train", "index": 0, "source": "s", "id": "b", '
        '"metadata": {"form": "numeric_only", "spec": {"decimals": false}, "expected": "4"}}\n', encoding="utf-8")
    results = evaluate(model, ["truth_list", "surgical"], 1, tmp_path / "out", split="custom", data=root, limit=None,
                       max_new_tokens=4, progress=False, lm=lm)["benchmarks"]
    assert set(results["truth_list"]["categories"]) == {"geography", "arithmetic"}
    assert set(results["surgical"]["forms"]) == {"yes_no", "numeric_only"}
    rows = {r["id"]: r for r in _rows(tmp_path / "out")}
    assert rows["cap"]["gold"] == {"accepted": ["Paris"], "rejected": ["Lyon"]}
    assert rows["b"]["gold"]["spec"] == {"thousands": False, "decimals": False, "negative": True}


def test_chat_prompt_uses_the_models_template(lm):
    assert lm.chat_prompt("Is it?") == "Is it?\n"  # GPT-2's tokenizer has no chat template
    lm.tokenizer.chat_template = "{% for m in messages %}<|user|>\n{{ m['content'] }}\n{% endfor %}<|assistant|>\n"
    try:
        assert lm.chat_prompt("Is it?") == "<|user|>\nIs it?\n<|assistant|>"  # jinja drops the final newline
    finally:
        lm.tokenizer.chat_template = None


@pytest.mark.parametrize("bench_name,folder,text,message", [
    ("truth_list", "truth_list", '{"prompt": "p", "accepted": ["a"]}\n{"prompt": "q"}\n',
     "bad.jsonl: line 2: field 'accepted' must be a list of strings"),
    ("truth_list", "truth_list", '{"prompt": "p", "answers": ["a"]}\n', "bad.jsonl: line 1: unknown field 'answers'"),
    ("truth_list", "truth_list", '{"prompt": "p", "accepted": ["a"]}\n{"prompt": \n',
     "bad.jsonl: line 2: Expecting value"),
    ("truth_list", "mcq_truthfulqa", "Question,Best Answer,Incorrect Answers\nq?,yes,no\n",
     "TruthfulQA.csv: row 1: no field 'Correct Answers'"),
    ("surgical", "surgical", '{"prompt": "p", "form": "haiku"}\n',
     "bad.jsonl: line 1: field 'form'/'spec': unknown answer form 'haiku'"),
    ("surgical", "surgical", '{"prompt": "p", "form": "exact_n_list", "spec": {"n": 0}}\n',
     "bad.jsonl: line 1: field 'form'/'spec': form 'exact_n_list': spec field n"),
    ("surgical", "surgical", '{"form": "yes_no"}\n', "bad.jsonl: line 1: field 'prompt' must be a non-empty string"),
])
def test_bad_files_are_one_line_errors(env, tmp_path, capsys, bench_name, folder, text, message):
    from shardsmith.cli import main

    _, model, _ = env
    (tmp_path / "bench" / folder).mkdir(parents=True)
    csv_file = folder == "mcq_truthfulqa"
    (tmp_path / "bench" / folder / ("TruthfulQA.csv" if csv_file else "bad.jsonl")).write_text(text, encoding="utf-8")
    capsys.readouterr()
    assert main(["eval", str(model), "--bench", bench_name, "--split", "validation" if csv_file else "custom",
                 "--data", str(tmp_path / "bench"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1 and message in err, err


# --- CMMLU China specific -----------------------------------------------------------------------------------------
def test_cmmlu_china_specific_counted_on_the_real_sample():
    """Every CMMLU test item of the 15 China specific subjects counts in the group (and in its own domain too);
    the count is checked against the CSV files read directly."""
    from shardsmith.evaluation import load_items
    from shardsmith.evaluation.domains import CMMLU_EXTRA_DOMAINS
    from shardsmith.evaluation.run import summarise

    root = need_data("mcq_cmmlu")
    china = set(CMMLU_EXTRA_DOMAINS["china_specific"])
    assert len(china) == 15
    expected = 0
    for subject in china:
        with open(root / "mcq_cmmlu" / "test" / f"{subject}.csv", encoding="utf-8", newline="") as f:
            expected += sum(1 for _ in csv.DictReader(f))
    items = load_items("cmmlu", data=root)
    rows = [{"benchmark": "cmmlu", "id": it.id, "subject": it.subject, "gold": it.gold,
             "chosen": {"letter": it.gold if it.subject in china else (it.gold + 1) % 4}} for it in items]
    domains = summarise(rows, ["cmmlu"])["cmmlu"]["domains"]
    assert domains["china_specific"]["acc_letter"] == {**domains["china_specific"]["acc_letter"], "acc": 1.0,
                                                       "n": expected}
    assert set(domains) == {"stem", "humanities", "social_sciences", "other", "china_specific"}
    assert sum(domains[d]["acc_letter"]["n"] for d in ("stem", "humanities", "social_sciences", "other")) == len(items)


def test_cmmlu_china_specific_end_to_end(env, lm, tmp_path):
    """A tiny-model run over anatomy (STEM), chinese_history (Humanities) and ancient_chinese (Social Science):
    the last two also count under china_specific."""
    from shardsmith.evaluation import evaluate, markdown_table

    _, model, bench = env
    results = evaluate(model, ["cmmlu"], 0, tmp_path, data=bench, limit=2, progress=False, lm=lm)["benchmarks"]
    domains = results["cmmlu"]["domains"]
    assert {d: m["acc_letter"]["n"] for d, m in domains.items()} == {
        "stem": 2, "humanities": 2, "social_sciences": 2, "china_specific": 4}
    rows = [r for r in _rows(tmp_path) if r["subject"] in ("chinese_history", "ancient_chinese")]
    assert domains["china_specific"]["acc_letter"]["acc"] == sum(r["chosen"]["letter"] == r["gold"] for r in rows) / 4
    assert "| cmmlu / china_specific | acc_letter |" in markdown_table(results)


# --- a built surgical block ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def block_root(env, tmp_path_factory):
    """A small build of the shipped ff-surgical recipe (yes/no both ways and numeric-only, 6 held out) at
    ROOT/surgical_block."""
    from shardsmith.builders.build import load_block_recipe
    from shardsmith.builders.kinds import build_block
    from shardsmith.schemas.block_recipe import SurgicalBlockRecipe

    need_data("mcq_truthfulqa", "mcq_gsm8k")
    recipe_path = Path(__file__).resolve().parents[1] / "recipes" / "blocks" / "ff-surgical.yaml"
    _, data = load_block_recipe(recipe_path)
    keep = {"yes_no_yes": {"count": 6}, "yes_no_no": {"count": 6}, "numeric_only_gsm8k": {"count": 6, "limit": 40}}
    data["sources"] = [{**s, **keep[s["name"]]} for s in data["sources"] if s["name"] in keep]
    data["validation"] = {"count": 6}
    root = tmp_path_factory.mktemp("blockroot")
    build_block(SurgicalBlockRecipe.model_validate(data), root / "surgical_block", base_dir=recipe_path.parent)
    return root


def test_block_split_reads_the_built_blocks_prompts_and_answer_key(block_root):
    """Each item is a held-out document's templated prompt and its documents.jsonl answer key; the block's own
    targets, scored as generations, are 100 % compliant and correct."""
    from shardsmith.builders.writer import inspect_documents
    from shardsmith.evaluation import load_items
    from shardsmith.evaluation.run import GENERATIONS, summarise

    block = block_root / "surgical_block"
    items = load_items("surgical", data=block_root, split="block")
    keys = [json.loads(x) for x in (block / "reports" / "documents.jsonl").read_text().splitlines()]
    keys = [k for k in keys if k["split"] == "validation"]
    docs = inspect_documents(block, "validation")
    assert len(items) == len(keys) == len(docs) == 6
    rows = []
    for item, key, doc in zip(items, keys, docs):
        reply = "".join(doc["loss_runs"])
        assert not item.chat and item.id == key["id"] and item.prompt + reply == doc["text"]
        assert item.prompt.endswith("### Response:\n") and item.gold["expected"] == key["metadata"]["expected"]
        target = reply.removesuffix("<|endoftext|>")
        rows.append({"benchmark": "surgical", "id": item.id, "subject": item.subject, "gold": item.gold,
                     "chosen": GENERATIONS["surgical"].chosen(item.gold, target), "generated": target})
    metrics = summarise(rows, ["surgical"])["surgical"]["metrics"]
    assert metrics["format_ok"]["acc"] == metrics["correct"]["acc"] == 1.0 and metrics["correct"]["n"] == 6


def test_block_split_end_to_end(env, lm, block_root, tmp_path):
    from shardsmith.evaluation import evaluate
    from shardsmith.schemas.answer_forms import score

    results = evaluate(env[1], ["surgical"], 0, tmp_path, split="block", data=block_root, max_new_tokens=4,
                       progress=False, lm=lm)["benchmarks"]["surgical"]
    assert results["metrics"]["format_ok"]["n"] == 6 and set(results["forms"]) == {"yes_no", "numeric_only"}
    rows = _rows(tmp_path)
    assert [r["chosen"]["form_ok"] for r in rows] == [
        score(r["generated"], r["gold"]["form"], r["gold"]["spec"], r["gold"]["expected"]).form_ok for r in rows]
