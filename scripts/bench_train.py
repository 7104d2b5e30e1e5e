#!/usr/bin/env python
"""Trainer benchmarks, each next to a baseline measured in the same run.

1. Data loader tokens/s per process: a bare memmap read of random windows (the baseline), the trainer's pretraining
   windows, and packed SFT rows with loss masks, restarting positions and segment ids (+ the block-causal mask).
   Targets: >= 20M tokens/s (windows), >= 5M tokens/s (packed rows).
2. DeepSpeed ZeRO stage 0 / 1 / 2 step times on the same model and batches.
3. The trainer's step (Engine.train_step) over a bare PyTorch loop (AdamW, same model, same batches, same
   token-weighted loss, clipping), interleaved to share machine noise. Target overhead <= 10 %.
4. DPO: pair rows per second from the loader, and the trainer's DPO step (policy + frozen reference, ZeRO-2) over a
   bare PyTorch DPO loop on the same pairs (``--dpo``).
7. Throughput (``--gpu``: the 124M, 712M, 1.1B and 2B presets in bf16 on the CUDA device; ``--throughput
   PRESET:SEQ:MICRO,...`` on any device): tokens/s, MFU, peak memory and the data-wait share of the step loop, with
   ``--compile`` / ``--activation-checkpointing`` as engine options.
6. Packed attention (``--attention``): the SFT step on packed rows with the dense block-causal mask against the
   mask-free path (``engine.attention: auto`` = varlen on CPU, flex on CUDA) at seq_len 2048 and 8192, step time and
   peak memory growth, each run cold in its own process, kinds alternating, medians.
5. Tokens/s of the ZeRO-2 step on any device; MFU = (6·N + 12·L·d·T) · tokens/s / peak FLOP/s when the peak is
   known (CUDA device names in PEAK_BF16, or ``--peak-tflops``). On CUDA, each participant's peak memory as if it ran
   alone (its resident tensors + the transient peak of its own step; see MemoryTracker).

Bare loops (``--bare``): ``pure`` keeps the model itself in the run's precision (bf16 weights and AdamW states, no
fp32 master copy: the cheapest loop, a lower bound); ``amp`` keeps fp32 weights and AdamW and runs forward/backward
under ``torch.autocast(bf16)`` (fp32 master weights like DeepSpeed's bf16 mode: the like-for-like baseline on a GPU).

Shard sets: ``--pretrain DIR`` / ``--sft DIR`` (built shard sets), else synthetic ones with the same format are
written to a temp folder (random tokens; reading speed does not depend on content).

    python scripts/bench_train.py                         # CPU defaults, ~1-2 minutes
    python scripts/bench_train.py --skip-loader --skip-steps --attention --vocab 1024   # packed attention, CPU
    python scripts/bench_train.py --skip-loader --skip-steps --gpu [--compile]           # MFU table, one GPU
    python scripts/bench_train.py --objectives [-- --steps 40]                          # KD and rank vs bare loops
    python scripts/bench_train.py --skip-loader --skip-steps --throughput tiny-gpt2:128:4 --tokens 200000  # CPU smoke
    python scripts/bench_train.py --preset gpt2-712m --seq-len 1024 --micro 8 --precision bf16   # on a GPU
    python scripts/bench_train.py --preset small-gpt2 --set n_layer=12 --set n_embd=768 --set n_head=12 \
        --set n_positions=1024 --seq-len 1024 --precision bf16 --bare pure,amp      # GPT-2 124M
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12, "4090": 165e12,
             "5090": 209e12}


def synthetic_set(root: Path, n_tokens: int, doc_len: tuple[int, int], loss: bool, vocab: int, seed: int) -> Path:
    """A shard set in the real format (uint16 .ds, uint64 .ds.index, uint8 .ds.loss, manifest.json)."""
    from shardsmith.pipelines.shards import finalize
    from shardsmith.schemas.manifest import ShardManifest, TokenizerInfo

    rng = np.random.default_rng(seed)
    (root / "train").mkdir(parents=True, exist_ok=True)
    lens = rng.integers(doc_len[0], doc_len[1], size=n_tokens // doc_len[0] + 1)
    ends = np.cumsum(lens)
    ends = ends[ends <= n_tokens]
    n = int(ends[-1])
    toks = rng.integers(1, vocab, size=n, dtype=np.uint16)
    toks[ends - 1] = 0  # EOS closes each document
    base = root / "train" / "000_bench.ds"
    toks.tofile(base)
    ends.astype(np.uint64).tofile(f"{base}.index")
    if loss:
        m = np.ones(n, np.uint8)
        starts = np.concatenate([[0], ends[:-1]])
        for s, e in zip(starts, ends):  # first third of each document is "prompt"
            m[s:s + (e - s) // 3] = 0
        m.tofile(f"{base}.loss")
    man = ShardManifest(
        kind="bench", name=root.name, version="bench", created_at=_dt.datetime.now().isoformat(), seed=seed,
        dtype="uint16", token_size=2, loss_masks=loss, splits={},
        tokenizer=TokenizerInfo(name="synthetic", sha256="0" * 64, vocab_size=vocab, eos_id=0, eos_token="<eos>"),
    )
    finalize(root, man, splits=("train",))
    return root


def synthetic_pairs(root: Path, n_pairs: int, prompt_len: tuple[int, int], answer_len: tuple[int, int], vocab: int,
                    seed: int) -> Path:
    """A preference set in the builders' layout: documents 2i (chosen) and 2i+1 (rejected) share a no-loss prompt."""
    from shardsmith.pipelines.shards import finalize
    from shardsmith.schemas.manifest import ShardManifest, TokenizerInfo

    rng = np.random.default_rng(seed)
    (root / "train").mkdir(parents=True, exist_ok=True)
    toks, masks, ends, at = [], [], [], 0
    for _ in range(n_pairs):
        prompt = rng.integers(1, vocab, size=int(rng.integers(*prompt_len)), dtype=np.uint16)
        for _side in range(2):
            ans = rng.integers(1, vocab, size=int(rng.integers(*answer_len)), dtype=np.uint16)
            ans[-1] = 0  # EOS
            toks += [prompt, ans]
            masks += [np.zeros(len(prompt), np.uint8), np.ones(len(ans), np.uint8)]
            at += len(prompt) + len(ans)
            ends.append(at)
    base = root / "train" / "000_pairs.ds"
    np.concatenate(toks).tofile(base)
    np.asarray(ends, np.uint64).tofile(f"{base}.index")
    np.concatenate(masks).tofile(f"{base}.loss")
    man = ShardManifest(
        kind="preference", name=root.name, version="bench", created_at=_dt.datetime.now().isoformat(), seed=seed,
        dtype="uint16", token_size=2, loss_masks=True, splits={}, pair_layout="adjacent:chosen,rejected",
        tokenizer=TokenizerInfo(name="synthetic", sha256="0" * 64, vocab_size=vocab, eos_id=0, eos_token="<eos>"),
    )
    finalize(root, man, splits=("train",))
    return root


def rate(fn, seconds: float) -> float:
    """Tokens per second of ``fn`` (returns tokens per call), run for about ``seconds``."""
    fn()  # warm the page cache and any lazy setup
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += fn()
    return n / (time.perf_counter() - t0)


def bench_loader(pt: Path, sft: Path, pref: Path, L: int, rows: int, seconds: float) -> dict:
    import torch
    from shardsmith.trainer.data import SplitReader, StageData
    from shardsmith.trainer.engine import block_causal_mask

    rd = SplitReader.open(pt, "train")
    toks = rd.tokens[0]
    rng = np.random.default_rng(0)

    def bare():
        offs = rng.integers(0, len(toks) - L - 1, size=rows)
        out = np.empty((rows, L + 1), np.int64)
        for i, o in enumerate(offs):
            out[i] = toks[o:o + L + 1]
        return rows * L

    win = StageData([str(pt)], [1.0], seq_len=L, seed=0, sampling="random", packing=False, document_masking=False,
                    micro=rows, accum=1, rank=0, world=1)
    step = iter(range(10**9))
    pk = StageData([str(sft)], [1.0], seq_len=L, seed=0, sampling="epoch", packing=True, document_masking=True,
                   micro=rows, accum=1, rank=0, world=1)
    pk.rows_per_epoch()  # the epoch's packing plan, computed once per epoch
    step2 = iter(range(10**9))

    def windows():
        win.micro_batch(next(step), 0)
        return rows * L

    def packed():
        pk.micro_batch(next(step2), 0)
        return rows * L

    pk8 = StageData([str(sft)], [1.0], seq_len=L, seed=0, sampling="epoch", packing=True, document_masking=True,
                    micro=8, accum=1, rank=0, world=1)
    pk8.rows_per_epoch()
    step3 = iter(range(10**9))

    def packed_mask():  # a micro-batch of 8 rows, as the engine builds it (SDPA boolean form)
        b = pk8.micro_batch(next(step3), 0)
        block_causal_mask(torch.from_numpy(b.segment_ids), torch.bool)
        return 8 * L

    def packed_mask_only():
        b = pk8.micro_batch(0, 0)
        t0 = time.perf_counter()
        for _ in range(3):
            block_causal_mask(torch.from_numpy(b.segment_ids), torch.bool)
        return (time.perf_counter() - t0) / 3

    pairs = StageData([str(pref)], [1.0], seq_len=L, seed=0, sampling="epoch", packing=False, document_masking=False,
                      micro=rows // 2, accum=1, rank=0, world=1, objective="dpo")
    step4 = iter(range(10**9))

    def pair_rows():  # rows // 2 pairs = rows rows (chosen, then rejected), padded to the longest, prompts checked
        b = pairs.micro_batch(next(step4), 0)
        return b.real_tokens

    t0 = time.perf_counter()
    plan = PackedPlanTimer(sft, L)
    return {
        "bare_memmap_windows": rate(bare, seconds),
        "trainer_windows": rate(windows, seconds),
        "trainer_packed_rows": rate(packed, seconds),
        "trainer_packed_rows_plus_bool_mask_micro8": rate(packed_mask, seconds),
        "trainer_dpo_pair_rows": rate(pair_rows, seconds),
        "packing_plan_docs_per_s": plan,
        "bool_mask_ms_per_micro8": 1e3 * packed_mask_only(),
        "_seconds": time.perf_counter() - t0,
    }


def PackedPlanTimer(sft: Path, L: int) -> float:
    from shardsmith.trainer.data import PackedSampler, SplitReader

    rd = SplitReader.open(sft, "train")
    s = PackedSampler([rd], [1.0], L, 0, "epoch")
    t0 = time.perf_counter()
    s.epoch(0)
    return len(s.docs) / (time.perf_counter() - t0)


def make_stage(preset_L: int, micro: int, accum: int, zero: int, precision: str, lr: float = 1e-3,
               objective: str = "clm"):
    from shardsmith.schemas.train_recipe import DataSet, DataSpec, EngineSpec, OptimizerSpec, StageSpec

    st = StageSpec(name="bench", objective=objective, data=DataSpec(sets=[DataSet(path="unused")]), seq_len=preset_L,
                   micro_batch_size=micro, grad_accum=accum, max_steps=10**6,
                   optimizer=OptimizerSpec(lr=lr, grad_clip=1.0))
    return st, EngineSpec(zero_stage=zero, precision=precision)


def peak_flops(dev, peak_tflops: float | None) -> tuple[str, float | None]:
    import torch

    if dev.type == "cuda":
        name = torch.cuda.get_device_name()
        return name, (peak_tflops * 1e12 if peak_tflops else next((v for k, v in PEAK_BF16.items() if k in name), None))
    return "cpu", peak_tflops * 1e12 if peak_tflops else None


class MemoryTracker:
    """Per-participant CUDA peak memory while several models share one process (the bench keeps every ZeRO stage and
    the bare loop alive and interleaves their steps).

    Only one participant allocates at a time, so the change of ``torch.cuda.memory_allocated()`` across its creation
    and its steps is the change of its own resident tensors (weights, optimizer states, flat buffers), and the peak
    of one step above the allocation at its start is that step's transient (activations, gradients). Its peak alone
    = resident before the step + that transient, maximised over its steps. A no-op on CPU."""

    def __init__(self, enabled: bool):
        import torch

        self.on = enabled
        self._torch = torch
        self.resident: dict = {}
        self.peak: dict = {}

    def run(self, who, fn):
        """Call ``fn()`` as participant ``who``, account its memory, return what it returns."""
        if not self.on:
            return fn()
        cuda = self._torch.cuda
        cuda.synchronize()
        before = cuda.memory_allocated()
        cuda.reset_peak_memory_stats()
        out = fn()
        cuda.synchronize()
        own = self.resident.get(who, 0)
        self.peak[who] = max(self.peak.get(who, 0), own + cuda.max_memory_allocated() - before)
        self.resident[who] = own + cuda.memory_allocated() - before
        return out

    def gib(self) -> dict:
        return {str(k): v / 2**30 for k, v in self.peak.items()}


def bench_steps(pt: Path, preset: str, L: int, micro: int, accum: int, steps: int, precision: str,
                zero_stages: list[int], cfg_over: dict, peak_tflops: float | None = None,
                bare_kinds: tuple[str, ...] = ("pure",)) -> dict:
    import torch
    from shardsmith.schemas.manifest import ShardManifest
    from shardsmith.trainer import engine as E
    from shardsmith.trainer.data import StageData
    from shardsmith.trainer.models import build_config, flops_per_token, new_model
    from shardsmith.trainer.objectives import token_losses

    rank, world, _ = E.init_distributed()
    man = ShardManifest.load(pt)
    config = build_config(preset, None, cfg_over, man, 64 if torch.cuda.is_available() else 1)
    data = StageData([str(pt)], [1.0], seq_len=L, seed=0, sampling="random", packing=False, document_masking=False,
                     micro=micro, accum=accum, rank=rank, world=world)
    batches = [data.step_batches(s) for s in range(steps + 2)]
    dev = E.device()
    res: dict = {"preset": preset, "config_overrides": cfg_over, "params": None,
                 "tokens_per_step": micro * accum * world * L}
    mem = MemoryTracker(dev.type == "cuda")

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def make_engine(zero: int):
        st, spec = make_stage(L, micro, accum, zero, precision)
        model = new_model(config, 0)
        res["params"] = sum(p.numel() for p in model.parameters())
        res["flops_per_token"] = flops_per_token(model, L)
        return E.Engine(model, st, spec, 0)

    def engine_step(eng, s: int) -> float:
        sync()
        t0 = time.perf_counter()
        eng.train_step(batches[s % len(batches)], s, 1e-3, rank, world)
        sync()
        return time.perf_counter() - t0

    bf16 = precision == "bf16" or (precision == "auto" and dev.type == "cuda")

    def make_bare(kind: str):
        """``pure``: the model in the run's precision; ``amp``: fp32 weights, bf16 autocast (see the docstring)."""
        model = new_model(config, 0).to(dev)
        if bf16 and kind == "pure":
            model = model.to(torch.bfloat16)
        opt = torch.optim.AdamW(E.param_groups(model, 0.1), lr=1e-3, betas=(0.9, 0.95),
                                **({"fused": True} if dev.type == "cuda" else {}))
        autocast = bf16 and kind == "amp"
        return model, opt, autocast

    def bare_step(mo, s: int) -> float:
        model, opt, autocast = mo
        sync()
        t0 = time.perf_counter()
        bs = batches[s % len(batches)]
        total = sum(b.loss_tokens for b in bs)
        for b in bs:
            ids = torch.from_numpy(b.input_ids).to(dev)
            labels = torch.from_numpy(b.labels).to(dev)
            pos = torch.from_numpy(b.position_ids).to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=autocast):
                logits = model(input_ids=ids, position_ids=pos, use_cache=False).logits
            (token_losses(logits, labels, "clm").sum() / total).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        return time.perf_counter() - t0

    # every ZeRO stage and the bare loop stay alive and take turns, one step each, so that all of them see the
    # same machine load (a shared CPU box swings by several x within a minute)
    engines = {z: mem.run(f"zero{z}", lambda z=z: make_engine(z)) for z in zero_stages}
    bares = {k: mem.run(f"bare_{k}", lambda k=k: make_bare(k)) for k in bare_kinds}
    times: dict = {z: [] for z in zero_stages}
    times.update({f"bare_{k}": [] for k in bare_kinds})
    for s in range(steps + 2):
        for k, mo in bares.items():
            times[f"bare_{k}"].append(mem.run(f"bare_{k}", lambda: bare_step(mo, s)))
        for z, eng in engines.items():
            times[z].append(mem.run(f"zero{z}", lambda: engine_step(eng, s)))
    times = {k: v[2:] for k, v in times.items()}  # drop warm-up steps
    res["zero"] = {z: {"median_s": statistics.median(times[z]), "min_s": min(times[z]), "all_s": times[z]}
                   for z in zero_stages}
    res["bare_loops"] = {k: {"median_s": statistics.median(times[f"bare_{k}"]), "min_s": min(times[f"bare_{k}"]),
                             "all_s": times[f"bare_{k}"]} for k in bare_kinds}
    res["bare_loop"] = res["bare_loops"][bare_kinds[0]]  # the first kind: what the overhead_vs_bare_* keys compare to
    for k in bare_kinds:
        for z in zero_stages:
            ratios = [t / b for t, b in zip(times[z], times[f"bare_{k}"])]  # paired, step by step
            key = f"overhead_vs_bare_zero{z}" if k == bare_kinds[0] else f"overhead_vs_bare_{k}_zero{z}"
            res[key] = statistics.median(ratios) - 1
    res["peak_memory_gib"] = mem.gib() if mem.on else None
    ztr = 2 if 2 in zero_stages else zero_stages[0]
    name, peak = peak_flops(dev, peak_tflops)
    tps = res["tokens_per_step"] / res["zero"][ztr]["median_s"]
    res["throughput"] = {"device": name, "zero": ztr, "tokens_per_s": tps, "peak_flops": peak,
                         "mfu": (res["flops_per_token"] * tps / world / peak) if peak else None}
    return res


def bench_dpo(pref: Path, preset: str, L: int, micro: int, accum: int, steps: int, precision: str,
              cfg_over: dict | None = None) -> dict:
    """The trainer's DPO step (ZeRO-2) against a bare PyTorch DPO loop (policy + reference forward, sigmoid loss,
    backward, clipping, AdamW) on the same pairs, interleaved step by step."""
    import copy

    import torch
    import torch.nn.functional as tF
    from shardsmith.schemas.manifest import ShardManifest
    from shardsmith.trainer import engine as E
    from shardsmith.trainer.data import StageData
    from shardsmith.trainer.models import build_config, new_model

    rank, world, _ = E.init_distributed()
    config = build_config(preset, None, cfg_over or {}, ShardManifest.load(pref),
                          64 if torch.cuda.is_available() else 1)
    data = StageData([str(pref)], [1.0], seq_len=L, seed=0, sampling="epoch", packing=False, document_masking=False,
                     micro=micro, accum=accum, rank=rank, world=world, objective="dpo")
    batches = [data.step_batches(s) for s in range(steps + 2)]
    dev = E.device()
    st, spec = make_stage(L, micro, accum, 2, precision, objective="dpo")
    eng = E.Engine(new_model(config, 0), st, spec, 0)
    model = new_model(config, 0).to(dev)
    ref = copy.deepcopy(model).eval().requires_grad_(False)
    if eng.precision == "bf16":
        model, ref = model.to(torch.bfloat16), ref.to(torch.bfloat16)
    opt = torch.optim.AdamW(E.param_groups(model, 0.0), lr=1e-3, betas=(0.9, 0.95),
                            **({"fused": True} if dev.type == "cuda" else {}))  # as the engine's

    def seq_logp(m, ids, labels):
        lp = -tF.cross_entropy(m(input_ids=ids, use_cache=False).logits.float().transpose(1, 2), labels.clamp(min=0),
                               reduction="none")
        return (lp * (labels != -100)).sum(-1)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def bare_step(s: int) -> float:
        sync()
        t0 = time.perf_counter()
        bs = batches[s % len(batches)]
        total = sum(b.pairs for b in bs)
        for b in bs:
            ids, labels = torch.from_numpy(b.input_ids).to(dev), torch.from_numpy(b.labels).to(dev)
            n = b.pairs
            lp = seq_logp(model, ids, labels)
            with torch.no_grad():
                rp = seq_logp(ref, ids, labels)
            m = (lp[:n] - rp[:n]) - (lp[n:] - rp[n:])
            (-tF.logsigmoid(0.1 * m).sum() / total).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        return time.perf_counter() - t0

    def engine_step(s: int) -> float:
        sync()
        t0 = time.perf_counter()
        eng.train_step(batches[s % len(batches)], s, 1e-3, rank, world)
        sync()
        return time.perf_counter() - t0

    tb, te = [], []
    for s in range(steps + 2):
        tb.append(bare_step(s))
        te.append(engine_step(s))
    tb, te = tb[2:], te[2:]
    tokens = statistics.mean(sum(b.real_tokens for b in batches[s % len(batches)]) for s in range(2, steps + 2))
    return {"pairs_per_step": micro * accum * world, "tokens_per_step": tokens,
            "trainer_median_s": statistics.median(te), "bare_median_s": statistics.median(tb),
            "overhead_vs_bare": statistics.median([e / b for e, b in zip(te, tb)]) - 1}


def packed_attention_child(sft: Path, preset: str, kind: str, L: int, rows: int, steps: int, cfg_over: dict) -> dict:
    """One cold measurement (run in a fresh process): the trainer's SFT step on packed rows with ``engine.attention``
    = ``kind``; median step time and the step's peak resident-memory growth (CPU: ru_maxrss over the RSS after setup;
    CUDA: max_memory_allocated over the allocation after setup)."""
    import resource

    import torch
    from shardsmith.schemas.manifest import ShardManifest
    from shardsmith.schemas.train_recipe import EngineSpec
    from shardsmith.trainer import engine as E
    from shardsmith.trainer.data import StageData
    from shardsmith.trainer.models import build_config, new_model

    rank, world, _ = E.init_distributed()
    over = {**cfg_over, **({"n_positions": L} if preset.endswith("gpt2") else {"max_position_embeddings": L})}
    config = build_config(preset, None, over, ShardManifest.load(sft), 1)
    data = StageData([str(sft)], [1.0], seq_len=L, seed=0, sampling="epoch", packing=True, document_masking=True,
                     micro=rows, accum=1, rank=rank, world=world, objective="sft")
    batches = [data.step_batches(s) for s in range(steps + 1)]
    st, _ = make_stage(L, rows, 1, 0, "auto", objective="sft")
    spec = EngineSpec(zero_stage=0, attention=kind)
    eng = E.Engine(new_model(config, 0), st, spec, 0)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = _rss_bytes()
    times = []
    for s, bs in enumerate(batches):
        t0 = time.perf_counter()
        eng.train_step(bs, s, 1e-4, rank, world)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    docs = statistics.mean(len({int(x) for x in row if x >= 0}) for bs in batches for b in bs for row in b.segment_ids)
    return {"kind": eng.attention, "seq_len": L, "rows": rows, "median_s": statistics.median(times[1:]),
            "first_step_s": times[0], "peak_growth_mib": (peak - base) / 2**20, "docs_per_row": docs}


# --gpu: the seeds' presets at a row length and micro-batch that fit one 80 GB+ GPU without activation checkpointing
GPU_RUNS = {"gpt2-124m": (1024, 16), "gpt2-712m": (1024, 16), "llama-1.1b": (2048, 8), "gpt2-2b": (1024, 8)}


def bench_throughput(pt: Path, runs: dict, steps: int, warmup: int, precision: str, zero: int, compile_: bool,
                     checkpointing: bool, peak_tflops: float | None) -> dict:
    """The trainer's real step loop per preset (data drawn, then Engine.train_step): tokens/s, MFU, peak memory and
    the share of step time spent waiting for data (the loop is synchronous: drawing a step's rows is pure wait)."""
    import gc

    import torch
    from shardsmith.schemas.manifest import ShardManifest
    from shardsmith.schemas.train_recipe import EngineSpec
    from shardsmith.trainer import engine as E
    from shardsmith.trainer.data import StageData
    from shardsmith.trainer.models import build_config, flops_per_token, new_model

    rank, world, _ = E.init_distributed()
    dev = E.device()
    name, peak = peak_flops(dev, peak_tflops)
    man = ShardManifest.load(pt)
    out = {}
    for preset, (L, micro) in runs.items():
        config = build_config(preset, None, {}, man, 64 if dev.type == "cuda" else 1)
        data = StageData([str(pt)], [1.0], seq_len=L, seed=0, sampling="random", packing=False,
                         document_masking=False, micro=micro, accum=1, rank=rank, world=world)
        st, _ = make_stage(L, micro, 1, zero, precision)
        spec = EngineSpec(zero_stage=zero, precision=precision, compile=compile_,
                          activation_checkpointing=checkpointing)
        model = new_model(config, 0)
        fpt, params = flops_per_token(model, L), sum(p.numel() for p in model.parameters())
        eng = E.Engine(model, st, spec, 0)
        if dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t_data, t_step = [], []
        for s in range(warmup + steps):
            t0 = time.perf_counter()
            batches = data.step_batches(s)
            t1 = time.perf_counter()
            eng.train_step(batches, s, 1e-4, rank, world)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if s >= warmup:
                t_data.append(t1 - t0)
                t_step.append(time.perf_counter() - t1)
        total = sum(t_data) + sum(t_step)
        tps = micro * L * world * steps / total
        out[preset] = {"params": params, "seq_len": L, "micro": micro, "tokens_per_s": tps,
                       "mfu": fpt * tps / world / peak if peak else None, "data_wait_share": sum(t_data) / total,
                       "median_step_s": statistics.median(d + t for d, t in zip(t_data, t_step)),
                       "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None,
                       "precision": eng.precision, "zero": zero, "compile": compile_,
                       "activation_checkpointing": checkpointing, "device": name}
        del eng, model
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return out


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_packed_attention(sft: Path, preset: str, seq_lens: list[int], tokens: int, steps: int, reps: int,
                           kinds: list[str], cfg_over: dict) -> dict:
    """Dense block-causal mask vs the mask-free paths on packed SFT rows: every (kind, seq_len) measured ``reps``
    times, each in a fresh process (cold: no allocator or page reuse between kinds), kinds alternating and the first
    kind rotated per repetition; medians over repetitions. ``tokens`` per micro-batch (rows = tokens / seq_len)."""
    import subprocess

    out: dict = {}
    for L in seq_lens:
        rows = max(tokens // L, 1)
        runs: dict = {k: [] for k in kinds}
        for r in range(reps):
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
            for kind in order:
                cmd = [sys.executable, __file__, "--attention-child", json.dumps(
                    {"sft": str(sft), "preset": preset, "kind": kind, "L": L, "rows": rows, "steps": steps,
                     "cfg_over": cfg_over})]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode != 0:
                    raise SystemExit(f"attention child {kind} L={L} failed: {res.stderr.strip().splitlines()[-1:]}")
                runs[kind].append(json.loads(res.stdout.strip().splitlines()[-1]))
        out[L] = {k: {"rows": rows, "resolved": v[0]["kind"], "docs_per_row": v[0]["docs_per_row"],
                      "median_step_s": statistics.median(x["median_s"] for x in v),
                      "median_peak_growth_mib": statistics.median(x["peak_growth_mib"] for x in v),
                      "runs": v} for k, v in runs.items()}
    return out


def config_overrides(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings -> {key: value}, values read as JSON when they parse (numbers, true/false), else text."""
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {p!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrain", help="a built shard set for windows (default: synthetic)")
    ap.add_argument("--sft", help="a built shard set with loss masks for packed rows (default: synthetic)")
    ap.add_argument("--tokens", type=int, default=50_000_000, help="synthetic set size (tokens)")
    ap.add_argument("--loader-seq-len", type=int, default=2048)
    ap.add_argument("--loader-rows", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=3.0, help="per loader measurement")
    ap.add_argument("--preset", default="small-gpt2")
    ap.add_argument("--set", dest="model_set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of the preset's HF config (repeatable), e.g. --set n_layer=12")
    ap.add_argument("--bare", default="pure", help="bare PyTorch loops to compare with: pure, amp or pure,amp")
    ap.add_argument("--vocab", type=int, default=None,
                    help="synthetic vocabulary = the model's rows (default 50257 with CUDA, 8192 on CPU)")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--micro", type=int, default=8)
    ap.add_argument("--accum", type=int, default=2)
    ap.add_argument("--steps", type=int, default=9)
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--zero", default="0,1,2")
    ap.add_argument("--skip-loader", action="store_true")
    ap.add_argument("--skip-steps", action="store_true")
    ap.add_argument("--dpo", action="store_true", help="also time DPO steps (trainer vs bare DPO loop)")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="the device's peak FLOP/s (TFLOP/s) for MFU when its name is not in the table")
    ap.add_argument("--attention", action="store_true",
                    help="packed-row SFT step time and peak memory: dense mask vs engine.attention auto (cold, "
                         "alternating, medians); --attention-seq-lens, --attention-tokens, --attention-reps")
    ap.add_argument("--attention-seq-lens", default="2048,8192")
    ap.add_argument("--attention-tokens", type=int, default=16384, help="tokens per packed micro-batch")
    ap.add_argument("--attention-reps", type=int, default=3)
    ap.add_argument("--attention-steps", type=int, default=3, help="steps per cold run (the first is dropped)")
    ap.add_argument("--attention-kinds", default="dense,auto")
    ap.add_argument("--attention-child", help=argparse.SUPPRESS)
    ap.add_argument("--gpu", action="store_true",
                    help="throughput of the 124M, 712M, 1.1B and 2B presets on the CUDA device (bf16, ZeRO-1): "
                         "tokens/s, MFU, peak memory, data-wait share")
    ap.add_argument("--throughput", metavar="PRESET[:SEQ:MICRO],...",
                    help="the same measurement for these presets on any device (e.g. tiny-gpt2:128:4 on CPU)")
    ap.add_argument("--throughput-steps", type=int, default=10)
    ap.add_argument("--throughput-warmup", type=int, default=3, help="steps dropped (compilation, allocator)")
    ap.add_argument("--compile", action="store_true", help="engine.compile for --gpu / --throughput")
    ap.add_argument("--activation-checkpointing", action="store_true", help="for --gpu / --throughput")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--objectives", action="store_true",
                    help="KD and rank steps beside a bare PyTorch loop (scripts/bench_train_objectives.py; its "
                         "options follow `--objectives --`)")
    a, rest = ap.parse_known_args(argv)
    if a.objectives:
        import importlib.util  # by path: scripts/ is not on sys.path under PYTHONSAFEPATH or `python -m`

        spec = importlib.util.spec_from_file_location("bench_train_objectives",
                                                      Path(__file__).resolve().parent / "bench_train_objectives.py")
        objectives = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(objectives)
        return objectives.main([x for x in rest if x != "--"])
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    if a.attention_child:
        kw = json.loads(a.attention_child)
        print(json.dumps(packed_attention_child(Path(kw.pop("sft")), **kw)))
        return 0

    if a.gpu:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--gpu: no CUDA device here (use --throughput PRESET:SEQ:MICRO to run on the CPU)")
    if a.vocab is None:
        import torch

        a.vocab = 50257 if torch.cuda.is_available() else 8192
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    pt = Path(a.pretrain) if a.pretrain else synthetic_set(tmp / "pt", a.tokens, (200, 3000), False, a.vocab, 0)
    sft = Path(a.sft) if a.sft else synthetic_set(tmp / "sft", a.tokens // 5, (60, 900), True, a.vocab, 1)
    pref = synthetic_pairs(tmp / "pref", 20_000, (20, 300), (20, 400), a.vocab, 2)
    out: dict = {"cpu_count": os.cpu_count()}
    if not a.skip_loader:
        r = bench_loader(pt, sft, pref, a.loader_seq_len, a.loader_rows, a.seconds)
        out["loader_tokens_per_s"] = r
        print(f"loader, per process (rows of {a.loader_seq_len}, {a.loader_rows} rows per call):")
        for k in ("bare_memmap_windows", "trainer_windows", "trainer_packed_rows",
                  "trainer_packed_rows_plus_bool_mask_micro8", "trainer_dpo_pair_rows"):
            print(f"  {k:42s} {r[k] / 1e6:9.1f} M tokens/s")
        print(f"  {'block-causal bool mask, 8 rows (CPU)':42s} {r['bool_mask_ms_per_micro8']:9.1f} ms per micro-batch")
        print(f"  {'packing plan':42s} {r['packing_plan_docs_per_s'] / 1e6:9.2f} M documents/s (once per epoch)")
    if not a.skip_steps:
        r = bench_steps(pt, a.preset, a.seq_len, a.micro, a.accum, a.steps, a.precision,
                        [int(z) for z in a.zero.split(",")], config_overrides(a.model_set), a.peak_tflops,
                        tuple(a.bare.split(",")))
        out["steps"] = r
        print(f"steps: {a.preset} ({r['params'] / 1e6:.1f}M params), {r['tokens_per_step']} tokens/step, "
              f"precision {a.precision}")
        for z, t in r["zero"].items():
            print(f"  DeepSpeed ZeRO-{z}: median {t['median_s'] * 1e3:8.1f} ms/step (min {t['min_s'] * 1e3:.1f})")
        kinds = list(r["bare_loops"])
        for k, t in r["bare_loops"].items():
            print(f"  bare PyTorch loop ({k}): median {t['median_s'] * 1e3:8.1f} ms/step (min {t['min_s'] * 1e3:.1f})")
        for k in kinds:
            for z in r["zero"]:
                key = f"overhead_vs_bare_zero{z}" if k == kinds[0] else f"overhead_vs_bare_{k}_zero{z}"
                print(f"  trainer ZeRO-{z} over the bare loop ({k}) (median of paired step ratios): "
                      f"{100 * r[key]:+.1f} %")
        if r["peak_memory_gib"]:
            peaks = ", ".join(f"{k} {v:.1f} GiB" for k, v in r["peak_memory_gib"].items())
            print(f"  peak memory as if alone: {peaks}")
        g = r["throughput"]
        mfu = f"{100 * g['mfu']:.1f} %" if g["mfu"] is not None else "n/a (peak unknown: --peak-tflops)"
        print(f"  {g['device']}, ZeRO-{g['zero']}: {g['tokens_per_s']:,.0f} tokens/s per step, MFU {mfu}")
    if a.dpo:
        r = bench_dpo(pref, a.preset, a.seq_len, max(a.micro // 2, 1), a.accum, a.steps, a.precision,
                      config_overrides(a.model_set))
        out["dpo"] = r
        print(f"dpo: {r['pairs_per_step']} pairs/step (~{r['tokens_per_step']:,.0f} tokens), policy + frozen reference")
        print(f"  trainer ZeRO-2: median {r['trainer_median_s'] * 1e3:8.1f} ms/step; bare DPO loop: median "
              f"{r['bare_median_s'] * 1e3:8.1f} ms/step; overhead {100 * r['overhead_vs_bare']:+.1f} %")
    if a.gpu or a.throughput:
        runs = dict(GPU_RUNS) if a.gpu else {}
        for item in (a.throughput.split(",") if a.throughput else []):
            preset, *rest = item.split(":")
            runs[preset] = (int(rest[0]), int(rest[1])) if rest else (a.seq_len, a.micro)
        precision = "bf16" if a.gpu and a.precision == "auto" else a.precision
        r = bench_throughput(pt, runs, a.throughput_steps, a.throughput_warmup, precision, 1 if a.gpu else 0,
                             a.compile, a.activation_checkpointing, a.peak_tflops)
        out["throughput"] = r
        print("throughput (the trainer's step loop: data drawn + Engine.train_step):")
        for preset, v in r.items():
            mfu = f"{100 * v['mfu']:5.1f} %" if v["mfu"] is not None else "  n/a"
            mem = f"{v['peak_memory_gib']:6.1f} GiB" if v["peak_memory_gib"] is not None else "   n/a"
            print(f"  {preset:11s} {v['params'] / 1e6:7.1f}M  {v['micro']:2d} x {v['seq_len']:4d}  "
                  f"{v['tokens_per_s']:>11,.0f} tokens/s  MFU {mfu}  peak {mem}  data wait "
                  f"{100 * v['data_wait_share']:4.1f} %  ({v['device']}, {v['precision']}, ZeRO-{v['zero']}, "
                  f"compile {v['compile']}, checkpointing {v['activation_checkpointing']})")
    if a.attention:
        r = bench_packed_attention(sft, a.preset, [int(x) for x in a.attention_seq_lens.split(",")],
                                   a.attention_tokens, a.attention_steps + 1, a.attention_reps,
                                   a.attention_kinds.split(","), config_overrides(a.model_set))
        out["packed_attention"] = r
        print(f"packed SFT rows, {a.preset}, trainer step (ZeRO-0), {a.attention_tokens} tokens per micro-batch, "
              f"{a.attention_reps} cold runs per kind, alternating:")
        for L, by_kind in r.items():
            base = by_kind[a.attention_kinds.split(",")[0]]
            for k, v in by_kind.items():
                print(f"  L={L:5d} x {v['rows']:2d} rows ({v['docs_per_row']:.0f} docs/row)  {k:5s} -> "
                      f"{v['resolved']:6s}  step {v['median_step_s'] * 1e3:8.0f} ms "
                      f"({base['median_step_s'] / v['median_step_s']:.2f}x vs {a.attention_kinds.split(',')[0]})"
                      f"  peak memory growth {v['median_peak_growth_mib']:7.0f} MiB")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
