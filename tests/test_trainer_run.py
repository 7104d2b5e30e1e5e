"""End-to-end trainer runs through DeepSpeed on CPU (gloo): the demo chain, kill-and-resume, two processes,
export, and bad input. Tiny models, few steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F
from shardsmith.trainer.runner import generate, train

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "recipes" / "train" / "demo.yaml"


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer_run")
    tok = F.build_tokenizer(root / "tok")
    return {
        "root": root,
        "tok": tok,
        "pt": F.pretrain_set(root / "pt", tok, n_train=300, n_val=20),
        "sft": F.sft_set(root / "sft", tok, n_train=200, n_val=16),
        "pref": F.preference_set(root / "pref", tok, n_train=96, n_val=12),
    }


DEMO_SET = [
    "engine.precision=fp32", "model.preset=tiny-gpt2",
    "stages.pretrain.max_steps=60", "stages.pretrain.save_every=30", "stages.pretrain.eval_every=20",
    "stages.pretrain.seq_len=64", "stages.pretrain.log_every=1",
    "stages.sft.max_steps=16", "stages.sft.save_every=8", "stages.sft.eval_every=8", "stages.sft.seq_len=128",
    "stages.sft.log_every=1",
    "stages.dpo.max_steps=24", "stages.dpo.save_every=12", "stages.dpo.eval_every=6", "stages.dpo.seq_len=64",
    "stages.dpo.log_every=1", "stages.dpo.optimizer.lr=2e-3", "stages.dpo.micro_batch_size=4",
    "stages.dpo.grad_accum=2",
]


@pytest.fixture(scope="module")
def demo_run(sets, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_out")
    env = {"SHARDSMITH_DEMO_MIX": str(sets["pt"]), "SHARDSMITH_DEMO_SFT": str(sets["sft"]),
           "SHARDSMITH_DEMO_PREF": str(sets["pref"])}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        train(str(DEMO), str(out), overrides=DEMO_SET)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


def test_demo_pretrain_loss_falls_well_below_its_first_value(demo_run):
    r = [x for x in rows(demo_run / "pretrain" / "metrics.jsonl") if "loss" in x]
    first, last = r[0]["loss"], sum(x["loss"] for x in r[-5:]) / 5
    assert last < 0.6 * first, (first, last)
    val = [x["val_loss"] for x in rows(demo_run / "pretrain" / "metrics.jsonl") if "val_loss" in x]
    assert val[-1] < 0.6 * val[0]
    for key in ("step", "loss", "lr", "tokens_per_s", "tokens_seen", "grad_norm"):
        assert key in r[-1]
    assert (demo_run / "pretrain" / "loss.png").stat().st_size > 1000


def test_sft_starts_from_the_pretrain_checkpoint(demo_run):
    pre = json.loads((demo_run / "pretrain" / "stage.json").read_text())
    sft = json.loads((demo_run / "sft" / "stage.json").read_text())
    assert sft["parent"] == str(demo_run / "pretrain" / "hf" / "final")
    assert sft["init_digest"] == sft["loaded_digest"] == pre["final_digest"]  # weights equal at step 0
    assert not sft["embeddings_resized"]
    # and the step-0 validation loss of SFT equals the pretrain export's loss on the SFT validation rows
    assert (demo_run / "sft" / "hf" / "step-8" / "model.safetensors").is_file()
    assert (demo_run / "pretrain" / "hf" / "step-30" / "model.safetensors").is_file()


def test_dpo_starts_from_sft_at_log2_and_learns_the_preference(demo_run):
    """Policy == reference at step 0, so the first DPO loss is exactly log 2; then the margin opens."""
    import math

    sft = json.loads((demo_run / "sft" / "stage.json").read_text())
    dpo = json.loads((demo_run / "dpo" / "stage.json").read_text())
    assert dpo["parent"] == str(demo_run / "sft" / "hf" / "final")
    assert dpo["init_digest"] == sft["final_digest"]
    r = rows(demo_run / "dpo" / "metrics.jsonl")
    train_rows = [x for x in r if "loss" in x]
    assert train_rows[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert train_rows[0]["dpo_margin"] == pytest.approx(0.0, abs=1e-6)
    assert train_rows[0]["pairs"] == 8  # micro 4 x accumulation 2
    val = [x for x in r if "val_loss" in x]
    assert val[0]["step"] == 0 and val[0]["val_loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert val[-1]["val_loss"] < 0.6 * math.log(2), val[-1]
    assert val[-1]["val_dpo_accuracy"] >= 0.75 and val[-1]["val_dpo_margin"] > 0.5, val[-1]
    assert (demo_run / "dpo" / "hf" / "step-12" / "model.safetensors").is_file()


def test_dpo_val_loss_equals_a_direct_per_pair_computation(demo_run, sets):
    """The logged final validation loss, recomputed pair by pair without padding or batching from the exports (the
    DPO policy and its reference, the SFT export) and the raw .ds/.ds.loss files."""
    import math

    import numpy as np
    import torch
    import torch.nn.functional as tF
    from shardsmith.trainer.data import SplitReader
    from transformers import AutoModelForCausalLM

    policy = AutoModelForCausalLM.from_pretrained(demo_run / "dpo" / "hf" / "final").eval()
    ref = AutoModelForCausalLM.from_pretrained(demo_run / "sft" / "hf" / "final").eval()
    rd = SplitReader.open(sets["pref"], "validation")
    fi, st, en = rd.doc_table()

    def logp(model, i):
        t = torch.from_numpy(np.asarray(rd.tokens[fi[i]][st[i]:en[i]], dtype=np.int64))[None]
        m = torch.from_numpy(np.asarray(rd.loss[fi[i]][st[i]:en[i]]).astype(bool))[None]
        with torch.no_grad():
            lp = torch.log_softmax(model(t).logits[:, :-1].float(), -1).gather(-1, t[:, 1:, None])[..., 0]
        return float((lp * m[:, 1:]).sum())

    losses = []
    for k in range(8):  # the recipe's val_rows: the first 8 pairs, chosen = doc 2k, rejected = doc 2k+1
        margin = (logp(policy, 2 * k) - logp(ref, 2 * k)) - (logp(policy, 2 * k + 1) - logp(ref, 2 * k + 1))
        losses.append(float(-tF.logsigmoid(torch.tensor(0.1 * margin))))
    logged = [x for x in rows(demo_run / "dpo" / "metrics.jsonl") if "val_loss" in x][-1]
    assert logged["step"] == 24
    assert logged["val_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-4, abs=1e-5)
    assert logged["val_loss"] < math.log(2)


def test_hf_export_loads_and_generates(demo_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = demo_run / "sft" / "hf" / "final"
    model = AutoModelForCausalLM.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert model.get_input_embeddings().num_embeddings == len(tok)
    outs = generate(str(folder), ["Q: what does the cat sees?\nA:", "the old man"], max_new_tokens=12)
    assert len(outs) == 2 and all(isinstance(o, str) and o.strip() for o in outs)


RESUME_RECIPE = """
name: resume
seed: 7
model: {preset: tiny-gpt2}
engine: {zero_stage: 2, precision: fp32}
stages:
  - name: pretrain
    objective: OBJECTIVE
    data: {sets: [{path: PT}]}
    seq_len: 64
    micro_batch_size: 2
    grad_accum: 2
    max_steps: 14
    optimizer: {lr: 2.0e-3}
    schedule: {kind: cosine, warmup_steps: 3}
    save_every: 4
    log_every: 1
"""


_script = F.train_script


@pytest.mark.parametrize("objective,data", [("clm", "pt"), ("dpo", "pref")])
def test_kill_and_resume_equals_an_uninterrupted_run(sets, tmp_path, objective, data):
    """DPO too: the resumed run rebuilds its frozen reference from the stage's start, not from the checkpoint."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RESUME_RECIPE.replace("PT", str(sets[data])).replace("OBJECTIVE", objective))
    whole = tmp_path / "whole"
    train(str(recipe), str(whole))

    killed = tmp_path / "killed"
    F.run_until_killed(recipe, killed, tmp_path)
    assert not (killed / "pretrain" / "hf" / "final").exists()
    done_before = max(r["step"] for r in rows(killed / "pretrain" / "metrics.jsonl"))
    assert 8 <= done_before < 14

    with pytest.raises(ValueError, match="--resume"):
        train(str(recipe), str(killed))  # refuses to overwrite without --resume
    train(str(recipe), str(killed), resume=True)
    a = {r["step"]: r["loss"] for r in rows(whole / "pretrain" / "metrics.jsonl") if "loss" in r}
    b = {r["step"]: r["loss"] for r in rows(killed / "pretrain" / "metrics.jsonl") if "loss" in r}
    assert sorted(a) == sorted(b) == list(range(1, 15))
    for step in range(9, 15):
        assert abs(a[step] - b[step]) <= 1e-5, (step, a[step], b[step])
    from safetensors.torch import load_file

    wa = load_file(whole / "pretrain" / "hf" / "final" / "model.safetensors")
    wb = load_file(killed / "pretrain" / "hf" / "final" / "model.safetensors")
    assert wa.keys() == wb.keys()
    assert max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= 1e-5


TWO_PROC = """
name: ddp
seed: 3
model: {preset: tiny-gpt2}
engine: {zero_stage: 2, precision: fp32}
stages:
  - name: pretrain
    objective: OBJECTIVE
    data: {sets: [{path: PT}], sampling: epoch}
    seq_len: 64
    micro_batch_size: MICRO
    grad_accum: 2
    max_steps: 6
    optimizer: {lr: 2.0e-3}
    log_every: 1
"""


@pytest.mark.parametrize("objective,data", [("clm", "pt"), ("dpo", "pref")])
def test_two_processes_read_disjoint_rows_and_end_with_identical_weights(sets, tmp_path, objective, data):
    """Rows for clm, pairs for DPO: each rank reads its own, gradients average to the one-process result."""
    text = TWO_PROC.replace("PT", str(sets[data])).replace("OBJECTIVE", objective)
    recipe = tmp_path / "ddp.yaml"
    recipe.write_text(text.replace("MICRO", "2"))
    out, dbg = tmp_path / "ddp", tmp_path / "dbg"
    dbg.mkdir()
    env = F.child_env(SHARDSMITH_TRAIN_DEBUG_DIR=str(dbg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(_script(tmp_path, recipe, out))]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    per_rank = [[json.loads(x) for x in (dbg / f"pretrain.rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    for s0, s1 in zip(*per_rank):
        k0 = {tuple(k) for mb in s0["keys"] for k in mb}
        k1 = {tuple(k) for mb in s1["keys"] for k in mb}
        assert len(k0) == len(k1) == 4 and not k0 & k1
    d0, d1 = ((dbg / f"pretrain.rank{r}.digest").read_text() for r in (0, 1))
    assert d0 == d1
    # same global batch in one process (micro 4 x accum 2): same losses up to reduction order
    one = tmp_path / "one.yaml"
    one.write_text(text.replace("MICRO", "4"))
    train(str(one), str(tmp_path / "single"))
    a = [r["loss"] for r in rows(out / "pretrain" / "metrics.jsonl") if "loss" in r]
    b = [r["loss"] for r in rows(tmp_path / "single" / "pretrain" / "metrics.jsonl") if "loss" in r]
    assert len(a) == len(b) == 6
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4, (a, b)


# ------------------------------------------------------------------------------------------------------------
# bad input


def _recipe(tmp: Path, body: str) -> Path:
    p = tmp / "bad.yaml"
    p.write_text(body)
    return p


BASE = """
name: bad
model: {preset: tiny-gpt2}
engine: {zero_stage: 2, precision: fp32}
stages:
  - name: pretrain
    data: {sets: [{path: PT}]}
    seq_len: 64
    micro_batch_size: 2
    max_steps: 6
    save_every: 2
"""


def test_missing_shard_file_stops_before_work(sets, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(sets["pt"], broken)
    next((broken / "train").glob("*.ds")).unlink()
    with pytest.raises(ValueError, match=r"stages.pretrain.data: .*listed in manifest.json is missing"):
        train(str(_recipe(tmp_path, BASE.replace("PT", str(broken)))), str(tmp_path / "o"))
    assert not (tmp_path / "o" / "pretrain").exists()


def test_missing_init_from_stops_before_any_stage_runs(sets, tmp_path):
    body = BASE.replace("PT", str(sets["pt"])) + f"""
  - name: sft
    objective: sft
    init_from: {tmp_path / "nowhere"}
    data: {{sets: [{{path: {sets["sft"]}}}]}}
    max_steps: 2
"""
    with pytest.raises(ValueError, match=r"stages.sft.init_from: .*nowhere.* is not an HF model folder"):
        train(str(_recipe(tmp_path, body)), str(tmp_path / "o"))
    assert not (tmp_path / "o" / "pretrain").exists()
    # a stage run alone whose previous stage never ran
    body2 = BASE.replace("PT", str(sets["pt"])) + f"""
  - name: sft
    objective: sft
    data: {{sets: [{{path: {sets["sft"]}}}]}}
    max_steps: 2
"""
    with pytest.raises(ValueError, match=r"stages.sft.init_from: 'previous' means .*pretrain/hf/final"):
        train(str(_recipe(tmp_path, body2)), str(tmp_path / "o2"), stage="sft")


def test_manifest_tokenizer_differs_from_the_model(sets, demo_run, tmp_path):
    other_tok = F.build_tokenizer(tmp_path / "other_tok", vocab_size=320, extra_special=("<|user|>",))
    other = F.sft_set(tmp_path / "other_sft", other_tok, n_train=20, n_val=4)
    body = f"""
name: bad
engine: {{precision: fp32}}
stages:
  - name: sft
    objective: sft
    init_from: {demo_run / "pretrain" / "hf" / "final"}
    data: {{sets: [{{path: {other}}}]}}
    max_steps: 2
"""
    with pytest.raises(ValueError, match="vocabulary differs from the model's"):
        train(str(_recipe(tmp_path, body)), str(tmp_path / "o"))
    assert not list((tmp_path / "o").glob("sft/ckpt/*"))


def test_nan_loss_stops_with_no_half_written_checkpoint(sets, tmp_path, monkeypatch):
    import shardsmith.trainer.objectives as O

    real = O.token_losses
    calls = {"n": 0}

    def poisoned(logits, *a, **k):
        out = real(logits, *a, **k)
        if not logits.requires_grad:  # evaluation
            return out
        calls["n"] += 1
        return out * float("nan") if calls["n"] > 3 else out  # training steps 0-2 fine, step 3 NaN

    monkeypatch.setattr(O, "token_losses", poisoned)
    out = tmp_path / "o"
    with pytest.raises(ValueError, match=r"step 3: loss is nan"):
        train(str(_recipe(tmp_path, BASE.replace("PT", str(sets["pt"])).replace("engine:", "engine:"))), str(out))
    ck = out / "pretrain" / "ckpt"
    assert (ck / "latest").read_text().strip() == "step-2"
    assert sorted(p.name for p in ck.iterdir() if p.is_dir()) == ["step-2"]
    hf = out / "pretrain" / "hf"
    assert sorted(p.name for p in hf.iterdir()) == ["step-2"]
    assert not (hf / "final").exists()


def test_bf16_frozen_embeddings_checkpointing_neftune_mixce(sets, tmp_path):
    """The SFT-stage options together, in bf16 under ZeRO-2: the run trains, the (tied) embeddings stay frozen,
    the export is bf16 and loads."""
    import torch
    from safetensors.torch import load_file

    body = f"""
name: opts
seed: 5
engine: {{zero_stage: 2, precision: bf16}}
stages:
  - name: pre
    data: {{sets: [{{path: {sets["pt"]}}}]}}
    seq_len: 64
    micro_batch_size: 2
    max_steps: 3
    export_dtype: fp32
  - name: sft
    objective: mixce
    mixce_ratio: 0.75
    neftune_alpha: 5.0
    freeze_embeddings: true
    gradient_checkpointing: true
    data: {{sets: [{{path: {sets["sft"]}}}]}}
    seq_len: 128
    micro_batch_size: 2
    grad_accum: 2
    max_steps: 4
    optimizer: {{lr: 1.0e-2}}
"""
    out = tmp_path / "o"
    train(str(_recipe(tmp_path, body)), str(out))
    r = [x for x in rows(out / "sft" / "metrics.jsonl") if "loss" in x]
    assert len(r) == 4 and all(x["loss"] == x["loss"] for x in r)
    before = load_file(out / "pre" / "hf" / "final" / "model.safetensors")
    after = load_file(out / "sft" / "hf" / "final" / "model.safetensors")
    assert after["transformer.wte.weight"].dtype == torch.bfloat16
    emb0 = before["transformer.wte.weight"].to(torch.bfloat16)
    assert torch.equal(after["transformer.wte.weight"], emb0)  # frozen
    assert not torch.equal(after["transformer.h.0.mlp.c_fc.weight"], before["transformer.h.0.mlp.c_fc.weight"].to(torch.bfloat16))
    outs = generate(str(out / "sft" / "hf" / "final"), ["the cat"], max_new_tokens=5)
    assert len(outs) == 1


def test_transformer_1b_chat_chain_runs_in_miniature(sets, tmp_path, monkeypatch):
    """The shipped T1B recipe (pretrain -> SFT -> DPO, LLaMA architecture) end to end with a tiny LLaMA and a few
    steps per stage: every stage starts from the previous export and the DPO stage starts at log 2."""
    import math

    monkeypatch.setenv("T1B_PRETRAIN", str(sets["pt"]))
    monkeypatch.setenv("T1B_SFT", str(sets["sft"]))
    monkeypatch.setenv("T1B_DPO", str(sets["pref"]))
    out = tmp_path / "t1b"
    train(str(REPO / "recipes" / "train" / "transformer-1b-chat.yaml"), str(out), overrides=[
        "model.preset=tiny-llama", "engine.precision=fp32",
        "stages.pretrain.max_steps=8", "stages.pretrain.seq_len=64", "stages.pretrain.micro_batch_size=4",
        "stages.pretrain.grad_accum=1", "stages.pretrain.save_every=8", "stages.pretrain.eval_every=4",
        "stages.pretrain.schedule.warmup_steps=2",
        "stages.sft.epochs=0.1", "stages.sft.seq_len=128", "stages.sft.micro_batch_size=4",
        "stages.sft.grad_accum=1", "stages.sft.save_every=4", "stages.sft.eval_every=4",
        "stages.dpo.epochs=0.5", "stages.dpo.seq_len=64", "stages.dpo.micro_batch_size=4",
        "stages.dpo.grad_accum=1", "stages.dpo.save_every=4", "stages.dpo.eval_every=4",
    ])
    info = {s: json.loads((out / s / "stage.json").read_text()) for s in ("pretrain", "sft", "dpo")}
    assert all(i["status"] == "done" for i in info.values())
    assert info["sft"]["init_digest"] == info["pretrain"]["final_digest"]
    assert info["dpo"]["init_digest"] == info["sft"]["final_digest"]
    assert info["dpo"]["total_steps"] == math.ceil(0.5 * 96 / 4)
    first = [x for x in rows(out / "dpo" / "metrics.jsonl") if "loss" in x][0]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-6)
    cfg = json.loads((out / "dpo" / "hf" / "final" / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"]


def test_dpo_options_reference_folder_sft_term_mean_logp(sets, demo_run, tmp_path):
    """init_from and dpo.reference name the same HF folder: the first loss is log 2 plus sft_weight x the chosen
    answers' mean NLL; with logp: mean the margin is still 0 at step 1; an IPO stage runs too."""
    import math

    sft = demo_run / "sft" / "hf" / "final"
    body = f"""
name: dpo-options
seed: 5
model: {{preset: tiny-gpt2}}
engine: {{zero_stage: 2, precision: fp32}}
stages:
  - name: dpo
    objective: dpo
    init_from: {sft}
    data: {{sets: [{{path: {sets['pref']}}}], val_rows: 4}}
    seq_len: 64
    micro_batch_size: 4
    max_steps: 4
    optimizer: {{lr: 1.0e-3}}
    dpo: {{beta: 0.2, sft_weight: 0.5, logp: mean, reference: {sft}}}
  - name: ipo
    objective: dpo
    data: {{sets: [{{path: {sets['pref']}}}]}}
    seq_len: 64
    micro_batch_size: 4
    max_steps: 2
    dpo: {{loss_type: ipo, beta: 0.5}}
"""
    recipe = _recipe(tmp_path, body)
    train(str(recipe), str(tmp_path / "out"))
    first = [x for x in rows(tmp_path / "out" / "dpo" / "metrics.jsonl") if "loss" in x][0]
    assert first["dpo_margin"] == pytest.approx(0.0, abs=1e-6)
    assert first["dpo_nll_chosen"] > 0.1
    assert first["loss"] == pytest.approx(math.log(2) + 0.5 * first["dpo_nll_chosen"], rel=1e-5)
    ipo = [x for x in rows(tmp_path / "out" / "ipo" / "metrics.jsonl") if "loss" in x][0]
    assert ipo["loss"] == pytest.approx((0 - 1 / (2 * 0.5)) ** 2, rel=1e-5)  # (m - 1/(2 beta))^2 at m = 0
