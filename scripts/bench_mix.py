#!/usr/bin/env python
"""Benchmark the mix pipeline on the real samples in $SHARDSMITH_DATA, beside bare datatrove in the same run.

Prints:
  1. the ``web`` English and Chinese filter chains (``DEFAULT_CHAINS``, read at run time; English with
     ``word_splitter: datatrove``, the splitting bare datatrove 0.10.1 does), timed cold: every pass
     runs in a fresh process, after the models (fastText LID, spaCy / jieba, the UT1 URL lists) were warmed there on
     other text; passes alternate bare / shardsmith and the median CPU time per side is reported (docs/s, MB/s,
     ratio; target en >= 3x, zh >= 2x), with every document's verdict (dropping step and reason, or the kept text)
     compared between the two sides, and each fast path's output (normalize vs ftfy, OpenCC) compared with its
     library's on every document.  Exits non-zero on any difference.  Bare datatrove = the same steps with
     datatrove's own word-level classes and tokenizers (``en``, ``cmn_Hani``), its ``URLFilter`` and its
     ``FTFYFormatter``;
  2. tokenization: tokens/s through shardsmith's tokenizer step vs datatrove's DocumentTokenizer run bare;
  3. peak memory (max RSS) of a whole `shardsmith mix` at 1x and 4x input, which must stay flat.

The machine may be shared: ratios within one run are what count.

Usage: python scripts/bench_mix.py [--quick] [--runs N] [--only filters|tokenize|memory] [--lang en|zh]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import DATA, start_bench, table  # noqa: E402  (scripts/ is on sys.path when run)


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


# ---------------------------------------------------------------------------------------------------------------------
# Filter chains, timed cold: one fresh process per chain and pass
# ---------------------------------------------------------------------------------------------------------------------
# Each timed pass runs in its own interpreter: shardsmith's tokenizer (and datatrove's `load_word_tokenizer`
# lru_cache, which hands back the first instance ever made) must not carry memos from an earlier pass over the same
# documents.  Model loads (fastText LID, spaCy / jieba, the UT1 URL lists) are warmed in that process on OTHER text
# first, the way a long-running task amortises them.


def warm_docs(language: str):
    """A few documents that are not in the benchmark, with urls (they load the URL lists too)."""
    if language == "en":
        return load_docs("c4", "web_c4_en_olmo_fixture", "en")[:30]
    docs = load_docs("wikipedia_zh", "zh_wikipedia_cn_filtered", "zh")[:30]
    for i, d in enumerate(docs):
        d.metadata["url"] = f"https://zh.wikipedia.org/wiki/warm_{i}"
    return docs


def attach_urls(docs, blocked_every: int = 25) -> dict:
    """Give every benchmark document a url (the samples have none), so the `url` step does real work: real crawl urls
    (C4 and Dolma CC samples) in turn, and every ``blocked_every``-th document a domain from datatrove's own UT1 block
    list, which the url step must drop.  Only metadata changes; the texts are the samples'."""
    from shardsmith.pipelines.url_filter import OptionalURLFilter

    pool = [d.metadata["url"] for d in load_docs("c4", "web_c4_en_olmo_fixture", "en") if d.metadata.get("url")]
    pool += [d.id for d in load_docs("dolma", "web_dolma_cc_en_head", "en") if str(d.id).startswith("http")]
    lists = OptionalURLFilter()
    lists.download_data()
    blocked = sorted(lists.block_listed_domains)[:: max(1, len(lists.block_listed_domains) // 200)]
    for i, d in enumerate(docs):
        if i % blocked_every == blocked_every - 1:
            d.metadata["url"] = f"http://{blocked[i % len(blocked)]}/page/{i}"
        else:
            d.metadata["url"] = pool[i % len(pool)]
    return {"real_urls": len(pool), "blocked_domain_docs": len(docs) // blocked_every}


def chain_steps(side: str, language: str) -> list[tuple[str, object]]:
    """The DEFAULT chain for ``language`` as built by shardsmith (``ours``), or mapped step by step to bare datatrove
    (``bare``): a word-level step (its ``language`` is shardsmith's ``SharedWordTokenizer``) becomes its datatrove
    class with datatrove's own tokenizer key (``en``; ``cmn_Hani`` for Chinese: datatrove's ``zh`` does not
    segment), the url step is datatrove's ``URLFilter`` itself, the normalize step datatrove's ``FTFYFormatter``
    with the same ftfy config (shardsmith's skips ftfy where it cannot change the text); every other step (LID,
    OpenCC, shardsmith's own rules: datatrove has none of them) is the same object on both sides.  So steps added
    to ``DEFAULT_CHAINS`` are benchmarked as they come."""
    import copy

    from datatrove.pipeline.filters import URLFilter
    from datatrove.pipeline.formatters import FTFYFormatter

    from shardsmith.pipelines.filter_chains import build_filter_steps
    from shardsmith.pipelines.url_filter import OptionalURLFilter
    from shardsmith.pipelines.normalize import NormalizeFormatter
    from shardsmith.pipelines.word_tokenizer import SharedWordTokenizer
    from shardsmith.schemas.mix_recipe import SourceSpec

    # datatrove's word splitting on both sides (the web chain's English default, fineweb2024, splits as FineWeb did)
    chain = {"chain": "web", "word_splitter": "datatrove"}
    src = SourceSpec(name=f"bench_{language}", kind="generic", paths=["-"], weight=1, language=language, filters=chain)
    steps = build_filter_steps(src, None)
    if side == "ours":
        return steps
    bare = []
    for name, step in steps:
        if isinstance(getattr(step, "language", None), SharedWordTokenizer):
            step = copy.copy(step)
            step.__class__ = _datatrove_class(type(step))  # e.g. FastGopherRepetitionFilter -> datatrove's own
            step.language = step.language.language  # datatrove's key: its own load_word_tokenizer, no memo
        elif isinstance(step, OptionalURLFilter):
            step = copy.copy(step)
            step.__class__ = URLFilter  # same lists and params, datatrove's own download_data and filter
        elif isinstance(step, NormalizeFormatter):
            step = copy.copy(step)
            step.__class__ = FTFYFormatter  # same TextFixerConfig, datatrove's own format: ftfy.fix_text
        bare.append((name, step))
    return bare


def _datatrove_class(cls: type) -> type:
    """The nearest datatrove class a step's class is (or derives from)."""
    for klass in cls.__mro__:
        if klass.__module__.startswith("datatrove."):
            return klass
    raise TypeError(f"{cls.__name__} is no datatrove step")


def _record_drops(steps, drops: dict) -> None:
    """Make each filter note (step, reason) of the documents it drops into ``drops`` (same cost on both sides)."""
    from datatrove.pipeline.filters.base_filter import BaseFilter, get_filter_result

    for name, step in steps:
        if not isinstance(step, BaseFilter):
            continue

        def recording(doc, _filter=step.filter, _name=name):
            res = _filter(doc)
            keep, reason = get_filter_result(res)
            if not keep:
                drops[doc.id] = [_name, reason]
            return res

        step.filter = recording


def chain_child(side: str, language: str, docs_path: str, out_path: str) -> None:
    """One cold pass (run in a fresh process): warm the models on other text, then time the chain over the docs and
    write seconds and each document's verdict (``[step, reason]``, or ``["kept", sha1 of the final text]``)."""
    import hashlib
    import pickle

    with open(docs_path, "rb") as f:
        docs = pickle.load(f)
    steps = chain_steps(side, language)
    run_chain([s for _, s in steps], warm_docs(language))
    drops: dict = {}
    _record_drops(steps, drops)
    from datatrove.data import Document

    data = (Document(text=d.text, id=d.id, metadata=dict(d.metadata)) for d in docs)
    t0, c0 = time.perf_counter(), time.process_time()
    for _, step in steps:
        data = step.run(data, 0, 1)
    kept = {d.id: ["kept", hashlib.sha1(d.text.encode()).hexdigest()] for d in data}
    cpu_seconds, seconds = time.process_time() - c0, time.perf_counter() - t0
    verdicts = [kept.get(d.id) or drops.get(d.id) or ["dropped", None] for d in docs]
    with open(out_path, "w") as f:
        names = [n for n, _ in steps]
        json.dump({"cpu_seconds": cpu_seconds, "seconds": seconds, "steps": names, "verdicts": verdicts}, f)


def cold_pass(side: str, language: str, docs_path: Path) -> dict:
    out = docs_path.with_suffix(f".{side}.json")
    cmd = [sys.executable, __file__, "--chain-child", side, language, str(docs_path), str(out)]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def fast_path_differences(language: str, docs) -> dict[str, int]:
    """Documents where a shardsmith fast path's output differs from the library it stands in for, on every benchmark
    document (expected 0 each): normalize (ftfy skipped where it cannot change the text) vs datatrove's
    ``FTFYFormatter``; for Chinese, ``FastOpenCC`` vs opencc's ``OpenCC.convert`` on the normalized texts."""
    import copy

    from datatrove.pipeline.formatters import FTFYFormatter

    from shardsmith.pipelines.filter_chains import build_filter_steps
    from shardsmith.schemas.mix_recipe import SourceSpec

    src = SourceSpec(name="bench", kind="generic", paths=["-"], weight=1, language=language)
    steps = dict(build_filter_steps(src, None))
    ours = steps["normalize"]
    ref = copy.copy(ours)
    ref.__class__ = FTFYFormatter
    texts = [ref.format(d.text) for d in docs]
    out = {"normalize_vs_ftfy": sum(ours.fix(d.text) != t for d, t in zip(docs, texts))}
    if "opencc_t2s" in steps:
        from opencc import OpenCC

        fast, cc = steps["opencc_t2s"], OpenCC(steps["opencc_t2s"].config)
        out["opencc_vs_package"] = sum(fast.format(t) != cc.convert(t) for t in texts)
    return out


def bench_filters(language: str, docs, runs: int, workdir: Path) -> tuple[dict, list[str]]:
    """Median of ``runs`` alternating cold passes per side; per-document verdict differences (expected none)."""
    import pickle
    import statistics

    from datatrove.data import Document

    for i, d in enumerate(docs):  # unique ids: verdicts are matched by id
        d.id = f"{i}:{d.id}"
    url_info = attach_urls(docs)
    fast_diffs = fast_path_differences(language, docs)
    docs_path = workdir / f"{language}.pkl"
    with open(docs_path, "wb") as f:
        pickle.dump([Document(text=d.text, id=d.id, metadata=dict(d.metadata)) for d in docs], f)
    times: dict[str, list[float]] = {"bare": [], "ours": []}
    wall: dict[str, list[float]] = {"bare": [], "ours": []}
    verdicts: dict[str, list] = {}
    steps: list[str] = []
    for i in range(runs):
        for side in ("bare", "ours") if i % 2 == 0 else ("ours", "bare"):
            res = cold_pass(side, language, docs_path)
            times[side].append(res["cpu_seconds"])  # CPU time: the machine is shared, wall time is noise
            wall[side].append(res["seconds"])
            steps = res["steps"]
            if side in verdicts and res["verdicts"] != verdicts[side]:
                raise SystemExit(f"{language}: {side} chain gave different verdicts in two runs")
            verdicts[side] = res["verdicts"]
    diffs = [
        f"  {d.id[:60]}: bare {b} / shardsmith {o}"
        for d, b, o in zip(docs, verdicts["bare"], verdicts["ours"])
        if b != o
    ]
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    bare_t, ours_t = statistics.median(times["bare"]), statistics.median(times["ours"])
    drops = {}
    for v in verdicts["ours"]:
        if v[0] != "kept":
            drops[v[0]] = drops.get(v[0], 0) + 1
    row = {
        "chain": f"{language}: {' > '.join(steps)}",
        "docs": len(docs),
        "MB": round(mb, 2),
        "bare_docs_s": round(len(docs) / bare_t, 1),
        "ours_docs_s": round(len(docs) / ours_t, 1),
        "bare_MB_s": round(mb / bare_t, 3),
        "ours_MB_s": round(mb / ours_t, 3),
        "ratio": round(bare_t / ours_t, 2),
        "kept_bare": sum(v[0] == "kept" for v in verdicts["bare"]),
        "kept_ours": sum(v[0] == "kept" for v in verdicts["ours"]),
        "verdict_diffs": len(diffs),
        "fast_path_diffs": sum(fast_diffs.values()),
    }
    notes = [
        f"{language}: CPU s/pass bare {', '.join(f'{t:.1f}' for t in times['bare'])}; "
        f"shardsmith {', '.join(f'{t:.1f}' for t in times['ours'])} "
        f"(wall: bare {', '.join(f'{t:.1f}' for t in wall['bare'])}; shardsmith "
        f"{', '.join(f'{t:.1f}' for t in wall['ours'])})",
        f"{language}: drops by step (shardsmith) {drops}; urls: {url_info}",
        f"{language}: fast paths vs the library they stand in for, documents differing: {fast_diffs}",
    ]
    return row, notes + diffs[:20]


def bench_tokenize(docs, tokenizer_name: str) -> dict:
    from datatrove.pipeline.tokens import DocumentTokenizer

    from shardsmith.pipelines import shards
    from shardsmith.pipelines.tokenizers import resolve_tokenizer
    from shardsmith.schemas.common import TokenizerSpec

    tok = resolve_tokenizer(TokenizerSpec(name=tokenizer_name))
    with tempfile.TemporaryDirectory() as tmp:
        tok_path = str(tok.tokenizer_json)
        bare = DocumentTokenizer(f"{tmp}/bare", tokenizer_name_or_path=tok_path, eos_token=tok.eos_token)
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer documents and runs (no verdict check on all docs)")
    ap.add_argument("--runs", type=int, default=5, help="cold passes per side and chain (median reported)")
    ap.add_argument("--only", choices=["filters", "tokenize", "memory"], default=None, help="run one section")
    ap.add_argument("--lang", choices=["en", "zh"], default=None, help="filter chains: one language only")
    ap.add_argument("--chain-child", nargs=4, metavar=("SIDE", "LANG", "DOCS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    start_bench()
    if args.chain_child:
        chain_child(*args.chain_child)
        return

    en, zh = english_docs(), chinese_docs()
    runs = args.runs
    if args.quick:
        en, zh, runs = en[:300], zh[:500], min(runs, 1)
    if runs < 1:
        sys.exit("--runs must be >= 1")
    print(f"# shardsmith bench_mix — {len(en)} English docs, {len(zh)} Chinese docs")
    if args.only in (None, "filters"):
        print(f"\n## default filter chains, cold: a fresh process per pass, models warmed on other text, "
              f"median CPU time of {runs} alternating passes per side, one core")
        rows, notes = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for lang, docs in (("en", en), ("zh", zh)):
                if args.lang and lang != args.lang:
                    continue
                row, note = bench_filters(lang, docs, runs, Path(tmp))
                rows.append(row)
                notes += note
        print(table(rows))
        print("\n".join(notes))
        n_diff = sum(r["verdict_diffs"] + r["fast_path_diffs"] for r in rows)
        print(f"per-document verdict (step, reason, final text) and fast-path output differences: {n_diff}")
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
    if args.only in (None, "filters") and n_diff:
        sys.exit(f"{n_diff} documents got a different verdict or fast-path output from shardsmith than the reference")


if __name__ == "__main__":
    main()
