"""Objectives as registry rows, and the ones the seeds still lacked: Memphis-CoT's rank loss, logit distillation,
Muon, LoRA. Formulas against hand computation; short real runs through the trainer (tiny GPT-2, fp32, CPU)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F
from shardsmith.trainer.runner import train


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("objectives")
    tok = F.build_tokenizer(root / "tok")
    return {"root": root, "tok": tok,
            "sft": F.sft_set(root / "sft", tok, n_train=96, n_val=8),
            "pref": F.preference_set(root / "pref", tok, n_train=64, n_val=12)}


def test_every_objective_of_the_schema_has_one_registry_row():
    from shardsmith.schemas.train_recipe import OBJECTIVE_ROWS, Objective
    from shardsmith.trainer.objectives import OBJECTIVES

    assert set(OBJECTIVES) == set(OBJECTIVE_ROWS) == set(Objective.__args__)
    for name, cls in OBJECTIVES.items():
        assert cls.name == name and cls.loss_sum is not OBJECTIVES["clm"].__mro__[-2].loss_sum


# ------------------------------------------------------------------------------------------------------------
# rank (Memphis-CoT)


def test_rank_loss_equals_a_hand_computation_on_fixed_log_probs():
    """Two pairs, log-probs fixed per token: s = mean log p over the answer; loss = -s_c + w·log(1 + e^(s_r - s_c))."""
    import torch
    from shardsmith.trainer.objectives import IGNORE, rank_losses, sequence_logps

    # rows: chosen 0, chosen 1, rejected 0, rejected 1; vocab 4; the label's log-prob is set through the logits
    logp_tok = [[-0.5, -1.0, None], [-2.0, None, None], [-1.5, -2.5, -0.5], [-0.25, -0.75, None]]
    logits = torch.full((4, 3, 4), -30.0)
    labels = torch.full((4, 3), IGNORE)
    for r, row in enumerate(logp_tok):
        for t, lp in enumerate(row):
            if lp is None:
                continue
            p = math.exp(lp)  # token 1 gets p, the other three share 1 - p
            logits[r, t] = torch.tensor([math.log((1 - p) / 3), lp, math.log((1 - p) / 3), math.log((1 - p) / 3)])
            labels[r, t] = 1
    logp, count = sequence_logps(logits, labels)
    s = (logp / count).tolist()
    hand_s = [np.mean([x for x in row if x is not None]) for row in logp_tok]
    assert s == pytest.approx(hand_s, abs=1e-5)
    w = 0.25
    got = rank_losses(torch.tensor(s[:2]), torch.tensor(s[2:]), w).tolist()
    hand = [-hand_s[i] + w * math.log1p(math.exp(hand_s[2 + i] - hand_s[i])) for i in range(2)]
    assert got == pytest.approx(hand, abs=1e-5)
    assert hand == pytest.approx([0.75 + 0.25 * math.log1p(math.exp(-1.5 + 0.75)),
                                  2.0 + 0.25 * math.log1p(math.exp(-0.5 + 2.0))], abs=1e-12)


def test_rank_settings_are_validated():
    from pydantic import ValidationError
    from shardsmith.schemas.train_recipe import StageSpec

    base = {"name": "r", "objective": "rank", "data": {"sets": [{"path": "x"}]}, "max_steps": 1}
    spec = StageSpec(**base)
    assert spec.rank.weight == 0.25 and not spec.packing and spec.dpo is None
    with pytest.raises(ValidationError, match="objective is 'rank'"):
        StageSpec(**base, dpo={"beta": 0.1})
    with pytest.raises(ValidationError, match="never packed"):
        StageSpec(**{**base, "data": {"sets": [{"path": "x"}], "packing": True}})


RANK = """
name: rank
seed: 4
model: {{preset: tiny-gpt2}}
engine: {{zero_stage: 0, precision: fp32}}
stages:
  - name: rank
    objective: rank
    rank: {{weight: {weight}}}
    init_from: scratch
    data: {{sets: [{{path: {pref}}}], val_rows: 12}}
    seq_len: 64
    micro_batch_size: 8
    max_steps: 12
    eval_every: 12
    optimizer: {{lr: 3.0e-3}}
"""


def test_rank_training_raises_the_held_out_chosen_over_rejected_margin(sets, tmp_path):
    recipe = tmp_path / "rank.yaml"
    recipe.write_text(RANK.format(weight=1.0, pref=sets["pref"]))
    train(str(recipe), str(tmp_path / "out"))
    r = rows(tmp_path / "out" / "rank" / "metrics.jsonl")
    val = [x for x in r if "val_loss" in x]
    assert val[0]["step"] == 0 and val[-1]["step"] == 12
    assert val[-1]["val_rank_margin"] > val[0]["val_rank_margin"] + 0.05, (val[0], val[-1])
    assert val[-1]["val_rank_accuracy"] > val[0]["val_rank_accuracy"]
    first = [x for x in r if "loss" in x][0]
    # the logged loss is the per-pair mean of -s_c + w·softplus(s_r - s_c), checked on the step's own statistics
    assert first["pairs"] == 8 and first["loss"] >= first["rank_nll_chosen"]


# ------------------------------------------------------------------------------------------------------------
# logit distillation


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_kd_loss_follows_its_formula_in_temperature_and_alpha():
    """One ignored and two scored tokens; the student has one padded vocabulary row more than the teacher (never in
    the KL). By hand: loss = alpha·T²·sum p_T (log p_T - log q_T) + (1 - alpha)·(-log q_1[label])."""
    import torch
    from shardsmith.trainer.objectives import IGNORE, kd_token_losses

    s = np.array([[[1.0, 0.0, -1.0, 0.5], [0.3, 0.2, 0.1, 9.0], [2.0, -1.0, 0.5, -3.0]]])
    t = np.array([[[0.0, 2.0, 0.0], [5.0, 5.0, 5.0], [1.0, 1.0, -2.0]]])
    labels = np.array([[2, IGNORE, 0]])

    def hand(T, alpha):
        out = []
        for i in (0, 2):
            p, q = _softmax(t[0, i] / T), _softmax(s[0, i, :3] / T)
            kl = float((p * (np.log(p) - np.log(q))).sum())
            ce = float(-np.log(_softmax(s[0, i])[labels[0, i]]))
            out.append((alpha * T * T * kl + (1 - alpha) * ce, kl, ce))
        return out

    for T, alpha in ((1.0, 0.5), (2.0, 0.3), (4.0, 1.0), (3.0, 0.0)):
        loss, kl, ce = kd_token_losses(torch.tensor(s), torch.tensor(t), torch.tensor(labels), T, alpha)
        got = np.array([loss.tolist(), kl.tolist(), ce.tolist()]).T
        assert np.allclose(got, np.array(hand(T, alpha)), rtol=1e-5, atol=1e-7), (T, alpha, got)  # float32
    # alpha 0 is plain CE whatever T; alpha 1 is T²·KL, and a higher T softens both sides (smaller KL here)
    ce_only = kd_token_losses(torch.tensor(s), torch.tensor(t), torch.tensor(labels), 7.0, 0.0)[0]
    assert ce_only.tolist() == pytest.approx([h[2] for h in hand(1.0, 0.0)], rel=1e-6)
    kl1, kl4 = (kd_token_losses(torch.tensor(s), torch.tensor(t), torch.tensor(labels), T, 1.0)[1] for T in (1.0, 4.0))
    assert (kl4 < kl1).all()


def test_kd_settings_are_validated():
    from pydantic import ValidationError
    from shardsmith.schemas.train_recipe import StageSpec

    base = {"name": "k", "objective": "kd", "data": {"sets": [{"path": "x"}]}, "max_steps": 1}
    with pytest.raises(ValidationError, match="needs its `kd` settings"):
        StageSpec(**base)
    spec = StageSpec(**base, kd={"teacher": "t"})
    assert spec.packing and spec.kd.temperature == 2.0 and spec.kd.alpha == 0.5
    with pytest.raises(ValidationError, match="objective is 'sft'"):
        StageSpec(**{**base, "objective": "sft"}, kd={"teacher": "t"})


STAGE = """
  - name: {name}
    objective: {objective}
    init_from: scratch
    data: {{sets: [{{path: {data}}}], val_rows: 8}}
    seq_len: 128
    micro_batch_size: 8
    max_steps: {steps}
    eval_every: {steps}
    optimizer: {{lr: 3.0e-3}}
"""


@pytest.fixture(scope="module")
def teacher(sets, tmp_path_factory):
    """A tiny GPT-2 fine-tuned on the SFT set by this trainer: the teacher of the distillation tests."""
    out = tmp_path_factory.mktemp("teacher")
    (out / "t.yaml").write_text("name: teacher\nseed: 11\nmodel: {preset: tiny-gpt2}\n"
                                "engine: {zero_stage: 0, precision: fp32}\nstages:"
                                + STAGE.format(name="sft", objective="sft", data=sets["sft"], steps=16))
    train(str(out / "t.yaml"), str(out / "run"))
    return out / "run" / "sft" / "hf" / "final"


def test_kd_lowers_the_kl_to_the_teacher_on_held_out_rows(sets, teacher, tmp_path):
    body = ("name: kd\nseed: 5\nmodel: {preset: tiny-gpt2}\nengine: {zero_stage: 0, precision: fp32}\nstages:"
            + STAGE.format(name="kd", objective="kd", data=sets["sft"], steps=12)
            + f"    kd: {{teacher: {teacher}, temperature: 2.0, alpha: 0.9}}\n")
    (tmp_path / "kd.yaml").write_text(body)
    train(str(tmp_path / "kd.yaml"), str(tmp_path / "out"))
    r = rows(tmp_path / "out" / "kd" / "metrics.jsonl")
    val = [x for x in r if "val_loss" in x]
    assert val[0]["step"] == 0 and val[-1]["step"] == 12
    assert val[-1]["val_kd_kl"] < 0.5 * val[0]["val_kd_kl"], (val[0], val[-1])
    first = [x for x in r if "loss" in x][0]
    # the logged loss is the formula of the logged per-token means (the sum is linear in KL and CE)
    assert first["loss"] == pytest.approx(0.9 * 4 * first["kd_kl"] + 0.1 * first["kd_ce"], rel=1e-5)


def test_a_teacher_with_another_tokenizer_is_refused_before_work(sets, teacher, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(teacher, other)
    tok = F.build_tokenizer(tmp_path / "tok300", vocab_size=300)
    shutil.copy(tok / "tokenizer.json", other / "tokenizer.json")
    body = ("name: kd\nmodel: {preset: tiny-gpt2}\nengine: {zero_stage: 0, precision: fp32}\nstages:"
            + STAGE.format(name="kd", objective="kd", data=sets["sft"], steps=2) + f"    kd: {{teacher: {other}}}\n")
    (tmp_path / "kd.yaml").write_text(body)
    with pytest.raises(ValueError, match=r"kd\.teacher: .*tokenizer differs from the shard set's"):
        train(str(tmp_path / "kd.yaml"), str(tmp_path / "out"))
    assert not (tmp_path / "out" / "kd").exists()


# ------------------------------------------------------------------------------------------------------------
# Muon


def test_muon_takes_the_block_matrices_and_adamw_the_rest():
    from shardsmith.schemas.train_recipe import EngineSpec, OptimizerSpec
    from shardsmith.trainer import engine as E
    from shardsmith.trainer.models import PRESETS
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(**PRESETS["tiny-gpt2"][1], vocab_size=64))
    muon, decay, no_decay = E.muon_split(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in decay} == {"transformer.wte.weight", "transformer.wpe.weight"}  # head tied to wte
    assert all(p.dim() == 1 for p in no_decay) and muon and all(p.dim() == 2 for p in muon)
    assert {names[id(p)].rsplit(".", 2)[-2] for p in muon} == {"c_attn", "c_proj", "c_fc"}
    o = OptimizerSpec(kind="muon", lr=1e-3, muon_lr=0.02, muon_momentum=0.9)
    opt = E.build_optimizer(model, o, EngineSpec(zero_stage=0, precision="fp32"))
    assert [g["algo"] for g in opt.param_groups] == ["muon", "adamw", "adamw"]
    assert opt.param_groups[0]["lr_scale"] == pytest.approx(20.0) and opt.param_groups[0]["momentum"] == 0.9
    assert [type(x).__name__ for x in (opt._muon, opt._adamw)] == ["Muon", "AdamW"]
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="muon_lr applies to kind muon only"):
        OptimizerSpec(muon_lr=0.02)
    with pytest.raises(E.EngineError, match="muon needs engine.zero_stage 0"):
        E.build_optimizer(model, OptimizerSpec(kind="muon"), EngineSpec(zero_stage=2, precision="fp32"))


RESUME = """
name: resume
seed: 7
model: {preset: PRESET}
engine: {zero_stage: 0, precision: fp32}
stages:
  - name: pretrain
    objective: clm
    data: {sets: [{path: PT}]}
    seq_len: 64
    micro_batch_size: 2
    grad_accum: 2
    max_steps: 14
    schedule: {kind: cosine, warmup_steps: 3}
    save_every: 4
    log_every: 1
"""
MUON = RESUME.replace("PRESET", "small-gpt2") + "    optimizer: {kind: muon, lr: 2.0e-3, muon_lr: 0.02}\n"
LORA = (RESUME.replace("PRESET", "tiny-gpt2") + "    optimizer: {lr: 1.0e-2}\n"
        + "    lora: {r: 4, alpha: 8, dropout: 0.1, targets: [c_attn, c_proj, c_fc]}\n")


@pytest.fixture(scope="module")
def pt(sets):
    return F.pretrain_set(sets["root"] / "pt", sets["tok"], n_train=200, n_val=10)


@pytest.mark.parametrize("what", ["muon", "lora"])
def test_muon_and_lora_train_and_resume_exactly_after_a_kill(pt, tmp_path, what):
    """Muon + AdamW on the demo recipe's model (small-gpt2), and LoRA adapters (with dropout): the loss falls below
    step 1's, and a run killed after its step-8 checkpoint and resumed logs the same losses (1e-5) and ends with the
    same weights (LoRA: the same merged export and the same adapter)."""
    from safetensors.torch import load_file

    recipe = tmp_path / f"{what}.yaml"
    recipe.write_text({"muon": MUON, "lora": LORA}[what].replace("PT", str(pt)))
    train(str(recipe), str(tmp_path / "whole"))
    F.run_until_killed(recipe, tmp_path / "killed", tmp_path)
    train(str(recipe), str(tmp_path / "killed"), resume=True)
    a, b = ({r["step"]: r["loss"] for r in rows(tmp_path / run / "pretrain" / "metrics.jsonl") if "loss" in r}
            for run in ("whole", "killed"))
    assert sorted(a) == sorted(b) == list(range(1, 15))
    assert sum(a[s] for s in range(10, 15)) / 5 < a[1] - {"muon": 0.3, "lora": 0.1}[what], a  # LoRA: a random base
    for step in range(9, 15):
        assert abs(a[step] - b[step]) <= 1e-5, (step, a[step], b[step])
    files = ["final/model.safetensors"] + (["final-adapter/adapter_model.safetensors"] if what == "lora" else [])
    for f in files:
        wa, wb = (load_file(tmp_path / run / "pretrain" / "hf" / f) for run in ("whole", "killed"))
        assert wa.keys() == wb.keys() and max(float((wa[k] - wb[k]).abs().max()) for k in wa) <= 1e-5, f


# ------------------------------------------------------------------------------------------------------------
# LoRA


def test_lora_trains_only_adapters_and_exports_base_plus_scaled_ba(sets, teacher, tmp_path):
    """LoRA on the teacher's attention and MLP projections: the merged ``hf/final`` equals the base weights plus
    B·A·(alpha/r) (read back from ``hf/final-adapter``) to 1e-6, every other weight is the base's bit for bit, and the
    export loads in transformers."""
    import torch
    from safetensors.torch import load_file
    from shardsmith.trainer.runner import generate
    from transformers import AutoModelForCausalLM

    r, alpha = 4, 8.0
    body = (f"name: lora\nseed: 5\nmodel: {{preset: tiny-gpt2}}\nengine: {{zero_stage: 2, precision: fp32}}\nstages:"
            + STAGE.format(name="lora", objective="sft", data=sets["sft"], steps=4).replace(
                "init_from: scratch", f"init_from: {teacher}")
            + f"    lora: {{r: {r}, alpha: {alpha}, dropout: 0.1, targets: [c_attn, c_fc]}}\n    save_every: 2\n")
    (tmp_path / "lora.yaml").write_text(body)
    train(str(tmp_path / "lora.yaml"), str(tmp_path / "out"))
    hf = tmp_path / "out" / "lora" / "hf"
    base = load_file(teacher / "model.safetensors")
    merged = load_file(hf / "final" / "model.safetensors")
    adapter = load_file(hf / "final-adapter" / "adapter_model.safetensors")
    cfg = json.loads((hf / "final-adapter" / "adapter_config.json").read_text())
    assert cfg["r"] == r and cfg["lora_alpha"] == alpha and set(cfg["target_modules"]) == {"c_attn", "c_fc"}
    assert cfg["lora_dropout"] == 0.1
    assert adapter and all(".lora_A." in k or ".lora_B." in k for k in adapter)
    assert base.keys() == merged.keys()
    adapted = set()
    for k_a, a in adapter.items():
        if ".lora_A." not in k_a:
            continue
        b = adapter[k_a.replace(".lora_A.", ".lora_B.")]
        assert float(b.abs().max()) > 0  # B starts at zero: the adapter trained
        name = k_a.split("base_model.model.", 1)[1].split(".lora_A.")[0] + ".weight"
        delta = (b @ a) * (alpha / r)
        w0, w1 = base[name], merged[name]
        if delta.shape != w0.shape:  # GPT-2's Conv1D stores (in, out)
            delta = delta.T
        assert float((w1 - (w0 + delta)).abs().max()) <= 1e-6, name
        adapted.add(name)
    assert len(adapted) == 2 * 2  # 2 layers x (c_attn, c_fc)
    for k in base.keys() - adapted:
        assert torch.equal(base[k], merged[k]), k
    assert (tmp_path / "out" / "lora" / "hf" / "step-2-adapter" / "adapter_model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(hf / "final")
    assert not any("lora" in n for n, _ in model.named_parameters())
    assert len(generate(str(hf / "final"), ["Q: what does the cat sees?"], max_new_tokens=4)) == 1
