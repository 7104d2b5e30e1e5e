#!/usr/bin/env python
"""The English web chain (the FineWeb recipe) on every real English sample, with both word splitters.

For each sample source, runs ``filters: {chain: web, word_splitter: S}`` for S = ``datatrove`` (datatrove 0.10.1
parity, spaCy words) and ``fineweb2024`` (NLTK 3.8.1's ``word_tokenize``, what FineWeb was filtered with), and
prints documents kept / dropped per source and per drop reason, side by side, plus the documents whose decision
differs.

``--reference-nltk DIR`` also checks ``fineweb2024``'s word lists against a real NLTK 3.8.1 (``DIR`` holds its
``nltk`` package, e.g. ``pip download nltk==3.8.1 --no-deps`` unpacked), run in a subprocess on every document.

Usage: python scripts/compare_word_splitters.py [--limit N] [--show N] [--reference-nltk DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SHARDSMITH_DATA") or REPO.parent / "shared" / "data").resolve()

# (name, kind, path under $SHARDSMITH_DATA, extra SourceSpec fields): every English text sample
ENGLISH_SAMPLES = [
    ("fineweb_edu", "fineweb", "web_fineweb_edu_text_llm_scored/training_data.csv", {}),
    ("c4_demo", "c4", "web_c4_demo_llamafactory/c4_demo.jsonl", {}),
    ("c4_olmo", "c4", "web_c4_en_olmo_fixture/*.json.gz", {}),
    ("dclm", "dclm", "web_dclm_quality_annotations/*.jsonl", {}),
    ("dolma_cc", "dolma", "web_dolma_cc_en_head/*", {}),
    ("news_bbc", "news_folder", "news_bbc_fulltext", {}),
    ("paloma_c4", "generic", "web_paloma_c4_100_domains/*.jsonl.gz", {"text_field": "text"}),
    ("redpajama", "generic", "web_redpajama_datajuicer_demos/*.jsonl", {"text_field": "text"}),
    ("wiki_en", "wikipedia_lines", "wiki_en_demo_llamafactory/wiki_demo.txt", {}),
]
SPLITTERS = ("datatrove", "fineweb2024")


def source_spec(name: str, kind: str, rel: str, extra: dict, splitter: str | None = None):
    from shardsmith.schemas.mix_recipe import SourceSpec

    filters = {"chain": "web", "word_splitter": splitter} if splitter else "none"
    return SourceSpec(name=name, kind=kind, paths=[str(DATA / rel)], weight=1, language="en", filters=filters, **extra)


def read_documents(name: str, kind: str, rel: str, extra: dict, limit: int | None):
    from shardsmith.pipelines.sources import iter_documents

    docs = list(iter_documents(source_spec(name, kind, rel, extra)))
    return docs[:limit] if limit else docs


def decide(steps, doc) -> str:
    """'kept' or 'step:reason' for one document, running each step's decision on a copy of it."""
    from datatrove.data import Document

    doc = Document(text=doc.text, id=doc.id, metadata=dict(doc.metadata))
    for name, step in steps:
        if not hasattr(step, "filter"):  # a formatter (opencc_t2s): rewrites the text
            doc.text = step.format(doc.text)
            continue
        result = step.filter(doc)
        if result is not True:
            reason = result[1] if isinstance(result, tuple) else None
            return f"{name}:{reason}" if reason else name
    return "kept"


def decisions(docs, source, splitter: str) -> list[str]:
    from shardsmith.pipelines.filter_chains import build_filter_steps

    spec = source_spec(*source, splitter=splitter)
    steps = build_filter_steps(spec, None)
    return [decide(steps, d) for d in docs]


def reference_words(texts: list[str], nltk_dir: str) -> list[list[str]]:
    """``word_tokenize`` of NLTK 3.8.1 itself (imported from ``nltk_dir``), with the same Punkt English model."""
    code = r"""
import json, sys
from collections import defaultdict
sys.path.insert(0, sys.argv[1])
import nltk
assert nltk.__version__ == "3.8.1", nltk.__version__
from nltk.tokenize.destructive import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
from punkt.data import english as m
p = PunktParameters()
p.abbrev_types, p.collocations, p.sent_starters = set(m.ABBREV_TYPES), set(m.COLLOCATIONS), set(m.SENT_STARTERS)
p.ortho_context = defaultdict(int, m.ORTHO_CONTEXT)
punkt, words = PunktSentenceTokenizer(p), NLTKWordTokenizer()
texts = json.load(open(sys.argv[2]))
json.dump([[t for s in punkt.tokenize(x) for t in words.tokenize(s)] for x in texts], open(sys.argv[3], "w"))
"""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp, "in.json"), Path(tmp, "out.json")
        src.write_text(json.dumps(texts))
        subprocess.run([sys.executable, "-c", code, nltk_dir, str(src), str(out)], check=True)
        return json.loads(out.read_text())


def print_source(name: str, results: dict[str, list[str]]) -> None:
    n = len(next(iter(results.values())))
    kept = {s: sum(r == "kept" for r in results[s]) for s in SPLITTERS}
    print(f"\n{name}: {n} documents   kept  datatrove {kept['datatrove']} ({kept['datatrove'] / n:.1%})   "
          f"fineweb2024 {kept['fineweb2024']} ({kept['fineweb2024'] / n:.1%})")  # fmt: skip
    counts = {s: Counter(r for r in results[s] if r != "kept") for s in SPLITTERS}
    for reason in sorted(set(counts["datatrove"]) | set(counts["fineweb2024"])):
        print(f"  {reason:<48} {counts['datatrove'][reason]:>5} {counts['fineweb2024'][reason]:>5}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="documents per source (default: all)")
    ap.add_argument("--show", type=int, default=3, help="documents with differing decisions to print per source")
    ap.add_argument("--reference-nltk", default=None, help="folder holding NLTK 3.8.1's `nltk` package")
    args = ap.parse_args()

    from shardsmith.pipelines.word_splitters import fineweb2024_word_tokenize

    totals = {s: Counter() for s in SPLITTERS}
    word_mismatches = checked = 0
    print("English web chain (the FineWeb recipe); columns: dropped with datatrove | fineweb2024 word splitting")
    for source in ENGLISH_SAMPLES:
        docs = read_documents(*source, limit=args.limit)
        results = {s: decisions(docs, source, s) for s in SPLITTERS}
        print_source(source[0], results)
        for s in SPLITTERS:
            totals[s].update(documents=len(docs), kept=sum(r == "kept" for r in results[s]))
        differ = [i for i in range(len(docs)) if results["datatrove"][i] != results["fineweb2024"][i]]
        print(f"  decisions differ on {len(differ)} documents")
        for i in differ[: args.show]:
            text = docs[i].text.replace("\n", " | ")
            print(f"    {docs[i].id}: {results['datatrove'][i]} -> {results['fineweb2024'][i]}  {text[:110]!r}")
        if args.reference_nltk:
            texts = [d.text for d in docs]
            ref = reference_words(texts, args.reference_nltk)
            mismatched = sum(fineweb2024_word_tokenize(t) != r for t, r in zip(texts, ref))
            print(f"  words equal to NLTK 3.8.1 word_tokenize on {len(texts) - mismatched} of {len(texts)} documents")
            word_mismatches += mismatched
            checked += len(texts)
    print("\nall English samples:", ", ".join(
        f"{s} kept {totals[s]['kept']} of {totals[s]['documents']}" for s in SPLITTERS))  # fmt: skip
    if args.reference_nltk:
        print(f"fineweb2024 vs NLTK 3.8.1: {word_mismatches} documents with different words out of {checked}")


if __name__ == "__main__":
    main()
