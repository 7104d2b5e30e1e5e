"""Weight merging of two HF checkpoints of one architecture: SLERP and linear, per tensor, and a moving average.

FF_3.13 kept a SLERP t=0.10 blend of its repair-stage champion with its parent; Memphis-CoT kept a SLERP moving
average (0.99) between self-teaching rounds. ``merge_folders(a, b, t)`` gives ``a`` at t=0 and ``b`` at t=1.

SLERP follows mergekit's per-tensor rule (``mergekit.merge_methods.slerp.slerp``): the angle comes from the
*normalised* tensors, the blend is taken of the unnormalised ones, and tensors whose directions are (anti)colinear
(|cos| > 0.9995) fall back to linear interpolation — those names are logged and listed in ``merge.json``. Written
by hand (about 30 lines) rather than through mergekit because the trainer needs it as a stage step on folders it has
just exported, without mergekit's YAML/architecture layer; ``tests/test_merge.py`` checks it against mergekit itself.

The output folder copies ``a``'s files (config, tokenizer, generation config, shard index) and rewrites each
safetensors file with the merged tensors under the same names and dtypes; temp folder, then rename.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Literal

Method = Literal["slerp", "linear"]
COLINEAR_DOT = 0.9995


class MergeError(ValueError):
    """The two checkpoints cannot be merged (a one-line message naming the folder and tensor)."""


def slerp_tensor(t: float, a, b, eps: float = 1e-8):
    """(merged tensor, colinear?) — spherical interpolation of ``a`` -> ``b`` at ``t``, computed in float64."""
    import torch

    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    na, nb = a64 / a64.norm().clamp_min(eps), b64 / b64.norm().clamp_min(eps)
    dot = float((na * nb).sum())
    if abs(dot) > COLINEAR_DOT:
        return ((1 - t) * a64 + t * b64).to(a.dtype), True
    theta = torch.arccos(torch.tensor(dot, dtype=torch.float64))
    s0 = torch.sin(theta - theta * t) / torch.sin(theta)
    s1 = torch.sin(theta * t) / torch.sin(theta)
    return (s0 * a64 + s1 * b64).to(a.dtype), False


def linear_tensor(t: float, a, b):
    import torch

    return ((1 - t) * a.to(torch.float64) + t * b.to(torch.float64)).to(a.dtype), False


TENSOR_MERGES = {"slerp": slerp_tensor, "linear": linear_tensor}


def _weight_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.safetensors"))
    if not (folder / "config.json").is_file() or not files:
        raise MergeError(f"{folder}: not an HF checkpoint folder (needs config.json and *.safetensors)")
    return files


def _load(folder: Path) -> dict:
    from safetensors.torch import load_file

    tensors = {}
    for f in _weight_files(folder):
        tensors.update(load_file(f))
    return tensors


def _check_same_shapes(a: Path, b: Path, ta: dict, tb: dict) -> None:
    if ta.keys() != tb.keys():
        only = sorted(ta.keys() ^ tb.keys())[:3]
        raise MergeError(f"{a} and {b} hold different tensors (e.g. {', '.join(only)}): not one architecture")
    for k in ta:
        if ta[k].shape != tb[k].shape:
            raise MergeError(f"{b}: tensor {k} has shape {tuple(tb[k].shape)}, {a} has {tuple(ta[k].shape)}")


def merge_state(ta: dict, tb: dict, t: float, method: Method) -> tuple[dict, list[str]]:
    """(merged tensors, names that fell back to linear). Integer tensors (buffers) are taken from ``ta``."""
    fn = TENSOR_MERGES[method]
    merged, colinear = {}, []
    for k, a in ta.items():
        if not a.is_floating_point():
            merged[k] = a
            continue
        merged[k], fell_back = fn(t, a, tb[k])
        if fell_back and method == "slerp":
            colinear.append(k)
    return merged, colinear


def merge_folders(a: str | Path, b: str | Path, t: float, out: str | Path, method: Method = "slerp",
                  log=print) -> dict:
    """Merge HF folders ``a`` (t=0) and ``b`` (t=1) into ``out``; returns the ``merge.json`` record."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    a, b, out = Path(a), Path(b), Path(out)
    if not 0.0 <= t <= 1.0:
        raise MergeError(f"--t {t}: must lie in [0, 1] (0 gives {a}, 1 gives {b})")
    ta, tb = _load(a), _load(b)
    _check_same_shapes(a, b, ta, tb)
    merged, colinear = merge_state(ta, tb, t, method)
    if colinear:
        log(f"[shardsmith.merge] {len(colinear)} colinear tensors interpolated linearly: {', '.join(colinear[:5])}"
            + (" ..." if len(colinear) > 5 else ""))
    tmp = out.with_name(f".tmp-{out.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(a, tmp)
    for f in _weight_files(a):
        with safe_open(f, framework="pt") as handle:  # the file's tensor names, without reading the tensors again
            names = list(handle.keys())
        save_file({k: merged[k].contiguous() for k in names}, tmp / f.name, metadata={"format": "pt"})
    record = _record(a, b, t, method, colinear, merged)
    (tmp / "merge.json").write_text(json.dumps(record, indent=2))
    (tmp / "weights.sha256").write_text(record["digest"] + "\n")
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    return record


def _record(a: Path, b: Path, t: float, method: str, colinear: list[str], merged: dict) -> dict:
    from shardsmith.trainer.export import weights_digest

    return {"method": method, "t": t, "a": str(a), "b": str(b), "a_digest": _digest_of(a),
            "b_digest": _digest_of(b), "colinear_tensors": colinear, "digest": weights_digest(merged)}


def _digest_of(folder: Path) -> str | None:
    f = folder / "weights.sha256"
    return f.read_text().strip() if f.is_file() else None


def moving_average(folders: list[str | Path], decay: float, out: str | Path, method: Method = "slerp",
                   log=print) -> dict:
    """avg_1 = folders[0]; avg_i = merge(avg_{i-1}, folders[i], t = 1 - decay): Memphis-CoT's 0.99 average across
    rounds. Intermediate averages go to temp folders beside ``out``."""
    if len(folders) < 2:
        raise MergeError("a moving average needs at least two checkpoints")
    out = Path(out)
    current, record = Path(folders[0]), {}
    for i, nxt in enumerate(folders[1:], start=1):
        dest = out if i == len(folders) - 1 else out.with_name(f".avg-{i}-{out.name}")
        record = merge_folders(current, nxt, 1.0 - decay, dest, method, log)
        if current.name.startswith(".avg-"):
            shutil.rmtree(current)
        current = dest
    return record
