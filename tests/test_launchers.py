"""The launch scripts users run: scripts/launch_torchrun.sh and scripts/launch_deepspeed.sh start two processes
(gloo on CPU) on one recipe; both finish with a world of 2 and the same weights (same recipe, same seed)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F

REPO = Path(__file__).resolve().parents[1]


def _port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("launch")
    tok = F.build_tokenizer(root / "tok")
    pref = F.preference_set(root / "pref", tok, n_train=32, n_val=4)
    return F.dpo_recipe(root / "launch.yaml", pref)


def _launch(script: str, recipe: Path, out: Path, **env) -> None:
    e = F.child_env(MASTER_PORT=_port(), **env)
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
