"""``python -m shardsmith.trainer RECIPE --out DIR [--set k=v ...] [--stage NAME] [--resume]``.

The same as ``shardsmith train``; this module form is what the deepspeed / torchrun / Slurm launchers start on
every rank (``scripts/launch_*.sh``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shardsmith.trainer", description=__doc__)
    ap.add_argument("recipe")
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    ap.add_argument("--stage")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)  # deepspeed
    a = ap.parse_args(argv)
    from shardsmith.trainer.runner import train

    train(a.recipe, a.out, overrides=a.overrides, stage=a.stage, resume=a.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
