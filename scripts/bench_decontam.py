"""Benchmark decontamination on the real samples of ../shared/data (issue 11 §2, §4).

Prints, each figure measured in this run:
  * the index build over every benchmark folder (mcq_*): items, n-grams, seconds, size on disk;
  * documents/s of ``DecontamFilter`` (a datatrove pipeline: JsonlReader -> DecontamFilter) on the English and the
    Chinese samples, each in a fresh process (cold), next to the same pipeline without the step (the reader alone:
    the baseline) and, for English, datatrove's own ``NGramsDecontFilter`` on the same documents (its index written
    from one benchmark, TruthfulQA, with its own tokenizer and hash: datatrove's indexer needs lighteval and the hub);
  * peak memory (VmHWM of the fresh process) at 1x and 4x the input: it must stay flat (the index is mapped, the
    documents stream).
  * the false-positive count on the real web samples.

    python scripts/bench_decontam.py [--data ../shared/data] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def read_jsonl(path: Path, field: str = "text") -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)[field] for line in f if line.strip()]


def samples(data: Path) -> dict[str, list[str]]:
    """English: FineWeb-Edu, C4 (two samples), DCLM; Chinese: SkyPile, WanJuan."""
    csv.field_size_limit(1 << 30)
    with open(data / "web_fineweb_edu_text_llm_scored" / "training_data.csv", encoding="utf-8") as f:
        en = [r["text"] for r in csv.DictReader(f)]
    en += read_jsonl(data / "web_c4_demo_llamafactory" / "c4_demo.jsonl")
    en += [t for p in sorted((data / "web_c4_en_olmo_fixture").glob("*.gz")) for t in read_jsonl(p)]
    en += read_jsonl(data / "web_dclm_quality_annotations" / "majority_data.jsonl")
    zh = [t for p in sorted((data / "zh_skypile_sample").glob("*.jsonl")) for t in read_jsonl(p)]
    zh += [t for p in sorted((data / "zh_wanjuan1_text_sample").glob("*.jsonl")) for t in read_jsonl(p, "content")]
    return {"en": en, "zh": zh}


def write_input(folder: Path, texts: list[str], copies: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "docs.jsonl", "w", encoding="utf-8") as f:
        for c in range(copies):
            f.writelines(json.dumps({"id": f"{c}-{i}", "text": t}, ensure_ascii=False) + "\n"
                         for i, t in enumerate(texts))
    return folder


# ---------------------------------------------------------------------------------------------------------------
# child: one pipeline in a fresh process


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries the parent's peak across fork+exec,
    so a child started by a parent holding the index would report the parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, folder: str, index: str) -> None:
    from datatrove.pipeline.readers import JsonlReader

    from shardsmith.pipelines.decontam import DecontamFilter

    steps = [JsonlReader(folder)]
    if mode == "decontam":
        steps.append(DecontamFilter(index))
    elif mode == "datatrove":
        from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter

        steps.append(NGramsDecontFilter(index, NGramsDecontConfig(n_grams=13)))
    read = 0

    def counted(docs):
        nonlocal read
        for doc in docs:
            read += 1
            yield doc

    t0 = time.perf_counter()
    stream = counted(steps[0].run(None))
    for step in steps[1:]:
        stream = step.run(stream)
    kept = sum(1 for _ in stream)
    n, dt, hits = read, time.perf_counter() - t0, read - kept
    peak = peak_rss_mib()
    print(json.dumps({"docs": n, "kept": kept, "hits": hits, "seconds": dt, "peak_mb": peak}))


def run_child(mode: str, folder: Path, index: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(folder), str(index)], env=env,
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------------


def datatrove_index(folder: Path, data: Path) -> Path:
    """datatrove's NGramsDecontFilter index for TruthfulQA, written with datatrove's own tokenizer and hash."""
    from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter
    from datatrove.utils.text import ngrams, simplify_text
    import numpy as np

    from shardsmith.builders.benchmarks import benchmark_files, read_test_items

    cfg = NGramsDecontConfig(n_grams=13)
    filt = NGramsDecontFilter(str(folder), cfg)
    hashes = set()
    for item in read_test_items({"truthfulqa": benchmark_files(data / "mcq_truthfulqa")}):
        for text in item.texts:
            toks = filt.tokenizer.word_tokenize(simplify_text(text, cfg.norm_config))
            hashes.update(filt.hash_func(" ".join(g)) for g in ngrams(toks, cfg.n_grams))
    folder.mkdir(parents=True, exist_ok=True)
    np.array(sorted(hashes), dtype=cfg.hash_config.np_descr).tofile(folder / "truthfulqa.index.hashes")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("SHARDSMITH_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    args = ap.parse_args()
    data = Path(args.data)

    from shardsmith.pipelines.decontam import NgramIndex, ensure_index, resolve_benchmarks
    from shardsmith.schemas.decontam import DecontamSpec

    tmp = Path(tempfile.mkdtemp(prefix="bench_decontam-"))
    t0 = time.perf_counter()
    index = ensure_index(resolve_benchmarks(DecontamSpec(benchmarks=[str(data)])), tmp / "index")
    build_s = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in index.folder.iterdir()) / 2**20
    items = sum(b.items for b in index.benchmarks)
    print(f"index: {len(index.benchmarks)} benchmarks, {items:,} items, {index.hashes.size:,} n-grams, "
          f"built in {build_s:.1f} s (cold), {size:.0f} MiB on disk")
    for b in index.benchmarks:
        print(f"  {b.name:<16} {b.items:>7,} items {b.ngrams:>10,} n-grams  whole {b.whole_items:>4}  "
              f"too short {b.too_short}")

    texts = samples(data)
    dt_index = datatrove_index(tmp / "dt-index", data)
    print("\nthroughput (fresh process per run, median of", args.repeat, "alternating runs):")
    for lang, docs in texts.items():
        mb = sum(len(t.encode()) for t in docs) / 1e6
        one = write_input(tmp / f"{lang}-1x", docs, 1)
        four = write_input(tmp / f"{lang}-4x", docs, 4)
        modes = ["read", "decontam"] + (["datatrove"] if lang == "en" else [])
        runs = {m: [] for m in modes}
        for _ in range(args.repeat):
            for m in modes:
                runs[m].append(run_child(m, one, dt_index if m == "datatrove" else index.folder))
        med = {m: statistics.median(r["seconds"] for r in rs) for m, rs in runs.items()}
        n = runs["read"][0]["docs"]
        step_s = med["decontam"] - med["read"]
        print(f"  {lang}: {n:,} docs, {mb:.2f} MB; read alone {n / med['read']:,.0f} docs/s; read + decontam "
              f"{n / med['decontam']:,.0f} docs/s; the step alone {n / step_s:,.0f} docs/s ({mb / step_s:.2f} MB/s); "
              f"hits {runs['decontam'][0]['hits']}")
        if "datatrove" in med:
            dts = med["datatrove"] - med["read"]
            print(f"      datatrove NGramsDecontFilter (spaCy words, TruthfulQA index): {n / dts:,.0f} docs/s -> "
                  f"ours {dts / step_s:.1f}x")
        mem = {c: run_child("decontam", f, index.folder) for c, f in (("1x", one), ("4x", four))}
        base = {c: run_child("read", f, index.folder) for c, f in (("1x", one), ("4x", four))}
        print(f"      peak memory read + decontam: 1x {mem['1x']['peak_mb']:.0f} MiB, 4x {mem['4x']['peak_mb']:.0f} "
              f"MiB ({mem['4x']['docs']:,} docs; ratio {mem['4x']['peak_mb'] / mem['1x']['peak_mb']:.2f}); "
              f"reader alone 1x {base['1x']['peak_mb']:.0f}, 4x {base['4x']['peak_mb']:.0f} MiB")
    fp = {lang: sum(NgramIndex(index.folder).match(t) is not None for t in docs) for lang, docs in texts.items()}
    print("\nfalse positives on the real web samples: "
          + ", ".join(f"{lang} {fp[lang]}/{len(texts[lang]):,}" for lang in texts))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
    else:
        main()
