"""Transformer-1B-Chat from its own recipes on the real samples: the pretraining mix (FineWeb-Edu, a BPE trained on
it), the UltraChat-style SFT block and the UltraFeedback preference block built with that tokenizer, then the T1B
training recipe (pretrain -> SFT -> DPO) in miniature. One command chain, as a user runs it."""

from __future__ import annotations

import json
import math

import pytest
from conftest import REPO, assert_shipped_mix_built, need_data

from shardsmith.builders.build import build
from shardsmith.pipelines.mixer import run_mix
from shardsmith.trainer.runner import train


def test_t1b_chain_from_its_data_recipes(tmp_path, monkeypatch):
    root = need_data("web_fineweb_edu_text_llm_scored", "sft_sharegpt_fastchat_dummy",
                     "pref_ultrafeedback_binarized_subset")
    monkeypatch.setenv("SHARDSMITH_DATA", str(root))
    pt = run_mix(str(REPO / "recipes" / "mix" / "t1b-fineweb-edu.yaml"), str(tmp_path / "pt"),
                 overrides=["tokenizer.train.vocab_size=2048"])
    assert_shipped_mix_built(REPO / "recipes" / "mix" / "t1b-fineweb-edu.yaml", tmp_path / "pt")
    tok = str(tmp_path / "pt" / "tokenizer")
    sft = build(str(REPO / "recipes" / "blocks" / "t1b-ultrachat.yaml"), str(tmp_path / "sft"), [f"tokenizer.name={tok}"])
    pref = build(str(REPO / "recipes" / "blocks" / "t1b-ultrafeedback.yaml"), str(tmp_path / "pref"),
                 [f"tokenizer.name={tok}"])
    man = {n: json.loads((tmp_path / n / "manifest.json").read_text()) for n in ("pt", "sft", "pref")}
    assert len({m["tokenizer"]["sha256"] for m in man.values()}) == 1  # one tokenizer across the chain
    assert {"<|user|>", "<|assistant|>", "<|end|>"} <= set(man["pt"]["tokenizer"]["special_tokens"])
    src = man["pt"]["sources"][0]
    assert src["documents"] == src["documents_available"] == 150 and src["epochs"] == pytest.approx(1.0)
    assert man["sft"]["counts"]["ultrachat"]["kept"] == 500 and man["pref"]["kind"] == "preference"

    monkeypatch.setenv("T1B_PRETRAIN", str(tmp_path / "pt"))
    monkeypatch.setenv("T1B_SFT", str(sft))
    monkeypatch.setenv("T1B_DPO", str(pref))
    out = tmp_path / "runs"
    train(str(REPO / "recipes" / "train" / "transformer-1b-chat.yaml"), str(out), overrides=[
        "model.preset=tiny-llama", "engine.precision=fp32",
        "stages.pretrain.max_steps=6", "stages.pretrain.seq_len=128", "stages.pretrain.micro_batch_size=4",
        "stages.pretrain.grad_accum=1", "stages.pretrain.schedule.warmup_steps=2",
        "stages.sft.epochs=0.05", "stages.sft.seq_len=256", "stages.sft.micro_batch_size=4", "stages.sft.grad_accum=1",
        "stages.dpo.epochs=0.1", "stages.dpo.seq_len=512", "stages.dpo.micro_batch_size=2",
        "stages.dpo.grad_accum=1", "stages.dpo.eval_every=4",
    ])
    info = {s: json.loads((out / s / "stage.json").read_text()) for s in ("pretrain", "sft", "dpo")}
    assert info["sft"]["init_digest"] == info["pretrain"]["final_digest"]
    assert info["dpo"]["init_digest"] == info["sft"]["final_digest"]
    assert info["pretrain"]["vocab_rows"] == man["pt"]["tokenizer"]["vocab_size"] == 2048
    assert info["dpo"]["pairs_too_long"] > 0  # seq_len 512 leaves out the pairs with the longest prompts, counted
    first = [json.loads(x) for x in (out / "dpo" / "metrics.jsonl").read_text().splitlines() if '"loss"' in x][0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert (out / "dpo" / "hf" / "final" / "model.safetensors").is_file()
