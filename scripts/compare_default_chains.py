#!/usr/bin/env python
"""What the default chains of issue 9 change on every document of the real samples ($SHARDSMITH_DATA).

For each source of ``recipes/mix/real-sample.yaml`` (all documents, read with the mix's own readers) three chains
decide each document:

* ``before``: the default chain before issue 9 (the web chain of datatrove 0.10.1's steps, no normalize, no spam
  categories, no url step for Chinese), for every source kind;
* ``web``: today's web chain with datatrove's word splitting (normalize + url + categorised spam added): the
  documents it drops that ``before`` kept are the price of the new steps (issue 9 asks for <= 1 % per source);
* ``default``: what ``filters: default`` gives the source today (the named chain of its kind, FineWeb's word
  splitting for English).

Prints per source the documents kept by each chain, and every extra drop of ``web`` with its step, reason and the
start of its text, to be read by hand.  Usage: python scripts/compare_default_chains.py [--limit N]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEFORE = {
    "en": ["language", "url", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality"],
    "zh": ["opencc_t2s", "language", "cjk_ratio", "min_chars", "symbol_ratio", "spam_phrases",
           "gopher_repetition", "gopher_quality", "fineweb_quality"],
}  # fmt: skip


def first_drop(steps, doc) -> tuple[str, str] | None:
    """(step, reason) of the first step that drops a copy of ``doc``; None when every step keeps it."""
    from datatrove.data import Document
    from datatrove.pipeline.formatters.base import BaseFormatter

    doc = Document(text=doc.text, id=doc.id, metadata=dict(doc.metadata))
    for name, step in steps:
        if isinstance(step, BaseFormatter):
            doc.text = step.format(doc.text)
        elif (result := step.filter(doc)) is not True:
            return name, result[1] if isinstance(result, tuple) else ""
    return None


def compare(source, limit: int | None) -> tuple[str, list[str]]:
    from shardsmith.pipelines.filter_chains import build_filter_steps
    from shardsmith.pipelines.sources import iter_documents

    lang = "zh" if source.language.startswith("zh") else "en"
    web = {"chain": "web", "word_splitter": "datatrove"}
    chains = {
        "before": build_filter_steps(source.model_copy(update={"filters": BEFORE[lang]}), None),
        "web": build_filter_steps(source.model_copy(update={"filters": web}), None),
        "default": build_filter_steps(source, None),
    }
    docs = list(iter_documents(source, limit=limit))
    verdicts = {name: [first_drop(steps, d) for d in docs] for name, steps in chains.items()}
    extra = [(d, w) for d, b, w in zip(docs, verdicts["before"], verdicts["web"]) if b is None and w is not None]
    kept = {name: sum(v is None for v in vs) for name, vs in verdicts.items()}
    line = (f"{source.name:12s} {len(docs):6d} {kept['before']:7d} {kept['web']:7d} {kept['default']:8d} "
            f"{len(extra):6d} {100 * len(extra) / max(1, len(docs)):6.2f}%")
    details = [f"  {source.name} {d.id}: {step}:{reason} {d.text[:110]!r}" for d, (step, reason) in extra]
    return line, details


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="documents per source (default: all)")
    args = ap.parse_args()
    os.environ.setdefault("SHARDSMITH_DATA", str(REPO.parent / "shared" / "data"))
    from shardsmith.pipelines.logs import quiet_datatrove
    from shardsmith.recipes import load_recipe
    from shardsmith.schemas.mix_recipe import MixRecipe

    quiet_datatrove()

    recipe = load_recipe(MixRecipe, REPO / "recipes" / "mix" / "real-sample.yaml")
    print(f"{'source':12s} {'docs':>6s} {'before':>7s} {'web':>7s} {'default':>8s} {'extra':>6s} {'share':>7s}")
    details = []
    for source in recipe.sources:
        line, more = compare(source, args.limit)
        print(line, flush=True)
        details += more
    print("\nextra drops of the web chain (kept before):\n" + "\n".join(details))


if __name__ == "__main__":
    main()
