#!/usr/bin/env python
"""Benchmark the mix pipeline on the real samples in $SHARDSMITH_DATA, beside bare datatrove in the same run.

Prints, per core (one process):
  1. the English and Chinese filter chains: documents/s and MB/s, shardsmith's chain vs the same datatrove steps
     constructed bare (the ratio is the target: >= 0.9);
  2. tokenization: tokens/s through shardsmith's tokenizer step vs datatrove's DocumentTokenizer run bare;
  3. peak memory (max RSS) of a whole `shardsmith mix` at 1x and 4x input, which must stay flat.

Usage: python scripts/bench_mix.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SHARDSMITH_DATA") or REPO.parent / "shared" / "data").resolve()


def load_docs(kind: str, rel: str, language: str, limit: int | None = None):
    from shardsmith.pipelines.sources import build_reader
    from shardsmith.schemas.mix_recipe import SourceSpec

    src = SourceSpec(name=Path(rel).parts[0], kind=kind, paths=[str(DATA / rel)], weight=1, language=language)
    docs = list(build_reader(src).run())
    return docs[:limit] if limit else docs


def english_docs():
    return (
        load_docs("c4", "web_c4_demo_llamafactory", "en")
        + load_docs("dclm", "web_dclm_quality_annotations/majority_data.jsonl", "en")
        + load_docs("wikipedia_lines", "wiki_en_demo_llamafactory", "en")
        + load_docs("news_folder", "news_bbc_fulltext", "en", 300)
    )


def chinese_docs():
    return load_docs("skypile", "zh_skypile_sample", "zh") + load_docs("wanjuan", "zh_wanjuan1_text_sample", "zh")


def run_chain(steps, docs) -> tuple[float, int]:
    """Push copies of docs through the steps; returns (seconds, documents kept)."""
    from datatrove.data import Document

    data = (Document(text=d.text, id=d.id, metadata=dict(d.metadata)) for d in docs)
    t0 = time.perf_counter()
    for step in steps:
        data = step.run(data, 0, 1)
    kept = 0 if data is None else sum(1 for _ in data)  # a tokenizer step consumes everything, returns None
    return time.perf_counter() - t0, kept


STEPS = {
    "en": ["gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality"],
    "zh": ["gopher_repetition", "gopher_quality", "fineweb_quality"],
}


def bare_chain(language: str):
    """The same datatrove steps with the same parameters, constructed by hand (LID from the same local model)."""
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    from shardsmith.pipelines.filters import _STEP_DEFAULTS, ZH_LANGUAGE_THRESHOLD
    from shardsmith.pipelines.lid import make_language_filter

    classes = {"gopher_repetition": GopherRepetitionFilter, "gopher_quality": GopherQualityFilter,
               "c4_quality": C4QualityFilter, "fineweb_quality": FineWebQualityFilter}
    word_language = "en" if language == "en" else "cmn_Hani"  # never "zh": it does not segment Chinese
    threshold = 0.65 if language == "en" else ZH_LANGUAGE_THRESHOLD
    steps = [make_language_filter([language], threshold)]
    for name in STEPS[language]:
        params = dict(_STEP_DEFAULTS[language].get(name, {}))
        steps.append(classes[name](language=word_language, **params))
    return steps


def ours_chain(language: str):
    from shardsmith.pipelines.filters import build_filter_steps
    from shardsmith.schemas.mix_recipe import SourceSpec

    src = SourceSpec(name=f"bench_{language}", kind="generic", paths=["-"], weight=1, language=language,
                     filters=["language", *STEPS[language]])
    return [step for _, step in build_filter_steps(src, None)]


def bench_filters(label: str, docs, language: str, repeats: int) -> dict:
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    # warm both (model loads, spaCy/jieba init) outside the timing
    run_chain(bare_chain(language), docs[:20])
    run_chain(ours_chain(language), docs[:20])
    bare_t = ours_t = 0.0
    for _ in range(repeats):  # alternate to spread machine noise over both
        t, kept_bare = run_chain(bare_chain(language), docs)
        bare_t += t
        t, kept_ours = run_chain(ours_chain(language), docs)
        ours_t += t
    bare_t /= repeats
    ours_t /= repeats
    row = {
        "chain": label,
        "docs": len(docs),
        "MB": round(mb, 2),
        "bare_docs_s": round(len(docs) / bare_t, 1),
        "ours_docs_s": round(len(docs) / ours_t, 1),
        "bare_MB_s": round(mb / bare_t, 3),
        "ours_MB_s": round(mb / ours_t, 3),
        "ratio_ours_over_bare": round(bare_t / ours_t, 2),
        "kept_bare": kept_bare,
        "kept_ours": kept_ours,
    }
    return row


def bench_tokenize(docs, tokenizer_name: str) -> dict:
    from datatrove.pipeline.tokens import DocumentTokenizer

    from shardsmith.pipelines import shards
    from shardsmith.pipelines.tokenizers import resolve_tokenizer
    from shardsmith.schemas.common import TokenizerSpec

    tok = resolve_tokenizer(TokenizerSpec(name=tokenizer_name))
    with tempfile.TemporaryDirectory() as tmp:
        bare = DocumentTokenizer(f"{tmp}/bare", tokenizer_name_or_path=str(tok.tokenizer_json), eos_token=tok.eos_token)
        ours = shards.tokenizer_step(f"{tmp}/ours", tok.tokenizer_json, tok.eos_token, seed=0)
        run_chain([bare], docs[:10])
        run_chain([ours], docs[:10])
        best_bare = best_ours = float("inf")
        for _ in range(3):  # alternate, keep the best: the machine is shared
            before = bare.stats["tokens"].total
            t, _ = run_chain([bare], docs)
            n_bare = bare.stats["tokens"].total - before
            best_bare = min(best_bare, t)
            before = ours.stats["tokens"].total
            t, _ = run_chain([ours], docs)
            n_ours = ours.stats["tokens"].total - before
            best_ours = min(best_ours, t)
        t_bare, t_ours = best_bare, best_ours
    return {
        "tokenizer": tokenizer_name,
        "docs": len(docs),
        "bare_tokens_s": round(n_bare / t_bare),
        "ours_tokens_s": round(n_ours / t_ours),
        "ratio_ours_over_bare": round((n_ours / t_ours) / (n_bare / t_bare), 2),
    }


def peak_rss_mix(scale: int, en_texts: list[str], zh_texts: list[str], workdir: Path) -> dict:
    """Run `shardsmith mix` in a child process over `scale` copies of the input; report its max RSS."""
    corpus = workdir / f"x{scale}"
    corpus.mkdir(parents=True, exist_ok=True)
    for part in range(scale):  # separate files, so ids (path/line) stay unique across copies
        for lang, texts in (("en", en_texts), ("zh", zh_texts)):
            with open(corpus / f"{lang}_{part}.jsonl", "w") as f:
                for t in texts:
                    f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    recipe = corpus / "recipe.yaml"
    recipe.write_text(
        f"""name: bench-x{scale}
seed: 1
tokenizer: {{name: gpt2}}
validation_fraction: 0.01
sources:
  - {{name: en, kind: generic, language: en, weight: 0.6, paths: ["{corpus}/en_*.jsonl"]}}
  - {{name: zh, kind: generic, language: zh, weight: 0.4, paths: ["{corpus}/zh_*.jsonl"]}}
"""
    )
    cmd = [sys.executable, "-m", "shardsmith.cli", "mix", str(recipe), "--out", str(workdir / f"out{scale}")]
    # a fresh wrapper per run, so each figure is that run's own peak (RUSAGE_CHILDREN keeps the max ever seen)
    wrapper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", wrapper, *cmd], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak_kib = int(res.stdout.strip().splitlines()[-1])
    mb = sum(len(t.encode()) for t in en_texts + zh_texts) * scale / 1e6
    manifest = json.loads((workdir / f"out{scale}" / "manifest.json").read_text())
    return {
        "input": f"{scale}x",
        "input_MB": round(mb, 1),
        "tokens_written": sum(s["tokens"] for s in manifest["sources"]),
        "seconds": round(seconds, 1),
        "peak_rss_MB": round(peak_kib / 1024, 1),  # ru_maxrss is in KiB on Linux
    }


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    out = ["  ".join(k.ljust(widths[k]) for k in keys)]
    out += ["  ".join(str(r[k]).ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer documents and repeats")
    ap.add_argument("--only", choices=["filters", "tokenize", "memory"], default=None, help="run one section")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"real samples not found at {DATA}; set SHARDSMITH_DATA")
    import shardsmith.pipelines  # noqa: F401  (imports datatrove, which installs its own DEBUG handler)
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    en, zh = english_docs(), chinese_docs()
    if args.quick:
        en, zh = en[:300], zh[:500]
    repeats = 1 if args.quick else 2
    print(f"# shardsmith bench_mix — {len(en)} English docs, {len(zh)} Chinese docs, one process, repeats={repeats}")
    if args.only in (None, "filters"):
        print("\n## filter chains (language ID + quality filters), per core")
        print(table([bench_filters("en: LID + Gopher rep/quality + C4 + FineWeb", en, "en", repeats),
                     bench_filters("zh: LID + Gopher rep/quality + FineWeb (cmn_Hani)", zh, "zh", repeats)]))
    if args.only in (None, "tokenize"):
        print("\n## tokenization, per core (best of 3, alternating)")
        print(table([bench_tokenize(en, "gpt2"), bench_tokenize(zh, "deepseek-v4")]))
    if args.only in (None, "memory"):
        print("\n## peak memory of a whole `shardsmith mix` (child process max RSS)")
        en_texts, zh_texts = [d.text for d in en], [d.text for d in zh]
        with tempfile.TemporaryDirectory() as tmp:
            rows = [peak_rss_mix(s, en_texts, zh_texts, Path(tmp)) for s in (1, 4)]
        print(table(rows))
        print(f"peak RSS 4x / 1x: {rows[1]['peak_rss_MB'] / rows[0]['peak_rss_MB']:.2f}")


if __name__ == "__main__":
    main()
