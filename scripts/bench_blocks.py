#!/usr/bin/env python
"""Benchmark the block builder per kind against bare tokenization of the same rendered text, in the same run.

For each kind (sft, preference, mcq, cot, repair, surgical, distill with a file teacher) a shipped recipe of
``recipes/blocks/`` is built on the real samples in $SHARDSMITH_DATA (default ../shared/data), plus ``sft-lid``: the
ten real SFT sets with the zh+en language filter that the former ``scripts/bench_sft.py`` measured. Two timings per pass,
each in a fresh Python process (nothing warm: no loaded tokenizer, fastText model or BPE cache; Python modules are
imported before the clock starts on both sides, ``BUILD_IMPORTS`` for the builder — process start-up is not the
builder's work):

* builder: ``shardsmith.builders.build.build(recipe)`` end to end (tokenizer load, import, filters, render, token
  lengths, sampling, split, tokenize, write, manifest);
* bare tokenizer: load the block's own ``tokenizer/tokenizer.json`` (HF ``tokenizers``, the builder loads it too) and
  ``encode_batch`` exactly the rendered documents the block wrote — read back from the shards and checked id for id
  against them afterwards. ``encode`` s is the encode_batch call alone.

Passes alternate builder / tokenizer (``--repeat`` times); the medians are reported. Records/s: builder = records
read / builder s; tokenizer = documents written / tokenizer s. Ratio = builder s / tokenizer s of each pass (a
builder run and the tokenizer run right after it), median over the passes: this shared machine's speed drifts by tens
of percent between minutes, and a pair measured together drifts together. cpu ratio: the same in CPU seconds (all
threads, and the builder's forked language-ID children). Overhead = what the builder spends beyond the tokenizer's
time, in units of it: ratio - 1. Target (issue 10): builder overhead <= 2x the tokenizer's time.

    python scripts/bench_blocks.py [--kinds sft,mcq] [--repeat 5] [--json out.json]

Exits 1 when a row misses the target (the table marks it), 0 when all meet it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BLOCKS = REPO / "recipes" / "blocks"
TARGET_OVERHEAD = 2.0  # (builder s - tokenizer s) / tokenizer s


@dataclass(frozen=True)
class BenchRecipe:
    """A shipped block recipe made runnable on the samples: sources whose data is not shipped are removed, a file
    teacher replaces an hf one (its outputs: each pooled question's reference answer)."""

    kind: str  # the row's name: the block kind, or kind-variant
    recipe: str  # a recipe of recipes/blocks/, or a key of GENERATED
    drop_sources: tuple[str, ...] = ()
    file_teacher: bool = False
    env: dict = field(default_factory=dict)


# The SFT recipe scripts/bench_sft.py measured (this script replaces it): ten real SFT sets, zh+en language filter.
SFT_SETS = {  # name: (path under the data root, declared language)
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
GENERATED = {
    "sft-10-sets": lambda data: {
        "kind": "sft", "name": "sft-10-sets", "seed": 1, "tokenizer": {"name": "gpt2"}, "template": "t1b",
        "validation": {"fraction": 0.02},
        "filters": {"language": {"keep": ["zh", "en"]}, "dedup": {"exact": True, "near": False}},
        "sources": [{"name": n, "paths": [str(data / p)], "language": lang} for n, (p, lang) in SFT_SETS.items()],
    },
}

BENCH = [
    BenchRecipe("sft", "fgpt-instruct", env={"ALPACA_CLEANED": "{data}/sft_alpaca_original_fixture/alpaca.json"}),
    BenchRecipe("sft-lid", "sft-10-sets"),
    BenchRecipe("preference", "t1b-ultrafeedback"),
    BenchRecipe("mcq", "steel-mcq", drop_sources=("wanjuan_exam",), env={"WANJUAN_EXAM": "unused"}),
    BenchRecipe("cot", "memphis-cot"),
    BenchRecipe("repair", "ff-repair"),
    BenchRecipe("surgical", "ff-surgical"),
    BenchRecipe("distill", "ff-distill", file_teacher=True, env={"FF_TEACHER": "unused"}),
]


def prepare(bench: BenchRecipe, data: Path, folder: Path) -> Path:
    """Write the runnable recipe (absolute paths) into ``folder``; returns its path."""
    from shardsmith.recipes import load_recipe_dict

    os.environ["SHARDSMITH_DATA"] = str(data)
    for k, v in bench.env.items():
        os.environ.setdefault(k, v.format(data=data))
    recipe = GENERATED[bench.recipe](data) if bench.recipe in GENERATED else load_recipe_dict(BLOCKS / f"{bench.recipe}.yaml")
    recipe["sources"] = [s for s in recipe["sources"] if s["name"] not in bench.drop_sources]
    for s in recipe["sources"]:
        s["paths"] = [str((BLOCKS / p).resolve()) for p in s.get("paths", [])]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{bench.recipe}.yaml"
    if bench.file_teacher:
        recipe["teacher"] = {"kind": "file", "path": str(_reference_answers(recipe, path, folder)), "name": "reference"}
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _reference_answers(recipe: dict, path: Path, folder: Path) -> Path:
    """A teacher-outputs file answering every record of every source with the record's own answer."""
    from shardsmith.builders.block import BuildError  # noqa: F401  (import check: the builders load)
    from shardsmith.builders.build import load_block_recipe
    from shardsmith.builders.kinds import KINDS, read_sources

    draft = folder / "draft.yaml"
    draft.write_text(yaml.safe_dump({**recipe, "teacher": {"kind": "file", "path": str(draft)}}, allow_unicode=True),
                     encoding="utf-8")
    parsed, _ = load_block_recipe(draft)
    items, _ = read_sources(parsed, KINDS[parsed.kind], folder)
    out, seen = folder / "teacher_outputs.jsonl", set()
    with open(out, "w", encoding="utf-8") as f:
        for lst in items.values():
            for it in lst:
                if it.conv.id not in seen and it.conv.messages[-1].role == "assistant":
                    seen.add(it.conv.id)
                    f.write(json.dumps({"id": it.conv.id, "output": it.conv.messages[-1].content},
                                       ensure_ascii=False) + "\n")
    draft.unlink()
    return out


# ----------------------------------------------------------------------------------------------------------------
# one measured pass, each in its own process


# The modules a build imports on first use, imported before the builder's clock starts as the tokenizer pass imports
# `tokenizers` before its own: module loading is process start-up, not the builder's work (it is measured on its
# own: `python -X importtime -c "import shardsmith.builders.kinds"`). The hf teacher's torch/transformers are not
# listed: the bench's distill row uses a file teacher.
BUILD_IMPORTS = (
    "shardsmith.builders.kinds", "shardsmith.builders.distill", "shardsmith.builders.pairs",
    "shardsmith.pipelines.lid", "shardsmith.pipelines.tokenizers", "shardsmith.pipelines.shards",
    "tokenizers", "tokenizers.processors", "fasttext.FastText", "datatrove.data", "datatrove.pipeline.tokens",
    "datatrove.pipeline.tokens.tokenizer", "pyarrow", "pyarrow.ipc",
)


def pass_build(recipe: Path, out: Path, result: Path) -> None:
    """Time ``build`` in this (fresh) process; write the timings and the rendered texts the block holds."""
    import logging

    from loguru import logger

    logger.remove()
    logging.getLogger().setLevel(logging.WARNING)
    import importlib

    for module in BUILD_IMPORTS:  # what build() imports on its first call (the tokenizer pass imports tokenizers too)
        importlib.import_module(module)
    from shardsmith.builders.build import build

    timings: dict = {}
    t0, c0 = time.perf_counter(), _cpu_with_children()
    build(str(recipe), str(out), timings=timings)
    seconds, cpu = time.perf_counter() - t0, _cpu_with_children() - c0
    result.write_text(json.dumps({"seconds": seconds, "cpu": cpu, "timings": timings}), encoding="utf-8")


def _cpu_with_children() -> float:
    """CPU seconds of this process (all threads) and of its finished children (the builder forks language ID)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def rendered_texts(block: Path) -> tuple[list[str], list[list[int]], str]:
    """The documents a block wrote, as text: each document's ids decoded (byte-level BPE decodes losslessly; the
    tokenizer pass checks it by re-encoding), minus the EOS datatrove appends. Also the ids and the EOS."""
    from tokenizers import Tokenizer

    from shardsmith.pipelines.shards import split_files
    from shardsmith.schemas.manifest import ShardManifest

    man = ShardManifest.load(block)
    tk = Tokenizer.from_file(str(block / man.tokenizer.path / "tokenizer.json"))
    eos = man.tokenizer.eos_token
    texts, ids = [], []
    for split in ("train", "validation"):
        for f in split_files(block, split, man.token_size):
            for doc, _ in f.documents():
                doc = [int(x) for x in doc]
                text = tk.decode(doc, skip_special_tokens=False)
                if not text.endswith(eos):
                    raise SystemExit(f"{f.path}: a document does not end with {eos!r}")
                texts.append(text[: -len(eos)])
                ids.append(doc)
    return texts, ids, eos


def pass_tokenize(block: Path, texts_file: Path, result: Path) -> None:
    """Time bare ``encode_batch`` over the block's texts in this (fresh) process; then check the ids."""
    from tokenizers import Tokenizer

    from shardsmith.schemas.manifest import ShardManifest

    data = json.loads(texts_file.read_text(encoding="utf-8"))
    path = str(block / ShardManifest.load(block).tokenizer.path / "tokenizer.json")
    t0, c0 = time.perf_counter(), time.process_time()
    tk = Tokenizer.from_file(path)
    t1 = time.perf_counter()
    enc = tk.encode_batch(data["texts"], add_special_tokens=False)
    t2, cpu = time.perf_counter(), time.process_time() - c0
    eos_id = tk.token_to_id(data["eos"])
    bad = sum(e.ids + [eos_id] != want for e, want in zip(enc, data["ids"]))
    result.write_text(json.dumps({"seconds": t2 - t0, "cpu": cpu, "encode": t2 - t1, "documents": len(enc), "mismatched": bad,
                                  "tokens": sum(len(e.ids) + 1 for e in enc)}), encoding="utf-8")


def _child(*args: str) -> None:
    subprocess.run([sys.executable, __file__, *args], check=True)


def bench_kind(bench: BenchRecipe, data: Path, tmp: Path, repeat: int) -> dict:
    recipe = prepare(bench, data, tmp / bench.kind)
    build_s, tok_s, enc_s, build_cpu, tok_cpu, timings, tok = [], [], [], [], [], [], {}
    block = tmp / bench.kind / "block"
    for r in range(repeat):
        res = tmp / bench.kind / f"build{r}.json"
        _child("--pass-build", str(recipe), str(block), str(res))
        b = json.loads(res.read_text())
        build_s.append(b["seconds"])
        build_cpu.append(b["cpu"])
        timings.append(b["timings"])
        texts_file = tmp / bench.kind / "texts.json"
        if r == 0:
            texts, ids, eos = rendered_texts(block)
            texts_file.write_text(json.dumps({"texts": texts, "ids": ids, "eos": eos}, ensure_ascii=False))
        res = tmp / bench.kind / f"tok{r}.json"
        _child("--pass-tokenize", str(block), str(texts_file), str(res))
        tok = json.loads(res.read_text())
        if tok["mismatched"]:
            raise SystemExit(f"{bench.kind}: {tok['mismatched']} documents re-encode to other ids than the shards hold")
        tok_s.append(tok["seconds"])
        enc_s.append(tok["encode"])
        tok_cpu.append(tok["cpu"])
    b_med, t_med = statistics.median(build_s), statistics.median(tok_s)
    read = timings[0]["conversations_read"]
    return {
        "kind": bench.kind, "recipe": bench.recipe, "records_read": read, "records_kept": timings[0]["conversations_kept"],
        "documents": tok["documents"], "tokens": tok["tokens"],
        "builder_s": round(b_med, 3), "tokenizer_s": round(t_med, 4), "encode_s": round(statistics.median(enc_s), 4),
        "builder_records_per_s": round(read / b_med, 1), "tokenizer_records_per_s": round(tok["documents"] / t_med, 1),
        "ratio": round(statistics.median(b / t for b, t in zip(build_s, tok_s)), 2),
        "overhead": round(statistics.median(b / t - 1 for b, t in zip(build_s, tok_s)), 2),
        "builder_cpu_s": round(statistics.median(build_cpu), 3), "tokenizer_cpu_s": round(statistics.median(tok_cpu), 4),
        "ratio_cpu": round(statistics.median(b / t for b, t in zip(build_cpu, tok_cpu)), 2),
        "builder_runs_s": [round(x, 3) for x in build_s],
        "tokenizer_runs_s": [round(x, 4) for x in tok_s],
        "stages_s": {k: round(statistics.median(t[k] for t in timings), 3) for k in timings[0]
                     if isinstance(timings[0][k], float)},
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--pass-build":
        pass_build(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        return 0
    if argv and argv[0] == "--pass-tokenize":
        pass_tokenize(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("SHARDSMITH_DATA") or str(REPO.parent / "shared" / "data"))
    ap.add_argument("--kinds", default=",".join(b.kind for b in BENCH))
    ap.add_argument("--repeat", type=int, default=5, help="alternating builder/tokenizer passes; medians reported")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args(argv)
    data = Path(args.data).resolve()
    if not data.is_dir():
        print(f"no sample data at {data} (set SHARDSMITH_DATA)", file=sys.stderr)
        return 2
    wanted = [k.strip() for k in args.kinds.split(",") if k.strip()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_blocks_") as tmp:
        for bench in BENCH:
            if bench.kind in wanted:
                rows.append(bench_kind(bench, data, Path(tmp), args.repeat))
                _print_row(rows[-1])
    print(_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpus": os.cpu_count(), "repeat": args.repeat, "rows": rows}, indent=2))
    return 0 if all(r["overhead"] <= TARGET_OVERHEAD for r in rows) else 1


def _print_row(r: dict) -> None:
    stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stages_s"].items() if k != "total" and v >= 0.01)
    print(f"{r['kind']}: builder runs {r['builder_runs_s']} s (cpu {r['builder_cpu_s']}), tokenizer runs "
          f"{r['tokenizer_runs_s']} s (cpu {r['tokenizer_cpu_s']}); "
          f"stages (median s): {stages}", flush=True)


def _table(rows: list[dict]) -> str:
    head = (f"{'kind':11s} {'recipe':18s} {'read':>7s} {'docs':>6s} {'builder s':>9s} {'rec/s':>8s} "
            f"{'tokenizer s':>11s} {'(encode)':>8s} {'docs/s':>8s} {'ratio':>6s} {'cpu ratio':>9s} {'overhead':>8s}")
    lines = [head]
    for r in rows:
        flag = "" if r["overhead"] <= TARGET_OVERHEAD else "  over target"
        lines.append(f"{r['kind']:11s} {r['recipe']:18s} {r['records_read']:7d} {r['documents']:6d} "
                     f"{r['builder_s']:9.3f} {r['builder_records_per_s']:8.0f} {r['tokenizer_s']:11.4f} {r['encode_s']:8.4f} "
                     f"{r['tokenizer_records_per_s']:8.0f} {r['ratio']:6.2f} {r['ratio_cpu']:9.2f} "
                     f"{r['overhead']:7.2f}x{flag}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
