"""ZeRO-Offload (``engine.offload_optimizer: true``): DeepSpeed's CPU Adam in AdamW mode trains the same losses as the
torch AdamW of the non-offloaded run, with the same weight-decay groups.

The first use JIT-compiles DeepSpeed's cpu_adam op (minutes on 2 cores); it is cached in $TORCH_EXTENSIONS_DIR
(default ~/.cache/torch_extensions), so later runs load it in a second."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F  # noqa: E402

from shardsmith.trainer.runner import train  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "recipes" / "train" / "demo.yaml"


@pytest.fixture(scope="module")
def pt_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("offload")
    tok = F.build_tokenizer(root / "tok")
    return F.pretrain_set(root / "pt", tok, n_train=120, n_val=10)


def run(pt_set, out: Path, offload: bool) -> tuple[list[dict], dict]:
    os.environ["SHARDSMITH_DEMO_MIX"] = str(pt_set)
    train(str(DEMO), str(out), stage="pretrain", overrides=[
        "engine.precision=fp32", "model.preset=tiny-gpt2", "engine.zero_stage=2",
        f"engine.offload_optimizer={str(offload).lower()}", "stages.pretrain.max_steps=5",
        "stages.pretrain.eval_every=5", "stages.pretrain.seq_len=64", "stages.pretrain.micro_batch_size=4",
        "stages.pretrain.log_every=1", "stages.pretrain.optimizer.weight_decay=0.5",
    ])
    rows = [json.loads(x) for x in (out / "pretrain" / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return rows, json.loads((out / "pretrain" / "stage.json").read_text())


def test_offloaded_optimizer_trains_the_same_losses_as_adamw(pt_set, tmp_path):
    plain, plain_info = run(pt_set, tmp_path / "plain", offload=False)
    off, off_info = run(pt_set, tmp_path / "offload", offload=True)
    assert off_info["deepspeed_config"]["zero_optimization"]["offload_optimizer"] == {"device": "cpu"}
    assert "offload_optimizer" not in plain_info["deepspeed_config"]["zero_optimization"]
    loss = [r["loss"] for r in plain if "loss" in r]
    assert len(loss) == 5 and loss[-1] < loss[0]  # it trained
    assert [r["loss"] for r in off if "loss" in r] == pytest.approx(loss, abs=1e-4)
    assert [r["val_loss"] for r in off if "val_loss" in r] == pytest.approx(
        [r["val_loss"] for r in plain if "val_loss" in r], abs=1e-4)


def test_cpu_adam_gets_adamw_mode_and_the_weight_decay_groups():
    import torch
    from deepspeed.ops.adam import DeepSpeedCPUAdam
    from shardsmith.schemas.train_recipe import EngineSpec, OptimizerSpec
    from shardsmith.trainer.engine import build_optimizer

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    o = OptimizerSpec(lr=1e-3, weight_decay=0.3, betas=(0.8, 0.9), eps=1e-6)
    plain = build_optimizer(model, o, EngineSpec(offload_optimizer=False))
    off = build_optimizer(model, o, EngineSpec(offload_optimizer=True))
    assert isinstance(off, DeepSpeedCPUAdam) and off.adam_w_mode
    assert type(plain) is torch.optim.AdamW
    for a, b in zip(plain.param_groups, off.param_groups, strict=True):
        assert [id(p) for p in a["params"]] == [id(p) for p in b["params"]]
        assert (a["weight_decay"], a["lr"], tuple(a["betas"]), a["eps"]) == (
            b["weight_decay"], b["lr"], tuple(b["betas"]), b["eps"])
    assert [g["weight_decay"] for g in off.param_groups] == [0.3, 0.0]
