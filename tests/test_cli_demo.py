"""The main job from one command: `shardsmith demo`, then `inspect` and the tokenizer verbs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shardsmith.pipelines.shards import iter_documents
from shardsmith.schemas.manifest import ShardManifest


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "shardsmith.cli", *args], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    r = cli("demo", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r


def test_demo_builds_a_complete_shard_set(demo):
    out, r = demo
    m = ShardManifest.load(out / "mix")
    assert m.kind == "mix" and m.dtype == "uint16" and m.tokenizer.name == "demo-bpe"
    assert m.tokenizer.vocab_size <= 4096 and {"<|user|>", "<|assistant|>", "<|end|>"} <= set(m.tokenizer.special_tokens)
    assert {s.name for s in m.sources} == {"web", "c4", "wiki", "news", "zh"}
    for s in m.sources:
        assert abs(s.share_realized - s.share_requested) < 0.01
    assert m.splits["train"].documents > 0 and m.splits["validation"].documents > 0
    # every planted kind of junk is dropped somewhere, with its reason on disk
    reasons = {r for steps in m.filters.values() for st in steps for r in st.reasons}
    assert {"too_few_sentences", "dup_line_frac"} <= reasons
    assert any((out / "mix" / "rejected" / src / "language").is_dir() for src in ("web", "c4", "zh"))
    # the summary table printed at the end names every source
    for s in m.sources:
        assert s.name in r.stdout
    docs = list(iter_documents(out / "mix", "validation"))
    assert len(docs) == m.splits["validation"].documents
    assert all(tokens[-1] == m.tokenizer.eos_id for tokens, _ in docs)


def test_inspect_prints_decodes_and_charts(demo):
    out, _ = demo
    r = cli("inspect", str(out / "mix"), "--samples", "2", "--chart", str(out / "mix.png"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "realized" in r.stdout and r.stdout.count("--- train/") == 2
    png = (out / "mix.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_tokenizer_train_and_show(demo, tmp_path):
    out, _ = demo
    r = cli("tokenizer", "train", str(out / "sample" / "wiki"), "--out", str(tmp_path / "tok"), "--vocab-size", "600",
            "--name", "wiki-bpe")
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((tmp_path / "tok" / "tokenizer.json").read_text())
    assert 300 < len(cfg["model"]["vocab"]) <= 600
    r = cli("tokenizer", "show", "gpt2")
    assert "15496, 995, 11, 262, 2068, 7586, 21831, 13" in r.stdout
