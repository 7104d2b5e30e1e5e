#!/usr/bin/env python
"""Benchmark the mix's dedup on the real samples in $SHARDSMITH_DATA (web_* English, zh_* Chinese).

One function per measurement (add others beside them):
  1. ``bench_signature``: MinHash stage 1, shardsmith's ``FastMinhashSignature`` vs datatrove's
     ``MinhashDedupSignature`` on the same documents, timed cold: every pass runs in a fresh process whose word
     splitter (spaCy / jieba) was loaded on one unrelated sentence first (no memo of the benchmark's text), passes
     alternate sides, the median CPU time per side is reported (docs/s, MB/s, ratio; target >= 2x), and the 14
     signature files of the two sides are compared byte for byte (exit non-zero on a difference);
  2. ``bench_stages``: documents/s of each phase of the dedup (sign, buckets, cluster, resolve, filter), English and
     Chinese sources deduplicated together as in a mix;
  3. ``bench_memory``: peak memory (child-process max RSS) of the whole dedup at 1x and 4x input (4x = four copies of
     every document under other ids: they are all removed as exact duplicates);
  4. decontamination: ``scripts/bench_decontam.py`` run in this run (index build, documents/s cold, peak memory at
     1x and 4x input, false positives).

The machine may be shared: ratios within one run are what count.

Usage: python scripts/bench_dedup.py [--quick] [--runs N] [--only signature|stages|memory|decontam]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import DATA, start_bench, table  # noqa: E402  (scripts/ is on sys.path when run)

# (kind, path under DATA) of the real samples read; every web_* / zh_* sample whose kind has a reader
ENGLISH = [
    ("c4", "web_c4_demo_llamafactory"),
    ("c4", "web_c4_en_olmo_fixture"),
    ("c4", "web_paloma_c4_100_domains"),
    ("dclm", "web_dclm_quality_annotations/majority_data.jsonl"),
    ("dolma", "web_dolma_cc_en_head"),
    ("fineweb", "web_fineweb_edu_text_llm_scored"),
]
CHINESE = [
    ("skypile", "zh_skypile_sample"),
    ("wanjuan", "zh_wanjuan1_text_sample"),
    ("wikipedia_zh", "zh_wikipedia_cn_filtered"),
    ("baidu_baike", "zh_baidu_baike"),
]
WARM = {"en": "The quick brown fox jumps over the lazy dog again.", "zh": "今天天气很好，我们去公园散步。"}


def load_texts(samples: list[tuple[str, str]], language: str) -> list[str]:
    from shardsmith.pipelines.sources import build_reader
    from shardsmith.schemas.mix_recipe import SourceSpec

    texts = []
    for kind, rel in samples:
        src = SourceSpec(name=Path(rel).parts[0], kind=kind, paths=[str(DATA / rel)], weight=1, language=language)
        texts += [d.text for d in build_reader(src).run()]
    return texts


# ---------------------------------------------------------------------------------------------------------------------
# 1. signature stage, ours vs datatrove's, cold
# ---------------------------------------------------------------------------------------------------------------------
def signature_step(side: str, language: str, folder: str):
    from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

    from shardsmith.pipelines.dedup import minhash_config
    from shardsmith.pipelines.minhash_signature import FastMinhashSignature, minhash_language
    from shardsmith.schemas.dedup import DedupSpec

    config = minhash_config(DedupSpec())
    if side == "datatrove":
        return MinhashDedupSignature(folder, config, language=minhash_language(language))
    return FastMinhashSignature(folder, config, language=language, shared_words=False)


def signature_child(side: str, language: str, texts_path: str, out_dir: str) -> None:
    """One cold pass in a fresh process: load the word splitter on one unrelated sentence, then time the stage
    (signatures, then datatrove's bucket sort) over the documents; writes the CPU seconds to ``out_dir/time.json``."""
    from datatrove.data import Document

    texts = json.loads(Path(texts_path).read_text())
    step = signature_step(side, language, f"{out_dir}/sigs")
    step.get_shingles(WARM[language])  # loads spaCy / jieba
    docs = (Document(text=t, id=str(i)) for i, t in enumerate(texts))
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in step.run(docs, 0, 1) or ():
        pass
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    Path(out_dir, "time.json").write_text(json.dumps({"cpu_seconds": cpu, "seconds": wall}))


def signature_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.minhash.sig"))}


def bench_signature(language: str, texts: list[str], runs: int, workdir: Path) -> tuple[dict, str]:
    """Median CPU time of ``runs`` alternating cold passes per side; the signature files must be identical."""
    texts_path = workdir / f"{language}.json"
    texts_path.write_text(json.dumps(texts, ensure_ascii=False))
    times: dict[str, list[float]] = {"datatrove": [], "ours": []}
    files: dict[str, dict] = {}
    for i in range(runs):
        for side in ("datatrove", "ours") if i % 2 == 0 else ("ours", "datatrove"):
            out = workdir / f"{language}-{side}-{i}"
            cmd = [sys.executable, __file__, "--signature-child", side, language, str(texts_path), str(out)]
            subprocess.run(cmd, check=True)
            times[side].append(json.loads((out / "time.json").read_text())["cpu_seconds"])
            files.setdefault(side, signature_bytes(out / "sigs"))
    identical = files["datatrove"] == files["ours"] and len(files["ours"]) == 14
    mb = sum(len(t.encode()) for t in texts) / 1e6
    dt, ours = statistics.median(times["datatrove"]), statistics.median(times["ours"])
    row = {
        "language": language,
        "docs": len(texts),
        "MB": round(mb, 2),
        "datatrove_docs_s": round(len(texts) / dt, 1),
        "ours_docs_s": round(len(texts) / ours, 1),
        "datatrove_MB_s": round(mb / dt, 3),
        "ours_MB_s": round(mb / ours, 3),
        "ratio": round(dt / ours, 2),
        "identical_signatures": identical,
    }
    note = (f"{language}: CPU s/pass datatrove {', '.join(f'{t:.2f}' for t in times['datatrove'])}; "
            f"ours {', '.join(f'{t:.2f}' for t in times['ours'])}")
    return row, note


# ---------------------------------------------------------------------------------------------------------------------
# 2. every dedup phase, as the mix runs it
# ---------------------------------------------------------------------------------------------------------------------
def write_source(folder: Path, texts: list[str], files: int, copy: int = 0) -> None:
    """datatrove jsonl.gz in ``files`` files (one task each); ids carry the copy number."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        with gzip.open(folder / f"{copy:02d}-{f:03d}.jsonl.gz", "wt", encoding="utf-8") as out:
            for i in range(f, len(texts), files):
                out.write(json.dumps({"id": f"{folder.name}/{copy}/{i}", "text": texts[i]}, ensure_ascii=False) + "\n")


def deduplicator(corpus: dict[str, list[str]], workdir: Path, copies: int = 1, files: int = 2):
    from shardsmith.pipelines.dedup import Deduplicator, local_executor
    from shardsmith.schemas.dedup import DedupSpec
    from shardsmith.schemas.mix_recipe import SourceSpec

    sources, folders = [], {}
    for language, texts in corpus.items():
        name = f"web_{language}"
        for c in range(copies):
            write_source(workdir / "in" / name, texts, files, copy=c)
        sources.append(SourceSpec(name=name, kind="generic", paths=["-"], weight=1, language=language))
        folders[name] = workdir / "in" / name
    return Deduplicator(DedupSpec(), sources, folders, workdir / ".work", workdir / "rejected", local_executor())


def bench_stages(corpus: dict[str, list[str]], workdir: Path) -> tuple[list[dict], dict]:
    """Seconds and documents/s of each phase over the whole corpus (one worker; the word splitters loaded first)."""
    from shardsmith.pipelines.minhash_signature import shingle_words

    for language in corpus:
        shingle_words(language)(WARM[language])
    dedup = deduplicator(corpus, workdir)
    n = sum(len(t) for t in corpus.values())
    rows = []
    for group, members in dedup.groups.items():
        for phase in dedup.phases(group, members):
            t0, c0 = time.perf_counter(), time.process_time()
            phase()
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            rows.append({"phase": phase.__name__, "docs": n, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                         "docs_s": round(n / max(cpu, 1e-9), 1)})
    return rows, dedup.counts()


# ---------------------------------------------------------------------------------------------------------------------
# 3. peak memory at 1x and 4x input
# ---------------------------------------------------------------------------------------------------------------------
def memory_child(corpus_path: str, workdir: str, copies: int) -> None:
    import resource

    corpus = json.loads(Path(corpus_path).read_text())
    dedup = deduplicator(corpus, Path(workdir), copies=copies)
    t0 = time.perf_counter()
    dedup.run()
    counts = dedup.counts()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(workdir, "memory.json").write_text(json.dumps(
        {"peak_kib": peak_kib, "seconds": time.perf_counter() - t0, "counts": counts}))


def bench_memory(corpus: dict[str, list[str]], scale: int, workdir: Path) -> dict:
    """The whole dedup (every phase, one worker) in a child process over ``scale`` copies of the corpus."""
    workdir.mkdir(parents=True, exist_ok=True)
    corpus_path = workdir / "corpus.json"
    corpus_path.write_text(json.dumps(corpus, ensure_ascii=False))
    out = workdir / f"x{scale}"
    subprocess.run([sys.executable, __file__, "--memory-child", str(corpus_path), str(out), str(scale)], check=True)
    res = json.loads((out / "memory.json").read_text())
    docs = sum(len(t) for t in corpus.values()) * scale
    removed = sum(c["exact"] + c["near"] for c in res["counts"].values())
    return {
        "input": f"{scale}x",
        "docs": docs,
        "input_MB": round(sum(len(t.encode()) for ts in corpus.values() for t in ts) * scale / 1e6, 1),
        "removed": removed,
        "seconds": round(res["seconds"], 1),
        "peak_rss_MB": round(res["peak_kib"] / 1024, 1),  # ru_maxrss is in KiB on Linux
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer documents, one run per side")
    ap.add_argument("--runs", type=int, default=3, help="cold passes per side and language (median reported)")
    ap.add_argument("--only", choices=["signature", "stages", "memory", "decontam"], default=None,
                    help="run one section (decontam: scripts/bench_decontam.py in this run)")
    ap.add_argument("--signature-child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    start_bench()
    if args.signature_child:
        return signature_child(*args.signature_child)
    if args.memory_child:
        return memory_child(args.memory_child[0], args.memory_child[1], int(args.memory_child[2]))

    corpus = {"en": load_texts(ENGLISH, "en"), "zh": load_texts(CHINESE, "zh")}
    runs = args.runs
    if args.quick:
        corpus, runs = {"en": corpus["en"][:400], "zh": corpus["zh"][:300]}, 1
    if runs < 1:
        sys.exit("--runs must be >= 1")
    sizes = ", ".join(f"{lang} {len(t)} docs {sum(len(x.encode()) for x in t) / 1e6:.1f} MB" for lang, t in corpus.items())
    print(f"# shardsmith bench_dedup — {sizes}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.only in (None, "signature"):
            print(f"\n## MinHash signatures (stage 1), cold: a fresh process per pass, median CPU time of {runs} "
                  "alternating passes per side, one core")
            rows, notes = zip(*(bench_signature(lang, texts, runs, tmp) for lang, texts in corpus.items()))
            print(table(list(rows)))
            print("\n".join(notes))
            failed = not all(r["identical_signatures"] for r in rows)
        if args.only in (None, "stages"):
            print("\n## dedup phases over English + Chinese together (one worker; docs/s by CPU time)")
            rows, counts = bench_stages(corpus, tmp / "stages")
            print(table(rows))
            print(f"removed: {counts}")
        if args.only in (None, "memory"):
            print("\n## peak memory of the whole dedup (child process max RSS); 4x = 4 copies, ids differ")
            rows = [bench_memory(corpus, s, tmp / "memory") for s in (1, 4)]
            print(table(rows))
            print(f"peak RSS 4x / 1x: {rows[1]['peak_rss_MB'] / rows[0]['peak_rss_MB']:.2f}")
    if args.only in (None, "decontam"):
        print("\n## decontamination: scripts/bench_decontam.py (index build, docs/s cold, peak memory 1x / 4x)",
              flush=True)
        bench = Path(__file__).with_name("bench_decontam.py")
        if subprocess.call([sys.executable, str(bench), "--repeat", str(runs), "--data", str(DATA)]) != 0:
            sys.exit("bench_decontam.py failed")
    if failed:
        sys.exit("signature files differ between datatrove's stage and shardsmith's")


if __name__ == "__main__":
    main()
