#!/usr/bin/env python
"""Digest of built blocks, to prove an optimisation leaves the output byte for byte the same.

Builds the bench recipes (``scripts/bench_blocks.py``: one shipped recipe per kind, made runnable on the samples)
plus the demo recipes, and records sha256 of every file of every block: shards, indexes, loss masks, metadata,
tokenizer, reports; a gzip file by its decompressed bytes (its header holds a time); ``manifest.json`` without its
``created_at``. ``--save F`` writes the digests, ``--check F`` compares with them and lists every difference.

    python scripts/block_digests.py --save /tmp/before.json
    python scripts/block_digests.py --check /tmp/before.json
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_blocks import BENCH, BenchRecipe, prepare  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXTRA = [BenchRecipe("mcq-cot", "steel-mcq-cot", drop_sources=("wanjuan_exam",), env={"WANJUAN_EXAM": "unused"}),
         BenchRecipe("demo-sft", "demo"), BenchRecipe("demo-pref", "demo-pref")]


def file_digest(path: Path) -> str:
    if path.name == "manifest.json":
        man = json.loads(path.read_text(encoding="utf-8"))
        man.pop("created_at", None)
        data = json.dumps(man, sort_keys=True, ensure_ascii=False).encode()
    elif path.suffix == ".gz":
        data = gzip.decompress(path.read_bytes())
    else:
        data = path.read_bytes()
    return hashlib.sha256(data).hexdigest()


def block_digest(block: Path) -> dict[str, str]:
    """Every file but datatrove's executor logs (``.work/``: times and pids, never read back)."""
    files = [p for p in sorted(block.rglob("*")) if p.is_file()]
    return {p.relative_to(block).as_posix(): file_digest(p) for p in files
            if not p.relative_to(block).as_posix().startswith(".work/")}


def build_all(data: Path, tmp: Path, names: list[str] | None) -> dict[str, dict[str, str]]:
    from shardsmith.builders.build import build
    from shardsmith.demo.sft_sample import write_demo_sample

    os.environ["SFT_DEMO_DATA"] = str(write_demo_sample(tmp / "demo_data"))
    out = {}
    for bench in [*BENCH, *EXTRA]:
        if names and bench.kind not in names:
            continue
        recipe = prepare(bench, data, tmp / bench.kind)
        block = build(str(recipe), str(tmp / bench.kind / "block"))
        out[bench.kind] = block_digest(block)
        print(f"{bench.kind}: {len(out[bench.kind])} files", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("SHARDSMITH_DATA") or str(REPO.parent / "shared" / "data"))
    ap.add_argument("--kinds", help="comma-separated subset")
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "block_digests"),
                    help="build here (emptied first; a fixed folder: the manifest records source paths)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save")
    g.add_argument("--check")
    args = ap.parse_args(argv)
    import logging

    from loguru import logger

    logger.remove()
    logging.getLogger().setLevel(logging.WARNING)
    names = args.kinds.split(",") if args.kinds else None
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    got = build_all(Path(args.data).resolve(), work, names)
    if args.save:
        Path(args.save).write_text(json.dumps(got, indent=1, sort_keys=True))
        return 0
    want = json.loads(Path(args.check).read_text())
    diffs = []
    for kind, files in got.items():
        ref = want.get(kind, {})
        for f in sorted(set(files) | set(ref)):
            if files.get(f) != ref.get(f):
                diffs.append(f"{kind}: {f}: {'missing now' if f not in files else 'new' if f not in ref else 'differs'}")
    print("\n".join(diffs) if diffs else f"identical: {', '.join(got)}")
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
