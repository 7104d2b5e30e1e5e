"""engine.batch: global — the same recipe on 1, 2 and 3 CPU processes (gloo; 2 and 3 through
scripts/launch_torchrun.sh) keeps the recipe's global batch: each step's rows are split disjointly over the ranks,
their union is the one-process step's rows, and the loss curves agree to 1e-4. A world size that does not divide the
global batch is refused before any step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F

REPO = Path(__file__).resolve().parents[1]

RECIPE = """
name: scale
seed: 3
model: {preset: tiny-gpt2}
engine: {zero_stage: 2, precision: fp32, batch: global}
stages:
  - name: pretrain
    objective: clm
    data: {sets: [{path: PT}], sampling: epoch}
    seq_len: 64
    micro_batch_size: 2
    grad_accum: 3
    max_steps: 4
    optimizer: {lr: 2.0e-3}
    log_every: 1
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiproc")
    tok = F.build_tokenizer(root / "tok")
    pt = F.pretrain_set(root / "pt", tok, n_train=120, n_val=8)
    path = root / "scale.yaml"
    path.write_text(RECIPE.replace("PT", str(pt)))
    return path


def _run(recipe: Path, out: Path, dbg: Path, nproc: int, port: str) -> subprocess.CompletedProcess:
    dbg.mkdir()
    env = F.child_env(SHARDSMITH_TRAIN_DEBUG_DIR=str(dbg), NPROC=str(nproc), MASTER_PORT=port)
    if nproc == 1:  # a plain process: the trainer starts a world of one itself
        cmd = [sys.executable, "-m", "shardsmith.trainer", str(recipe), "--out", str(out)]
    else:
        cmd = ["bash", str(REPO / "scripts" / "launch_torchrun.sh"), str(recipe), str(out)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _steps(dbg: Path, world: int) -> list[list[set]]:
    """[step][rank] -> the set of row keys that rank trained on."""
    per_rank = [[json.loads(x) for x in (dbg / f"pretrain.rank{r}.jsonl").read_text().splitlines()]
                for r in range(world)]
    return [[{tuple(k) for mb in s["keys"] for k in mb} for s in step] for step in zip(*per_rank)]


@pytest.mark.slow  # six trainer processes in all (1 + 2 + 3): ~1-3 min on 2 cores
def test_one_two_three_processes_same_global_batch_same_loss_curve(recipe, tmp_path):
    curves, rows = {}, {}
    for world in (1, 2, 3):
        out, dbg = tmp_path / f"w{world}", tmp_path / f"dbg{world}"
        port = F.free_port()
        res = _run(recipe, out, dbg, world, port)
        assert res.returncode == 0, res.stderr[-3000:]
        # DeepSpeed's CPU allreduce buffers (67 MB each in /dev/shm) do not outlive the run
        assert not list(Path("/dev/shm").glob(f"deepspeed_allreduce_buffer_*_{port}_*"))
        info = json.loads((out / "pretrain" / "stage.json").read_text())
        assert info["world_size"] == world and info["global_batch_rows"] == 6
        metrics = [json.loads(x) for x in (out / "pretrain" / "metrics.jsonl").read_text().splitlines()]
        curves[world] = [m["loss"] for m in metrics if "loss" in m]
        rows[world] = _steps(dbg, world)
        for step in rows[world]:
            assert sum(len(r) for r in step) == 6 and len(set().union(*step)) == 6  # disjoint shares of 6 rows
    for world in (2, 3):
        assert [set().union(*s) for s in rows[world]] == [s[0] for s in rows[1]]  # the same rows per step
        assert len(curves[world]) == len(curves[1]) == 4
        assert max(abs(a - b) for a, b in zip(curves[world], curves[1])) < 1e-4, (world, curves)


def test_a_world_that_does_not_divide_the_global_batch_is_refused():
    from shardsmith.schemas.train_recipe import DataSet, DataSpec, EngineSpec, StageSpec
    from shardsmith.trainer.engine import EngineError, fit_global_batch

    st = StageSpec(name="s", data=DataSpec(sets=[DataSet(path="x")]), micro_batch_size=4, grad_accum=3, max_steps=1)
    spec = EngineSpec(batch="global")
    fitted = {w: fit_global_batch(st, spec, w) for w in (1, 2, 3, 4, 6, 12)}
    assert {w: (s.micro_batch_size, s.grad_accum) for w, s in fitted.items()} == {
        1: (4, 3), 2: (3, 2), 3: (4, 1), 4: (3, 1), 6: (2, 1), 12: (1, 1)}
    with pytest.raises(EngineError, match="global batch of 12 rows .* cannot be split evenly over 5 processes"):
        fit_global_batch(st, spec, 5)
    assert fit_global_batch(st, EngineSpec(), 5) is st  # per_rank: the recipe is each rank's share
