#!/usr/bin/env python
"""Benchmark the SFT builder on the real samples in $SHARDSMITH_DATA (default ../shared/data).

Measures conversations/s end to end (import -> structure/length -> language -> dedup -> render -> tokenize with
datatrove -> manifest) and per stage, and in the same run the two heavy stages *bare* for comparison:
fastText (lid.176.ftz via shardsmith.pipelines.lid.detect_language) over the same turns, and the tokenizer
(tokenizers.Tokenizer.encode_batch) over the same rendered documents.

    python scripts/bench_sft.py [--keep zh,en] [--template t1b] [--tokenizer gpt2] [--near] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SETS = {  # name: (path under the data root, declared language)
    "belle_2m": ("sft_zh_belle/train_2M_CN_sample.json", "zh"),
    "belle_3_5m": ("sft_zh_belle/train_3.5M_CN_sample.json", "zh"),
    "firefly": ("sft_zh_firefly/firefly-train-1.1M_sample.jsonl", "zh"),
    "alpaca_zh": ("sft_alpaca_zh_demo/alpaca_zh_demo.json", "zh"),
    "ruozhiba": ("sft_zh_better_ruozhiba/ruozhiba_qa.json", "zh"),
    "alpaca_en": ("sft_alpaca_en_demo/alpaca_en_demo.json", "en"),
    "oasst1": ("sft_oasst1_en_pairs/oasst1_en_instruction_response_pairs.json", "en"),
    "alpaca_orig": ("sft_alpaca_original_fixture/alpaca.json", "en"),
    "dolly": ("sft_alpaca_original_fixture/dolly.json", "en"),
    "rasbt": ("sft_rasbt_ch07/instruction-data.json", "en"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("SHARDSMITH_DATA") or str(REPO.parent / "shared" / "data"))
    ap.add_argument("--keep", default="zh,en", help="languages kept (zh: the zh-only must-show build)")
    ap.add_argument("--template", default="t1b")
    ap.add_argument("--tokenizer", default="gpt2")
    ap.add_argument("--near", action="store_true", help="also MinHash near-dedup")
    ap.add_argument("--repeat", type=int, default=1, help="bare stages: best of N runs")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args(argv)

    import logging

    from loguru import logger

    logger.remove()  # datatrove's per-task logging drowns the table
    logging.getLogger().setLevel(logging.WARNING)

    from shardsmith.builders.build import build
    from shardsmith.builders.importers import import_file
    from shardsmith.builders.templates import RenderError, render, resolve_template
    from shardsmith.pipelines.lid import detect_language
    from shardsmith.pipelines.tokenizers import resolve_tokenizer
    from shardsmith.schemas.common import TokenizerSpec
    from shardsmith.schemas.records import Conversation

    data = Path(args.data)
    missing = [p for p, _ in SETS.values() if not (data / p).is_file()]
    if missing:
        print(f"missing under {data}: {missing}", file=sys.stderr)
        return 2
    keep = [x.strip() for x in args.keep.split(",") if x.strip()]
    recipe = {
        "kind": "sft", "name": "bench-sft", "seed": 1, "tokenizer": {"name": args.tokenizer},
        "template": args.template, "validation": {"fraction": 0.02},
        "filters": {"language": {"keep": keep}, "dedup": {"exact": True, "near": bool(args.near)}},
        "sources": [{"name": n, "paths": [str(data / p)], "language": lang} for n, (p, lang) in SETS.items()],
    }
    with tempfile.TemporaryDirectory(prefix="bench_sft_") as tmp:
        rp = Path(tmp) / "bench.yaml"
        rp.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
        # warm the tokenizer cache and the fastText model so neither is charged to the first stage
        tpl = resolve_template(args.template)
        tok = resolve_tokenizer(TokenizerSpec(name=args.tokenizer, add_special_tokens=list(tpl.special_tokens)))
        detect_language(["warm up"])
        timings: dict = {}
        t0 = time.perf_counter()
        out = build(str(rp), str(Path(tmp) / "out"), timings=timings)
        wall = time.perf_counter() - t0
        man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))

        # --- bare stages on the same inputs ---------------------------------------------------------------
        convs: list[Conversation] = []
        t = time.perf_counter()
        for n, (p, _) in SETS.items():
            convs += [c for c in import_file(data / p, source=n) if isinstance(c, Conversation)]
        import_bare = time.perf_counter() - t
        turns = [m.content for c in convs for m in c.messages if m.role in ("user", "assistant") and m.content.strip()]
        ft_best = min(_timed(lambda: detect_language(turns)) for _ in range(args.repeat))
        docs = []
        for c in convs:
            try:
                docs.append(render(c, tpl, tok.eos_token).doc_text)
            except RenderError:
                pass
        tk = tok.load()
        enc_holder = {}
        tok_best = min(_timed(lambda: enc_holder.setdefault("e", tk.encode_batch(docs, add_special_tokens=False)))
                       for _ in range(args.repeat))
        n_tokens = sum(len(e.ids) for e in enc_holder["e"])

    n_read = timings["conversations_read"]
    n_kept = timings["conversations_kept"]
    stages = [k for k in ("tokenizer_resolve", "import", "structure_length", "language", "dedup", "render",
                          "length_tokens", "language_kept", "tokenize", "write") if k in timings]
    rows = [(k, timings[k]) for k in stages]
    res = {
        "device": "cpu", "cpus": os.cpu_count(), "conversations_read": n_read, "conversations_kept": n_kept,
        "keep": keep, "template": args.template, "tokenizer": args.tokenizer,
        "end_to_end_s": round(wall, 3), "end_to_end_conv_per_s": round(n_read / wall, 1),
        "stages_s": {k: round(v, 3) for k, v in rows},
        "bare": {
            "import_conv_per_s": round(len(convs) / import_bare, 1),
            "fasttext_turns": len(turns), "fasttext_s": round(ft_best, 3),
            "fasttext_conv_per_s": round(len(convs) / ft_best, 1), "fasttext_turns_per_s": round(len(turns) / ft_best, 1),
            "tokenizer_docs": len(docs), "tokenizer_s": round(tok_best, 3), "tokenizer_tokens": n_tokens,
            "tokenizer_conv_per_s": round(len(docs) / tok_best, 1), "tokenizer_tokens_per_s": round(n_tokens / tok_best),
        },
        "splits": {k: {"documents": v["documents"], "tokens": v["tokens"], "loss_tokens": v["loss_tokens"]}
                   for k, v in man["splits"].items()},
        "language_vs_declared": man.get("language_report", {}).get("vs_declared"),
    }
    print(f"SFT build over {n_read} real conversations ({len(SETS)} sets), keep={keep}, template={args.template}, "
          f"tokenizer={args.tokenizer}, {os.cpu_count()} CPUs")
    print(f"  end to end: {wall:.2f} s = {n_read / wall:,.0f} conversations/s read ({n_kept} kept)")
    for k, v in rows:
        per = f"{n_read / v:,.0f} conv/s" if v > 0 else "-"
        print(f"    {k:18s} {v:7.3f} s   {per}")
    b = res["bare"]
    print(f"  bare fastText : {b['fasttext_s']:.3f} s for {b['fasttext_turns']} turns = {b['fasttext_conv_per_s']:,.0f} "
          f"conv/s ({b['fasttext_turns_per_s']:,.0f} turns/s)  vs language stage {timings.get('language', 0):.3f} s")
    print(f"  bare tokenizer: {b['tokenizer_s']:.3f} s for {b['tokenizer_docs']} docs / {n_tokens:,} tokens = "
          f"{b['tokenizer_conv_per_s']:,.0f} conv/s ({b['tokenizer_tokens_per_s']:,} tok/s)  vs datatrove tokenize "
          f"stage {timings.get('tokenize', 0):.3f} s")
    vs = res["language_vs_declared"]
    if vs:
        print(f"  language vs declared: precision {vs['precision']} recall {vs['recall']} "
              f"(tp {vs['tp']} fp {vs['fp']} fn {vs['fn']} tn {vs['tn']})")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2), encoding="utf-8")
    return 0


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    raise SystemExit(main())
