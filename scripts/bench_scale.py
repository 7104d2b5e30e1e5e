"""Per-core throughput of each curation phase of a mix, read from the build's own logs, and the core-hours a mix of the
same composition would take at a target size (default 100B tokens).

    python scripts/bench_scale.py                                 # builds recipes/mix/real-sample.yaml, workers=1
    python scripts/bench_scale.py --work OUT                      # reads a build made with --keep-work instead
    python scripts/bench_scale.py --recipe R.yaml --tokens 100e9

What is measured, per phase kind (every source's filter phase together, every tokenize phase together, ...):
- core-seconds: the sum over tasks of each task's wall time, from its datatrove log (``Launching pipeline`` to
  ``Processing done``): one task is one process on one core, whatever the executor.
- steady core-seconds: the time the steps themselves report (datatrove's per-step timers), less, for every step
  timed per document or per batch, its slowest one: what is left out is the task's start-up (process, imports,
  executor) and the one-off cost of a step's first document (block lists, models, tokenizer), which a long task
  spreads over millions of documents. The sample's tasks are small (8 to 1,000 documents), so start-up weighs heavily
  in the measured rate. A step timed as one block (the MinHash signer, the token counter) keeps its start-up: its
  steady rate is a lower bound, its projection an upper bound. The merger has no timer: its wall time is used.
- documents and characters: what the phase's reader read (datatrove stats ``documents``, ``doc_len``: characters,
  not bytes); MinHash buckets / cluster / resolve count the documents of their dedup group; merge counts tokens.
The projection: every phase reads, per token counted after dedup, as many documents as it read here (the filter
reads the documents its drops and dedup's removals will cost; each split's tokenize phase reads every document), so
its units at the target = its units here x target tokens / tokens counted; merge writes the target's tokens. Each
phase's core-hours = its units at the target / its steady rate. Assumes every phase scales linearly with documents (the cluster and resolve phases are one task each
in the mix; their memory grows with the group, which this does not model) and no upsampling at the target size.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# phase kind -> pattern of its logging dir below .work/logs; the units each one processes
KINDS: list[tuple[str, str]] = [
    ("filter", r"^filter/[^/]+$"),
    ("dedup sign", r"^dedup/[^/]+/sign/[^/]+$"),
    ("dedup buckets", r"^dedup/[^/]+/buckets$"),
    ("dedup cluster", r"^dedup/[^/]+/cluster$"),
    ("dedup resolve", r"^dedup/[^/]+/resolve$"),
    ("dedup filter", r"^dedup/[^/]+/filter/[^/]+$"),
    ("span dedup", r"^dedup/[^/]+/spans/[^/]+/(sign|find|filter)$"),
    ("count", r"^count/[^/]+$"),
    ("tokenize", r"^tokenize/[^/]+/[^/]+$"),
    ("merge", r"^merge/[^/]+$"),
]
GROUP_WIDE = {"dedup buckets", "dedup cluster", "dedup resolve"}  # units: the documents signed in their group
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)")


@dataclass
class KindTotals:
    tasks: int = 0
    seconds: float = 0.0  # wall, from the task logs
    steady: float = 0.0  # step timers less each per-document / per-batch step's slowest item
    units: float = 0.0
    chars: float = 0.0
    read: float = 0.0  # documents in (first step) and out (last step's forwarded/written) for keep ratios
    kept: float = 0.0
    tokens: float = 0.0


def _stamp(line: str) -> datetime | None:
    m = _STAMP.match(line)
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f") if m else None


def task_seconds(log: Path) -> float:
    """Wall time of one task from its datatrove log (the last launch to the last "Processing done")."""
    start = end = None
    for line in log.read_text(errors="replace").splitlines():
        if "Launching pipeline for rank" in line:
            start = _stamp(line)
        elif "Processing done for rank" in line:
            end = _stamp(line)
    return (end - start).total_seconds() if start and end and end >= start else 0.0


def _total(value) -> float:
    return value.get("total", 0) if isinstance(value, dict) else value


def phase_totals(phase_dir: Path, into: KindTotals) -> None:
    for stats_file in sorted((phase_dir / "stats").glob("*.json")):
        steps = json.loads(stats_file.read_text())
        into.tasks += 1
        log = phase_dir / "logs" / f"task_{stats_file.stem}.log"
        into.seconds += task_seconds(log) if log.is_file() else 0.0
        for step in steps:
            ts = step.get("time_stats") or {}
            if isinstance(ts, dict):
                per_item = (ts.get("n") or 0) > 1
                into.steady += ts.get("total", 0.0) - (ts.get("max", 0.0) if per_item else 0.0)
        first, last = steps[0]["stats"], steps[-1]["stats"]
        docs = _total(first.get("documents", 0))
        into.units += docs
        into.chars += _total(first.get("doc_len", 0))
        into.read += docs
        into.kept += _total(last.get("total", 0))  # the writer's (or ledger's) documents
        for step in steps:
            into.tokens += _total(step["stats"].get("tokens", 0)) if "Counter" in step["name"] or "Merger" in step["name"] else 0


def measure(logs: Path) -> dict[str, KindTotals]:
    totals = {kind: KindTotals() for kind, _ in KINDS}
    for stats_dir in sorted(logs.rglob("stats")):
        phase = stats_dir.parent
        rel = phase.relative_to(logs).as_posix()
        kind = next((k for k, pattern in KINDS if re.match(pattern, rel)), None)
        if kind is not None:
            phase_totals(phase, totals[kind])
    signed = totals["dedup sign"].units
    for kind in GROUP_WIDE:
        totals[kind].units = signed if totals[kind].tasks else 0
    merge = totals["merge"]
    merge.units = merge.tokens  # merge's unit is the token
    return totals


def dedup_keep(logs: Path) -> float:
    """Share of documents the dedup filter kept (DuplicateFilter: forwarded / total)."""
    read = kept = 0
    for stats_file in logs.glob("dedup/*/filter/*/stats/*.json"):
        steps = json.loads(stats_file.read_text())
        st = next((s["stats"] for s in steps if "Dedup filter" in s["name"]), {})
        read += _total(st.get("total", 0))
        kept += _total(st.get("forwarded", 0))
    return kept / read if read else 1.0


def project(totals: dict[str, KindTotals], target_tokens: float) -> dict[str, float]:
    """Units each phase kind processes for a mix of ``target_tokens`` of the same composition: every document phase
    scales by target / the tokens counted after dedup (the documents a phase read per token available), merge
    writes the target's tokens."""
    scale = target_tokens / totals["count"].tokens
    units = {kind: t.units * scale for kind, t in totals.items()}
    units["merge"] = target_tokens
    return units


def table(totals: dict[str, KindTotals], units_at: dict[str, float], target_tokens: float) -> str:
    head = (f"{'phase':<15} {'tasks':>5} {'units':>10} {'core-s':>8} {'steady-s':>8} {'units/s/core':>13} "
            f"{'steady':>10} {'Mchar/s/core':>12} {'units @ target':>15} {'core-h':>9}")
    lines = [head, "-" * len(head)]
    total_h = 0.0
    for kind, _ in KINDS:
        t = totals[kind]
        if not t.tasks:
            continue
        steady_s = t.steady if t.steady > 0 else max(t.seconds, 1e-3)  # a step without timers: its wall time
        rate, steady = t.units / max(t.seconds, 1e-9), t.units / steady_s
        mchar = t.chars / 1e6 / steady_s if t.chars else float("nan")
        hours = units_at[kind] / steady / 3600 if steady else float("nan")
        total_h += hours
        unit = "tok" if kind == "merge" else "doc"
        lines.append(f"{kind:<15} {t.tasks:>5} {t.units:>9,.0f}{unit[0]} {t.seconds:>8.1f} {t.steady:>8.1f} "
                     f"{rate:>13,.0f} {steady:>10,.0f} {mchar:>12.3f} {units_at[kind]:>15.3e} {hours:>9,.1f}")
    lines.append(f"{'total':<15} {'':>5} {'':>10} {sum(t.seconds for t in totals.values()):>8.1f} "
                 f"{sum(t.steady for t in totals.values()):>8.1f} {'':>13} {'':>10} {'':>12} {'':>15} {total_h:>9,.1f}")
    lines.append(f"(units: d = documents, t = tokens; core-s: wall seconds summed over tasks; steady-s: step timers "
                 f"less first-item costs; core-h: core-hours for a {target_tokens:.3g}-token mix of the same "
                 "composition at the steady rate)")
    return "\n".join(lines)


def build(recipe: str, out: Path, workers: int) -> Path:
    from shardsmith.pipelines.mixer import run_mix

    t0 = time.perf_counter()
    run_mix(recipe, str(out), overrides=[f"workers={workers}"], force=True, keep_work=True)
    print(f"built {recipe} in {time.perf_counter() - t0:.1f} s (wall, {workers} worker(s)) -> {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default=str(REPO / "recipes" / "mix" / "real-sample.yaml"))
    p.add_argument("--work", default=None, help="a mix folder built with --keep-work (else the recipe is built)")
    p.add_argument("--workers", type=int, default=1, help="when building: datatrove workers (default 1)")
    p.add_argument("--tokens", type=float, default=100e9, help="target mix size in tokens (default 100e9)")
    args = p.parse_args(argv)
    os.environ.setdefault("SHARDSMITH_DATA", str(REPO.parent / "shared" / "data"))
    out = Path(args.work) if args.work else build(args.recipe, Path(tempfile.mkdtemp(prefix="bench_scale-")) / "mix",
                                                    args.workers)
    logs = out / ".work" / "logs"
    if not logs.is_dir():
        print(f"bench_scale: {logs} is missing: build the mix with --keep-work", file=sys.stderr)
        return 2
    totals = measure(logs)
    keep = dedup_keep(logs)
    units_at = project(totals, args.tokens)
    count, flt = totals["count"], totals["filter"]
    print(f"mix: {out}  (cpus: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})")
    print(f"filter keeps {flt.kept / flt.read:.3f} of documents read, dedup keeps {keep:.3f}, "
          f"{count.tokens / count.units:,.0f} tokens per document counted")
    print(table(totals, units_at, args.tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main())
