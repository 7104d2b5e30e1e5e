"""Memphis-CoT's self-teaching loop (``shardsmith self-teach``) at tiny scale, end to end, nothing mocked.

A GSM8K-shaped question file -> a ``kind: cot`` block (the real builder) -> a tiny GPT-2 SFT'd on it by the trainer
(the loop's ``init``, as Memphis starts from its SFT model) -> two self-teaching rounds: sampled generation, answers
checked by ``parse_tinycot`` against the gold ``####`` number, (correct, incorrect) pairs written as a preference
block, one trained stage (``objective: rank``: rank loss + CE, Memphis' objective), a SLERP average. The SFT is short on
purpose: the model writes the TinyCoT format but is still wrong on some samples, so both kinds of answer occur.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F
from shardsmith.recipes import RecipeError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAMES = ["Ann", "Tom", "Mia", "Leo", "Sam", "Ava", "Max", "Zoe"]
THINGS = ["pens", "cups", "books", "coins"]


def gsm8k_records(n: int = 8, seed: int = 7) -> list[dict]:
    """GSM8K's shape (``question``; ``answer`` = solution lines, then ``#### <number>``), small sums."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b, what = rng.randint(1, 4), rng.randint(1, 4), THINGS[i % len(THINGS)]
        out.append({"question": f"{NAMES[i]} has {a} {what} and gets {b} more. How many {what}?",
                    "answer": f"{a} + {b} = {a + b}.\n#### {a + b}"})
    return out


def cot_tokenizer(folder: Path, records: list[dict]) -> Path:
    """A byte-level BPE trained on the TinyCoT renderings of the questions (so a tiny model learns the format in a
    few dozen steps), saved as an AutoTokenizer folder like ``trainer_fixtures.build_tokenizer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [f"### User:\n{r['question']}\n\n### Rationale:\n{r['answer'].replace('####', '### Answer:')}"
              for r in records] * 4
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=320, special_tokens=[F.EOS], show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=F.EOS, bos_token=F.EOS,
                            unk_token=F.EOS).save_pretrained(folder)
    return folder


def self_teach_recipe(root: Path, init: Path, **self_teach) -> str:
    extra = "".join(f"\n  {k}: {json.dumps(v)}" for k, v in self_teach.items())
    path = root / "self-teach.yaml"
    path.write_text(f"""
name: tiny-memphis
seed: 5
model: {{attn_implementation: eager}}
engine: {{zero_stage: 0, precision: fp32}}
self_teach:
  init: {init}
  rounds: 2
  questions: {{block: {root / 'cot.yaml'}}}
  generation: {{samples: 8, max_new_tokens: 32, batch_size: 64}}
  merge: {{t: 0.5, toward: previous}}{extra}
stage:
  objective: rank
  data: {{val_rows: 0}}
  seq_len: 64
  micro_batch_size: 4
  max_steps: 2
  optimizer: {{lr: 1.0e-3}}
""")
    return str(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from shardsmith.builders.build import build
    from shardsmith.selfteach import self_teach
    from shardsmith.trainer.runner import train

    root = tmp_path_factory.mktemp("selfteach")
    records = gsm8k_records()
    (root / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    tok = cot_tokenizer(root / "tok", records)
    (root / "cot.yaml").write_text(f"""
kind: cot
name: tiny-cot
seed: 1
tokenizer: {{name: {tok}}}
validation: {{fraction: 0}}
decontaminate: false
sources:
  - {{name: gsm8k, paths: [{root / 'questions.jsonl'}], shape: gsm8k}}
""")
    cot = build(str(root / "cot.yaml"), str(root / "cot-block"))
    (root / "sft.yaml").write_text(F.sft_recipe("sft", cot, seq_len=64, steps=60, lr="1.0e-2", val_rows=0))
    train(str(root / "sft.yaml"), str(root / "sft"))
    init = root / "sft" / "sft" / "hf" / "final"
    recipe = self_teach_recipe(root, init)
    out = root / "out"
    infos = self_teach(recipe, str(out))
    gold = {r["question"]: r["answer"].rpartition("####")[2].strip() for r in records}
    return {"root": root, "out": out, "recipe": recipe, "infos": infos, "init": init, "gold": gold}


def test_two_rounds_keep_each_rounds_data_and_weights_named(run):
    from shardsmith.schemas.manifest import ShardManifest

    out, infos = run["out"], run["infos"]
    assert [i["round"] for i in infos] == [1, 2]
    start = run["init"]
    for info in infos:
        rdir = out / f"round-{info['round']}"
        rows = [json.loads(x) for x in (rdir / "generations.jsonl").read_text().splitlines()]
        assert len(rows) == info["generations"] == 8 * 8
        assert info["correct"] + info["incorrect"] + info["invalid"] + info["not_generated"] == 64
        assert info["correct"] > 0 and info["incorrect"] > 0 and info["pairs"] > 0
        manifest = ShardManifest.load(rdir / "pairs-block")
        assert manifest.kind == "preference" and manifest.pair_layout == "adjacent:chosen,rejected"
        assert manifest.pairs["train"] == info["pairs"] and info["pairs_in_block"] == manifest.pairs
        assert (rdir / "train" / "hf" / "final" / "config.json").is_file()
        assert json.loads((rdir / "train" / "stage.json").read_text())["parent"] == str(start)
        merge = json.loads((rdir / "merged" / "merge.json").read_text())
        assert merge["a"] == str(rdir / "train" / "hf" / "final") and merge["b"] == str(start) and merge["t"] == 0.5
        assert info["status"] == "done" and info["weights"] == str(rdir / "merged")
        assert info["start"] == str(start)
        start = rdir / "merged"
    assert infos[0]["weights_digest"] != infos[1]["weights_digest"]
    summary = json.loads((out / "self_teach.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [1, 2]


def _pairs_of(block: Path) -> list[tuple[dict, dict]]:
    from shardsmith.builders.writer import inspect_documents

    docs = inspect_documents(block, "train")
    assert len(docs) % 2 == 0
    return list(zip(docs[0::2], docs[1::2]))


def test_every_written_pair_is_a_correct_chosen_and_an_incorrect_rejected(run):
    """Decode every pair the blocks hold and check both sides again with the checker, against the test's own gold."""
    from shardsmith.builders.cot import parse_tinycot
    from shardsmith.selfteach import answer_matches

    for info in run["infos"]:
        pairs = _pairs_of(Path(info["pairs_block"]))
        assert len(pairs) == info["pairs"] > 0
        for chosen, rejected in pairs:
            texts = [d["text"].removesuffix(F.EOS) for d in (chosen, rejected)]
            questions = [t.split("### User:\n", 1)[1].split("\n\n### Rationale:", 1)[0] for t in texts]
            assert questions[0] == questions[1]
            gold = run["gold"][questions[0]]
            answers = [parse_tinycot(t) for t in texts]
            assert None not in answers, texts
            assert answer_matches(answers[0][1], gold), (gold, texts[0])
            assert not answer_matches(answers[1][1], gold), (gold, texts[1])
            assert chosen["loss_runs"][0].startswith(answers[0][0][:5])  # loss on the reply, not the prompt


def test_a_rerun_skips_finished_rounds_and_resumes_an_unfinished_one(run, capsys):
    """Through the CLI: a second run skips both rounds; with round 2's average removed, only that is redone (its
    generations come from the cache and its finished stage is skipped by the trainer's resume)."""
    from shardsmith.cli import main

    out = run["out"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["self-teach", run["recipe"], "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "round 1: already done" in said and "round 2: already done" in said
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "self_teach.json"}
    assert all(before[p] == t for p, t in after.items())

    import shutil

    shutil.rmtree(out / "round-2" / "merged")
    stage_json = (out / "round-2" / "train" / "stage.json").read_text()
    assert main(["self-teach", run["recipe"], "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "round 1: already done" in said and "round 2: 8 questions" in said and "train: already done" in said
    redone = json.loads((out / "round-2" / "round.json").read_text())
    assert redone["weights_digest"] == run["infos"][1]["weights_digest"]  # same samples, same stage, same average
    assert (out / "round-2" / "train" / "stage.json").read_text() == stage_json
    assert all((out / "round-1" / p.relative_to(out / "round-1")).stat().st_mtime_ns == before[p]
               for p in before if p.is_relative_to(out / "round-1"))


def test_a_changed_recipe_is_refused_but_more_rounds_are_not(run, tmp_path):
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.selfteach_recipe import SelfTeachRecipe
    from shardsmith.selfteach import SelfTeachError, _check_same_recipe

    recipe = load_recipe(SelfTeachRecipe, run["recipe"])
    more = recipe.model_copy(update={"self_teach": recipe.self_teach.model_copy(update={"rounds": 5})})
    _check_same_recipe(run["out"], more)
    hotter = recipe.model_copy(update={"seed": 6})
    with pytest.raises(SelfTeachError, match="differs in: seed"):
        _check_same_recipe(run["out"], hotter)


def test_answer_checker_rules():
    from shardsmith.selfteach import CORRECT, INCORRECT, INVALID, NOT_GENERATED, Question, answer_matches, check
    from shardsmith.schemas.records import Conversation, Message

    assert answer_matches("1,000", "1000") and answer_matches("1000.0", "1000") and not answer_matches("100", "1000")
    assert not answer_matches("1000 dollars", "1000")  # a numeric gold wants a number, as GSM8K's key
    assert answer_matches("(C) 1120", "(C) 1120", letter="C") and answer_matches("C", "(C) 1120", letter="C")
    assert not answer_matches("(B) 1120", "(C) 1120", letter="C")
    assert answer_matches("Yes,  it is", "yes, it is") and not answer_matches("no", "yes")
    q = Question(id="q", conv=Conversation(messages=[Message(role="user", content="?")], source="s", id="q"), gold="7")
    assert check("3 + 4 = 7.\n\n### Answer:\n7\n\n### User:\nmore", q) == (CORRECT, ("3 + 4 = 7.", "7"))
    assert check("3 + 4 = 8.\n\n### Answer:\n8", q)[0] == INCORRECT
    assert check("3 + 4 = 7. So 7", q) == (INVALID, None)  # no answer header: discarded, as Memphis does
    assert check(None, q) == (NOT_GENERATED, None)


def test_pairs_use_each_distinct_reply_once():
    from shardsmith.selfteach import CORRECT, INCORRECT, INVALID, Question, make_pairs
    from shardsmith.schemas.records import Conversation, Message

    q = Question(id="q", conv=Conversation(messages=[Message(role="user", content="2+2?")], source="s", id="q"),
                 gold="4")

    def row(k, verdict, answer, rationale="r"):
        return {"question": "q", "sample": k, "verdict": verdict, "rationale": rationale, "answer": answer}

    rows = [row(0, CORRECT, "4"), row(1, CORRECT, "4"), row(2, CORRECT, "4", "other"), row(3, INCORRECT, "5"),
            row(4, INCORRECT, "6"), row(5, INCORRECT, "7"), row(6, INVALID, None, None)]
    pairs = make_pairs([q], rows, None)
    assert [(p["chosen_sample"], p["rejected_sample"]) for p in pairs] == [(0, 3), (2, 4)]  # 1 repeats 0; 5 extra
    assert pairs[0]["chosen"] == "r\n\n### Answer:\n4" and pairs[0]["prompt"] == [{"role": "user", "content": "2+2?"}]
    assert len(make_pairs([q], rows, 1)) == 1
    assert make_pairs([q], [row(0, CORRECT, "4"), row(1, CORRECT, "4", "x")], None) == []


@pytest.mark.parametrize("bad,msg", [
    ({"stage": {"name": "x", "max_steps": 1}}, "stage.name is set by the loop"),
    ({"stage": {"data": {"sets": [{"path": "x"}]}, "max_steps": 1}}, "stage.data.sets is each round"),
    ({"stage": {"objective": "dpo"}}, "give exactly one of max_steps or epochs"),
    ({"stage": {"objective": "nope", "max_steps": 1}}, "stage.objective"),
    ({"self_teach": {"init": "x", "questions": {"block": "b"}, "generation": {"samples": 1}}}, "samples"),
    ({"self_teach": {"init": "x", "questions": {"block": "b"}, "merge": {"toward": "old"}}}, "toward"),
])
def test_recipe_errors_name_the_field(tmp_path, bad, msg):
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.selfteach_recipe import SelfTeachRecipe

    import yaml

    data = {"name": "x", "self_teach": {"init": "x", "questions": {"block": "b"}},
            "stage": {"objective": "dpo", "max_steps": 1}, **bad}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match=msg):
        load_recipe(SelfTeachRecipe, path)


def test_the_question_block_must_be_a_tinycot_block(run, tmp_path):
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.selfteach_recipe import SelfTeachRecipe
    from shardsmith.selfteach import load_cot_block

    recipe = load_recipe(SelfTeachRecipe, run["recipe"])
    text = (run["root"] / "cot.yaml").read_text()
    for change, msg in (({"kind: cot": "kind: sft"}, "a kind: cot block is needed"),
                        ({"seed: 1": "seed: 1\nanswer_format: answer_line"}, "reads the tinycot format")):
        block = tmp_path / f"{len(msg)}.yaml"
        block.write_text(text.replace(*next(iter(change.items()))))
        other = recipe.model_copy(update={"self_teach": recipe.self_teach.model_copy(
            update={"questions": recipe.self_teach.questions.model_copy(update={"block": str(block)})})})
        with pytest.raises(RecipeError, match=msg):
            load_cot_block(other)


def _with(recipe, **self_teach):
    """The recipe with ``self_teach`` sections changed (``questions={...}`` updates that section's fields)."""
    st = recipe.self_teach
    update = {k: getattr(st, k).model_copy(update=v) if isinstance(v, dict) else v for k, v in self_teach.items()}
    return recipe.model_copy(update={"self_teach": st.model_copy(update=update)})


def test_question_sources_and_limit_choose_the_questions(run):
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.selfteach_recipe import SelfTeachRecipe
    from shardsmith.selfteach import read_questions

    recipe = load_recipe(SelfTeachRecipe, run["recipe"])
    every = read_questions(recipe)
    assert len(every) == 8 and every[0].gold == run["gold"][every[0].conv.messages[-1].content]
    three = read_questions(_with(recipe, questions={"limit": 3}))
    assert len(three) == 3 and [q.id for q in three] == [q.id for q in read_questions(_with(recipe, questions={
        "limit": 3}))] and {q.id for q in three} < {q.id for q in every}
    assert len(read_questions(_with(recipe, questions={"sources": ["gsm8k"]}))) == 8
    with pytest.raises(RecipeError, match="nope not in"):
        read_questions(_with(recipe, questions={"sources": ["nope"]}))


def test_settings_reach_the_sampler_the_pairs_block_and_the_stage(run, tmp_path):
    from shardsmith.builders.build import build
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.manifest import ShardManifest
    from shardsmith.schemas.selfteach_recipe import SelfTeachRecipe
    from shardsmith.schemas.decontam import DecontamSpec
    from shardsmith.selfteach import (load_cot_block, pairs_block_recipe, pairs_decontamination, teacher_spec,
                                      train_recipe)

    recipe = load_recipe(SelfTeachRecipe, run["recipe"])
    gen = {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 9, "batch_size": 3, "dtype": "bf16", "device": "cpu"}
    spec = teacher_spec(_with(recipe, generation=gen), Path("m"), seed=11)
    assert spec.do_sample and spec.seed == 11 and {k: getattr(spec, k) for k in gen} == gen

    block, base = load_cot_block(recipe)
    from shardsmith.builders.templates import resolve_template

    rdir = run["out"] / "round-1"
    spec = pairs_block_recipe(_with(recipe, pairs={"validation_fraction": 0.5}), block, base,
                              resolve_template("tinycot"), rdir / "pairs.jsonl", seed=9, decontam_index=tmp_path / "i")
    assert spec["filters"]["length"]["max_tokens"] == 64 and spec["kind"] == "preference" and spec["seed"] == 9
    assert spec["decontaminate"] == {"enabled": False}
    checked = block.model_copy(update={"decontaminate": DecontamSpec(benchmarks=["bench"], files=[
        {"name": "mine", "paths": ["mine.jsonl"]}])})
    assert pairs_decontamination(checked, base, tmp_path / "i") == {
        "benchmarks": [str(base / "bench")], "files": [{"name": "mine", "paths": [str(base / "mine.jsonl")],
                                                        "shape": "auto"}], "index": str(tmp_path / "i")}
    (tmp_path / "p.yaml").write_text(json.dumps(spec))
    man = ShardManifest.load(build(str(tmp_path / "p.yaml"), str(tmp_path / "pairs")))
    n = json.loads((rdir / "round.json").read_text())["pairs"]
    assert man.pairs["validation"] == round(n * 0.5) and man.pairs["train"] + man.pairs["validation"] == n

    stage = train_recipe(recipe, 2, Path("start"), Path("block"))
    assert stage["name"] == "tiny-memphis-round-2" and stage["seed"] == recipe.seed + 2
    assert stage["model"] == {"attn_implementation": "eager"}
    assert stage["engine"] == {"zero_stage": 0, "precision": "fp32"}
    assert stage["stages"][0] | {"data": None} == {**recipe.stage, "name": "train", "init_from": "start", "seed": 7,
                                                  "data": None}
    assert stage["stages"][0]["data"] == {"val_rows": 0, "sets": [{"path": "block"}]}


@pytest.mark.parametrize("toward,method", [("previous", "linear"), ("trained", "linear"), ("previous", "slerp")])
def test_average_direction_and_method(run, tmp_path, toward, method):
    """``toward: previous``, t: the previous weights' share (a moving average); ``toward: trained``: the trained
    weights' share. Linear is checked by hand on every tensor; SLERP against merge_folders in the same direction."""
    from safetensors.torch import load_file
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.selfteach_recipe import SelfTeachRecipe
    from shardsmith.selfteach import average
    from shardsmith.trainer.merge import merge_folders

    recipe = _with(load_recipe(SelfTeachRecipe, run["recipe"]), merge={"t": 0.25, "toward": toward, "method": method})
    trained, previous = run["out"] / "round-1" / "train" / "hf" / "final", run["init"]
    record = average(recipe, trained, previous, tmp_path / "avg")
    share_prev = 0.25 if toward == "previous" else 0.75
    assert record["share_of_previous"] == share_prev and record["toward"] == toward
    merged, a, b = (load_file(f / "model.safetensors") for f in (tmp_path / "avg", trained, previous))
    if method == "linear":
        for k, v in merged.items():
            assert v.double().allclose((1 - share_prev) * a[k].double() + share_prev * b[k].double(), atol=1e-6), k
    else:
        ref = merge_folders(trained, previous, share_prev, tmp_path / "ref", "slerp")
        assert record["digest"] == ref["digest"]


def test_shardsmith_train_points_a_self_teaching_recipe_to_its_verb(run, capsys):
    from shardsmith.cli import main

    assert main(["train", run["recipe"], "--out", str(run["root"] / "nope")]) == 2
    err = capsys.readouterr().err
    assert "a self-teaching recipe" in err and "shardsmith self-teach" in err and len(err.splitlines()) == 1
    assert not (run["root"] / "nope").exists()
