"""Learning-rate schedules as pure functions of the step (so a resumed run needs no scheduler state)."""

from __future__ import annotations

import math

from shardsmith.schemas.train_recipe import ScheduleSpec


def warmup_steps(spec: ScheduleSpec, total: int) -> int:
    if spec.warmup_steps is not None:
        return min(spec.warmup_steps, total)
    if spec.warmup_ratio is not None:
        return int(round(spec.warmup_ratio * total))
    return 0


def lr_at(step: int, total: int, base_lr: float, spec: ScheduleSpec) -> float:
    """LR for optimizer step ``step`` (0-based) of ``total``.

    cosine: linear warmup, then cosine from lr to lr·min_lr_ratio at the last step.
    linear: linear warmup, then linear decay to lr·min_lr_ratio.
    wsd:    linear warmup, constant, then the last ``decay_ratio`` of steps decay (linear | sqrt | cosine) to
            lr·min_lr_ratio (warmup-stable-decay, arXiv 2404.06395).
    constant: linear warmup, then lr.
    """
    total = max(int(total), 1)
    w = warmup_steps(spec, total)
    if w and step < w:
        return base_lr * (step + 1) / w
    floor = base_lr * spec.min_lr_ratio
    if spec.kind == "constant":
        return base_lr
    if spec.kind in ("cosine", "linear"):
        span = max(total - 1 - w, 1)
        t = min(max((step - w) / span, 0.0), 1.0)
        f = 0.5 * (1 + math.cos(math.pi * t)) if spec.kind == "cosine" else 1 - t
        return floor + (base_lr - floor) * f
    if spec.kind == "wsd":
        d = int(round(spec.decay_ratio * total))
        start = total - d
        if step < start or d == 0:
            return base_lr
        t = min((step - start + 1) / d, 1.0)
        if spec.decay_shape == "linear":
            f = 1 - t
        elif spec.decay_shape == "sqrt":
            f = 1 - math.sqrt(t)
        else:
            f = 0.5 * (1 + math.cos(math.pi * t))
        return floor + (base_lr - floor) * f
    raise ValueError(f"unknown schedule {spec.kind}")
