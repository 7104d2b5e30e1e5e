"""Shipped block recipes validate; the demo builds from the shipped sample writer; the Steel recipe builds offline
on Infinity-Instruct-shaped rows + real ruozhiba + EmoLLM self-cognition; self-cognition substitution is complete;
builds are atomic (no half-built folder that looks complete)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, need_data
from test_builders_helpers import load_manifest, write_jsonl

from shardsmith.builders.build import build, load_block_recipe
from shardsmith.demo.sft_sample import write_demo_sample
from shardsmith.builders.self_cognition import generate
from shardsmith.schemas.block_recipe import SelfCognition, SftBlockRecipe

BLOCKS = REPO / "recipes" / "blocks"


@pytest.mark.parametrize("name,kind", [("steel-sft", "sft"), ("ff-sft", "sft"), ("fgpt-instruct", "sft"),
                                       ("demo", "sft"), ("demo-pref", "preference"),
                                       ("t1b-ultrafeedback", "preference")])
def test_shipped_recipes_validate(name, kind, monkeypatch):
    monkeypatch.setenv("INFINITY_INSTRUCT_DIR", "/nonexistent")
    recipe, _ = load_block_recipe(BLOCKS / f"{name}.yaml")
    assert isinstance(recipe, SftBlockRecipe) and recipe.kind == kind


def test_demo_recipe_builds(tmp_path, monkeypatch):
    write_demo_sample(tmp_path / "data")
    monkeypatch.setenv("SFT_DEMO_DATA", str(tmp_path / "data"))
    out = build(str(BLOCKS / "demo.yaml"), str(tmp_path / "shards"))
    m = load_manifest(out)
    assert m["counts"]["demo_zh"]["dropped"] == {"duplicate": 1}
    assert m["counts"]["demo_en"]["dropped"] == {"empty_turn": 1}
    assert m["counts"]["demo_chat"]["dropped"] == {"ends_with_user": 1}
    assert m["counts"]["self_cognition"]["kept"] > 0
    assert (out / "tokenizer" / "tokenizer.json").is_file() and m["template"]["name"] == "t1b"
    tok = json.loads((out / "tokenizer" / "tokenizer.json").read_text())
    assert {"<|user|>", "<|assistant|>", "<|end|>"} <= {t["content"] for t in tok["added_tokens"]}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".shards")]  # no temp folder left behind


def test_steel_recipe_offline(tmp_path):
    root = need_data("sft_zh_better_ruozhiba", "sft_self_cognition_emollm")
    rows = [{"id": str(i), "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}],
             "label": {}, "langdetect": lab, "source": "x"}
            for i, (q, a, lab) in enumerate([("什么是机器学习？", "机器学习是人工智能的一个分支。", "zh-cn"),
                                             ("What is AI?", "Artificial intelligence.", "en"),
                                             ("写一首诗。", "春眠不觉晓，处处闻啼鸟。" * 200, "zh-cn")])]
    write_jsonl(tmp_path / "inf" / "part-0.jsonl", rows)
    out = build(str(BLOCKS / "steel-sft.yaml"), str(tmp_path / "steel"),
                [f"sources.infinity_instruct.paths=[{tmp_path / 'inf'}]", "sources.ruozhiba.limit=40",
                 f"self_cognition.data_dir={root}"])
    m = load_manifest(out)
    assert m["counts"]["infinity_instruct"] == {"read": 3, "kept": 1,
                                                "dropped": {"language:en": 1, "too_long_tokens": 1}}
    assert m["counts"]["ruozhiba"]["kept"] == 40
    assert m["counts"]["self_cognition"]["kept"] >= 80
    assert m["tokenizer"]["eos_token"] == "<|im_end|>" and m["dtype"] == "uint32"
    assert m["template"]["eos_is_template_end"] is True


def test_self_cognition_substitution():
    root = need_data("sft_self_cognition_emollm", "sft_self_cognition_identity")
    spec = SelfCognition(name="Steel-LLM", author="zhanshijinwat", templates=["emollm", "identity", "builtin"],
                         data_dir=str(root))
    convs = generate(spec)
    texts = [m.content for c in convs for m in c.messages]
    assert not any(("EmoLLM" in t or "{{" in t or "<AUTHOR>" in t or "心理" in t and "助手" in t) for t in texts)
    assert sum("Steel-LLM" in t for t in texts) > 100 and any("zhanshijinwat" in t for t in texts)
    langs = {c.lang for c in convs}
    assert langs == {"zh", "en"}
    only_zh = generate(spec.model_copy(update={"languages": ["zh"]}))
    assert {c.lang for c in only_zh} == {"zh"} and len(only_zh) < len(convs)


def test_failed_build_leaves_previous_output(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"instruction": "hi", "output": "hello"}])
    (tmp_path / "r.yaml").write_text("kind: sft\nname: a\ntokenizer: {name: gpt2}\nvalidation: {fraction: 0}\n"
                                     "sources: [{name: a, paths: [a.jsonl]}]\n")
    out = build(str(tmp_path / "r.yaml"), str(tmp_path / "o"))
    before = (out / "manifest.json").read_text()
    (tmp_path / "b.jsonl").write_text('{"instruction": "hi", "output": ""}\n')
    (tmp_path / "r2.yaml").write_text("kind: sft\nname: a\ntokenizer: {name: gpt2}\nvalidation: {fraction: 0}\n"
                                      "sources: [{name: b, paths: [b.jsonl]}]\n")
    with pytest.raises(ValueError, match="no conversation survived"):
        build(str(tmp_path / "r2.yaml"), str(tmp_path / "o"))
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
