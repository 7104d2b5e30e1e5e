"""The launch scripts users run: scripts/launch_torchrun.sh and scripts/launch_deepspeed.sh start two processes
(gloo on CPU) on one recipe; both finish with a world of 2 and the same weights (same recipe, same seed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("launch")
    tok = F.build_tokenizer(root / "tok")
    pref = F.preference_set(root / "pref", tok, n_train=32, n_val=4)
    return F.dpo_recipe(root / "launch.yaml", pref)


def _launch(script: str, recipe: Path, out: Path, **env) -> None:
    e = F.child_env(MASTER_PORT=F.free_port(), **env)
    res = subprocess.run(["bash", str(REPO / "scripts" / script), str(recipe), str(out)], env=e, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])


def test_torchrun_and_deepspeed_launchers_run_two_processes(recipe, tmp_path):
    from safetensors.torch import load_file

    _launch("launch_torchrun.sh", recipe, tmp_path / "torchrun", NPROC="2")
    _launch("launch_deepspeed.sh", recipe, tmp_path / "deepspeed", NGPUS="2")
    for name in ("torchrun", "deepspeed"):
        info = json.loads((tmp_path / name / "dpo" / "stage.json").read_text())
        assert info["status"] == "done" and info["world_size"] == 2 and info["global_batch_rows"] == 4
    a = load_file(tmp_path / "torchrun" / "dpo" / "hf" / "final" / "model.safetensors")
    b = load_file(tmp_path / "deepspeed" / "dpo" / "hf" / "final" / "model.safetensors")
    assert a.keys() == b.keys() and max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6


# ------------------------------------------------------------------------------------------------------------
# the batch plan and the generated Slurm script (no cluster: the script is parsed)

GLOBAL = """
name: plan
model: {preset: tiny-gpt2}
engine: {zero_stage: 2, batch: global}
stages:
  - name: pretrain
    data: {sets: [{path: unused}]}
    micro_batch_size: 8
    grad_accum: 4
    max_steps: 10
"""


def _sbatch(text: str) -> dict:
    """#SBATCH --key[=value] lines -> {key: value or True}."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#SBATCH --"):
            key, _, value = line[len("#SBATCH --"):].partition("=")
            out[key] = value or True
    return out


def test_generated_slurm_script_runs_the_recipe_on_every_node(tmp_path):
    import shlex

    from shardsmith.trainer.launch import main

    recipe = tmp_path / "plan.yaml"
    recipe.write_text(GLOBAL)
    job = tmp_path / "job.sbatch"
    assert main(["slurm", str(recipe), "--out", str(tmp_path / "runs"), "--nodes", "2", "--gpus-per-node", "8",
                 "--partition", "gpu", "--time", "12:00:00", "--set", "stages.pretrain.max_steps=20",
                 "--write", str(job)]) == 0
    text = job.read_text()
    assert subprocess.run(["bash", "-n", str(job)]).returncode == 0  # valid bash
    assert _sbatch(text) == {"job-name": "shardsmith-train", "nodes": "2", "ntasks-per-node": "1",
                             "gpus-per-node": "8", "cpus-per-task": "16", "output": "%x-%j.out", "requeue": True,
                             "partition": "gpu", "time": "12:00:00"}
    srun = next(line for line in text.splitlines() if line.startswith("srun "))
    argv = shlex.split(srun)
    run = argv[argv.index("torchrun") + 1:]
    opts = dict(zip(run[:-1:2], run[1::2]))
    assert opts["--nnodes"] == "$SLURM_JOB_NUM_NODES" and opts["--nproc_per_node"] == "8"
    assert opts["--rdzv_backend"] == "c10d" and opts["--rdzv_id"] == "$SLURM_JOB_ID"
    trainer = run[run.index("-m"):]
    assert trainer[:3] == ["-m", "shardsmith.trainer", str(recipe.resolve())]
    assert trainer[3:] == ["--out", str((tmp_path / "runs").resolve()), "--set", "stages.pretrain.max_steps=20",
                           "--resume"]


def test_plan_derives_micro_and_accumulation_and_refuses_an_uneven_world(tmp_path, capsys):
    from shardsmith.trainer.launch import hostfile_world, main

    recipe = tmp_path / "plan.yaml"
    recipe.write_text(GLOBAL)
    assert main(["plan", str(recipe), "--world", "16"]) == 0
    assert "world 16 x micro 2 x accum 1 = 32 rows" in capsys.readouterr().out
    hosts = tmp_path / "hosts"
    hosts.write_text("node-a slots=8  # first\nnode-b slots=4\n\n")
    assert hostfile_world(hosts) == 12
    assert main(["plan", str(recipe), "--hostfile", str(hosts)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "global batch of 32 rows" in err and "over 12 processes" in err
    assert main(["slurm", str(recipe), "--out", "x", "--nodes", "3", "--gpus-per-node", "4"]) == 2
    hosts.write_text("node-a slots=eight\n")
    with pytest.raises(ValueError, match=r"hosts:1: expected 'HOST slots=N'"):
        hostfile_world(hosts)
