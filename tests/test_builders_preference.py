"""Preference (DPO) blocks: the pair shapes import exactly, pairs are filtered as units, written as adjacent
chosen/rejected documents that share their prompt, with loss on the answers only; counts add up on real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, need_data
from test_builders_helpers import build_recipe, load_manifest, write_jsonl

from shardsmith.builders.build import build, load_block_recipe
from shardsmith.demo.sft_sample import write_demo_sample
from shardsmith.builders.importers import ImportShapeError, import_file
from shardsmith.builders.pairs import PAIR_SHAPESET
from shardsmith.builders.writer import inspect_documents
from shardsmith.schemas.block_recipe import PreferenceBlockRecipe
from shardsmith.schemas.records import Drop, PreferencePair

BLOCKS = REPO / "recipes" / "blocks"
END = "\n<|end|><|endoftext|>"  # the T1B template's end marker, then datatrove's EOS


def pairs_of(path: Path, shape: str = "auto") -> list:
    return list(import_file(path, source="s", shape=shape, shapes=PAIR_SHAPESET))


def as_tuples(p: PreferencePair):
    return ([(m.role, m.content) for m in p.prompt], [(m.role, m.content) for m in p.chosen],
            [(m.role, m.content) for m in p.rejected])


def test_pair_shapes(tmp_path):
    rows = {
        "lf.json": [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
                                       {"from": "human", "value": "2+2?"}],
                     "chosen": {"from": "gpt", "value": "4"}, "rejected": {"from": "gpt", "value": "5"}}],
        "uf.jsonl": [{"prompt": "2+2?", "chosen": [{"role": "user", "content": "2+2?"},
                                                   {"role": "assistant", "content": "4"}],
                      "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}],
                      "chosen-rating": 5, "rejected-rating": 2}],
        "trl.jsonl": [{"chosen": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
                       "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]}],
        "flat.jsonl": [{"prompt": "2+2?", "chosen": "4", "rejected": "5", "metadata": {"score_chosen": 9.0}}],
        "rasbt.json": [{"instruction": "Add.", "input": "2+2", "output": "4", "chosen": "4", "rejected": "5"}],
    }
    for name, rs in rows.items():
        p = tmp_path / name
        if name.endswith(".json"):
            p.write_text(json.dumps(rs))
        else:
            write_jsonl(p, rs)
    (lf,) = pairs_of(tmp_path / "lf.json")
    assert as_tuples(lf) == ([("user", "Hi"), ("assistant", "Hello"), ("user", "2+2?")], [("assistant", "4")],
                             [("assistant", "5")])
    for name in ("uf.jsonl", "trl.jsonl", "flat.jsonl"):
        (p,) = pairs_of(tmp_path / name)
        assert as_tuples(p) == ([("user", "2+2?")], [("assistant", "4")], [("assistant", "5")]), name
    assert pairs_of(tmp_path / "uf.jsonl")[0].metadata == {"chosen-rating": 5.0, "rejected-rating": 2.0}
    assert pairs_of(tmp_path / "flat.jsonl")[0].metadata == {"score_chosen": 9.0}
    (r,) = pairs_of(tmp_path / "rasbt.json")
    assert as_tuples(r) == ([("user", "Add.\n2+2")], [("assistant", "4")], [("assistant", "5")])


def test_pair_shape_errors_and_drops(tmp_path):
    write_jsonl(tmp_path / "sft.jsonl", [{"instruction": "a", "output": "b"}])
    with pytest.raises(ImportShapeError, match=r"sft.jsonl: record 0: unknown preference shape; fields found: "
                                               r"instruction, output"):
        pairs_of(tmp_path / "sft.jsonl")
    write_jsonl(tmp_path / "mixed.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}, {"prompt": "q"}])
    with pytest.raises(ImportShapeError, match="record 1: does not fit shape 'prompt_pairs'"):
        pairs_of(tmp_path / "mixed.jsonl")
    write_jsonl(tmp_path / "bad.jsonl", [
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
         "chosen": {"from": "gpt", "value": "x"}, "rejected": {"from": "gpt", "value": "y"}},  # prompt ends with gpt
        {"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "gpt", "value": "x"},
         "rejected": {"from": "robot", "value": "y"}},
    ])
    got = pairs_of(tmp_path / "bad.jsonl")
    assert [d.reason for d in got if isinstance(d, Drop)] == ["bad_prompt", "unsupported_role"]


def test_demo_preference_block(tmp_path, monkeypatch):
    write_demo_sample(tmp_path / "data")
    monkeypatch.setenv("SFT_DEMO_DATA", str(tmp_path / "data"))
    recipe, _ = load_block_recipe(BLOCKS / "demo-pref.yaml")
    assert isinstance(recipe, PreferenceBlockRecipe)
    out = build(str(BLOCKS / "demo-pref.yaml"), str(tmp_path / "pref"))
    m = load_manifest(out)
    assert m["kind"] == "preference" and m["pair_layout"] == "adjacent:chosen,rejected"
    assert m["counts"]["demo_pref"] == {"read": 136, "kept": 133,
                                        "dropped": {"duplicate": 1, "empty_turn": 1, "identical_pair": 1}}
    assert m["pairs"]["train"] + m["pairs"]["validation"] == 133 and m["pairs"]["validation"] == 20
    assert [s["step"] for s in m["filters"]["demo_pref"]][:3] == ["import", "pair", "structure"]
    src: dict = {}
    for r in map(json.loads, (tmp_path / "data" / "demo_pref.jsonl").read_text().splitlines()):
        src.setdefault(r["prompt"], set()).add((r["chosen"], r["rejected"]))  # prompts can repeat
    for split in ("train", "validation"):
        docs = inspect_documents(out, split)
        assert len(docs) == 2 * m["pairs"][split] == m["splits"][split]["documents"]
        for chosen, rejected in zip(docs[0::2], docs[1::2]):
            assert chosen["no_loss_text"] == rejected["no_loss_text"]  # one prompt
            prompt = chosen["no_loss_text"].removeprefix("<|user|>\n").removesuffix("\n<|end|>\n<|assistant|>\n")
            answers = ("".join(chosen["loss_runs"]), "".join(rejected["loss_runs"]))
            assert answers in {(c + END, r + END) for c, r in src[prompt]}
    from shardsmith.pipelines.inspect import sample_documents, summary_table

    assert "pairs: {" in summary_table(out) and "layout adjacent:chosen,rejected" in summary_table(out)
    picked = sample_documents(out, 3)  # 3 random pairs: both documents of each
    assert len(picked) == 6 and all(b[1] == a[1] + 1 and a[1] % 2 == 0 for a, b in zip(picked[0::2], picked[1::2]))


def test_pairs_are_filtered_as_units(tmp_path):
    """A pair goes when either side fails a filter; near-ties go with min_score_gap; duplicates are whole pairs."""
    rows = [
        {"prompt": "What is the capital of France?", "chosen": "Paris is the capital of France.",
         "rejected": "London.", "score_chosen": 9, "score_rejected": 3},
        {"prompt": "What is the capital of Italy?", "chosen": "Rome is the capital of Italy.",
         "rejected": "罗马是意大利的首都，这是一个中文的回答。", "score_chosen": 9, "score_rejected": 2},  # rejected side zh
        {"prompt": "Name a colour.", "chosen": "Blue is a colour.", "rejected": "Red is a colour.",
         "score_chosen": 7, "score_rejected": 6.5},  # near-tie
        {"prompt": "What is the capital of France?", "chosen": "Paris is the capital of France.",
         "rejected": "London.", "score_chosen": 9, "score_rejected": 3},  # duplicate pair
        {"prompt": "What is the capital of France?", "chosen": "Paris is the capital of France.",
         "rejected": "Berlin is the capital of France.", "score_chosen": 9, "score_rejected": 1},  # same prompt+chosen
        {"prompt": "Write code.", "chosen": "```python\nprint(1)\n```", "rejected": "```python\nprint(",
         "score_chosen": 8, "score_rejected": 1},  # truncated rejected
    ]
    write_jsonl(tmp_path / "p.jsonl", rows)
    out = build_recipe(tmp_path, {
        "kind": "preference", "name": "units", "tokenizer": {"name": "gpt2"}, "template": "chatml",
        "validation": {"fraction": 0.0},
        "filters": {"language": {"keep": ["en"], "rule": "every_turn"}, "dedup": {"exact": True}},
        "pairs": {"min_score_gap": 1.0},
        "sources": [{"name": "p", "paths": [str(tmp_path / "p.jsonl")]}],
    })
    m = load_manifest(out)
    assert m["counts"]["p"] == {"read": 6, "kept": 2, "dropped": {"duplicate": 1, "language:zh": 1,
                                                                  "small_score_gap": 1, "truncated": 1}}
    docs = inspect_documents(out)
    answers = [d["loss_runs"][0].split("<|im_end|>")[0] for d in docs]
    assert set(zip(answers[0::2], answers[1::2])) == {("Paris is the capital of France.", "London."),
                                                      ("Paris is the capital of France.",
                                                       "Berlin is the capital of France.")}


def test_t1b_ultrafeedback_recipe_builds_offline(tmp_path, monkeypatch):
    root = need_data("pref_ultrafeedback_binarized_subset")
    monkeypatch.setenv("SHARDSMITH_DATA", str(root))
    out = build(str(BLOCKS / "t1b-ultrafeedback.yaml"), str(tmp_path / "uf"))
    m = load_manifest(out)
    c = m["counts"]["ultrafeedback"]
    assert c["read"] == 200 == c["kept"] + sum(c["dropped"].values()) and c["kept"] > 170
    assert m["template"]["name"] == "t1b" and m["pair_filter"]["drop_identical"]
    lengths = [len(d["ids"]) for split in ("train", "validation") for d in inspect_documents(out, split)]
    assert len(lengths) == 2 * c["kept"] and max(lengths) <= 2048  # fits the T1B DPO stage's seq_len


def test_real_preference_sets(tmp_path):
    """LLaMA-Factory zh/en demo pairs, rasbt ch07 pairs and the UltraFeedback subset through one zh+en block."""
    root = need_data("pref_dpo_demo_llamafactory", "sft_rasbt_ch07", "pref_ultrafeedback_binarized_subset")
    out = build_recipe(tmp_path, {
        "kind": "preference", "name": "real", "seed": 3, "tokenizer": {"name": "gpt2"}, "template": "t1b",
        "validation": {"fraction": 0.05},
        "filters": {"language": {"keep": ["zh", "en"], "min_share": 0.5}, "dedup": {"exact": True}},
        "sources": [
            {"name": "lf_en", "paths": [str(root / "pref_dpo_demo_llamafactory/dpo_en_demo.json")], "language": "en"},
            {"name": "lf_zh", "paths": [str(root / "pref_dpo_demo_llamafactory/dpo_zh_demo.json")], "language": "zh"},
            {"name": "rasbt", "paths": [str(root / "sft_rasbt_ch07/instruction-data-with-preference.json")]},
            {"name": "uf", "paths": [str(root / "pref_ultrafeedback_binarized_subset/eval_clean.jsonl")]},
        ],
    })
    m = load_manifest(out)
    reads = {"lf_en": 300, "lf_zh": 300, "rasbt": 1100, "uf": 200}
    for name, c in m["counts"].items():
        assert c["read"] == reads[name] == c["kept"] + sum(c["dropped"].values()), name
        assert c["kept"] > 0.85 * c["read"], (name, c)
    assert m["counts"]["rasbt"]["dropped"]["identical_pair"] >= 1  # rasbt has pairs whose two answers are equal
    kept = sum(c["kept"] for c in m["counts"].values())
    assert m["pairs"]["train"] + m["pairs"]["validation"] == kept
    for split in ("train", "validation"):
        docs = inspect_documents(out, split)
        assert len(docs) == 2 * m["pairs"][split]
        for chosen, rejected in zip(docs[0::2], docs[1::2]):
            assert chosen["no_loss_text"] == rejected["no_loss_text"]
            assert chosen["no_loss_text"].endswith("<|assistant|>\n")
            assert chosen["loss_runs"][-1].endswith(END) and rejected["loss_runs"][-1].endswith(END)
            assert chosen["loss_runs"] != rejected["loss_runs"]
    # the rejected records carry their reasons
    assert (out / "rejected" / "rasbt.jsonl.gz").is_file()


def test_preference_block_refuses_loss_all_and_self_cognition():
    from pydantic import ValidationError

    base = {"kind": "preference", "name": "p", "sources": [{"name": "s", "paths": ["x.jsonl"]}]}
    with pytest.raises(ValidationError, match="scores the answers only"):
        PreferenceBlockRecipe.model_validate({**base, "loss": "all"})
    with pytest.raises(ValidationError, match="no rejected answer"):
        PreferenceBlockRecipe.model_validate({**base, "self_cognition": {"name": "a", "author": "b"}})
