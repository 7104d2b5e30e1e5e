"""What the curation benchmarks (bench_mix.py, bench_dedup.py) share: where the real samples are, the plain-text
table they print, and their start-up (real data required, datatrove's DEBUG log handler replaced)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SHARDSMITH_DATA") or REPO.parent / "shared" / "data").resolve()


def table(rows: list[dict]) -> str:
    """Rows of equal keys as aligned plain-text columns (header first)."""
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    out = ["  ".join(k.ljust(widths[k]) for k in keys)]
    out += ["  ".join(str(r[k]).ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(out)


def start_bench() -> None:
    """Exit unless the real samples are there; keep datatrove's log to warnings (importing it installs a DEBUG
    handler that would print every step's progress into the measured passes)."""
    if not DATA.is_dir():
        sys.exit(f"real samples not found at {DATA}; set SHARDSMITH_DATA")
    import shardsmith.pipelines  # noqa: F401
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
