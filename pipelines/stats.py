"""Read datatrove's per-rank stats back into per-step counts.

``stats.json`` of a LocalPipelineExecutor only covers the ranks run by the *last* invocation, so after a resume it
misses the ranks finished before the crash. The per-rank files ``stats/NNNNN.json`` are written for every rank
that finished, so the totals are summed from those.
"""

from __future__ import annotations

import json
from pathlib import Path


def rank_stats(logging_dir: str | Path) -> list[dict]:
    """Per-step stats summed over all finished ranks: ``[{"name": ..., "stats": {key: total}}, ...]``."""
    files = sorted((Path(logging_dir) / "stats").glob("*.json"))
    merged: list[dict] = []
    for path in files:
        steps = json.loads(path.read_text())
        if not merged:
            merged = [{"name": s["name"], "stats": {}} for s in steps]
        for acc, step in zip(merged, steps):
            for key, value in step.get("stats", {}).items():
                total = value.get("total", 0) if isinstance(value, dict) else value
                acc["stats"][key] = acc["stats"].get(key, 0) + total
    return merged


def step_changes(step: dict) -> dict:
    """What a step that rewrites text reports besides read/kept: ``changed`` (documents whose text it altered:
    ``normalize``, ``pii``) and ``replacements`` per kind (``pii``'s ``replaced_<kind>`` stats), when it has them."""
    from .pii import REPLACED_PREFIX

    s = step["stats"]
    out: dict = {}
    if "changed" in s:
        out["changed"] = int(s["changed"])
    replaced = {k[len(REPLACED_PREFIX):]: int(v) for k, v in s.items() if k.startswith(REPLACED_PREFIX)}
    if replaced:
        out["replacements"] = replaced
    return out


def step_counts(step: dict) -> tuple[int, int, int, dict[str, int]]:
    """(read, kept, dropped, reasons) of one step's summed stats."""
    s = step["stats"]
    read = int(s.get("total", s.get("documents", 0)))
    dropped = int(s.get("dropped", 0))
    kept = int(s.get("forwarded", read - dropped))
    reasons = {k[len("dropped_"):]: int(v) for k, v in s.items() if k.startswith("dropped_")}
    return read, kept, dropped, reasons
