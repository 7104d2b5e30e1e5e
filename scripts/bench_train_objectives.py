#!/usr/bin/env python
"""The trainer's KD and rank steps next to a bare PyTorch loop doing the same computation, measured in the same run.

For each objective, one model is trained through ``Engine.train_step`` (DeepSpeed, ZeRO-0, the objective object
from ``trainer/objectives.py``) and a second copy with the same initial weights by a hand-written loop: forward,
the loss written out inline, the same global normalisation (tokens or pairs of the step), backward, clipping at 1.0,
torch AdamW. KD: the loss tokens' rows of the student's logits, then of the teacher's (under no_grad), each taken
with ``index_select`` as the trainer takes them and each model's full (B, L, V) logits dropped once taken, then
alpha·T²·KL + (1 - alpha)·CE per loss token. Rank: length-normalised answer log-probs, -s_c + w·softplus(s_r - s_c)
per pair. Both read the same batches (the trainer's StageData rows, drawn once before timing). Steps alternate (bare
first on even steps, trainer first on odd ones) so both share the machine's noise; the first two steps of each are
dropped (cold start: allocator, lazy init); the overhead is the median over steps of trainer/bare - 1. Target: <= 5 %.

Shard sets are synthetic (random tokens in the real format, from ``scripts/bench_train.py``): a step's cost does not
depend on what the tokens say.

    python scripts/bench_train_objectives.py                    # CPU defaults, ~1-2 minutes
    python scripts/bench_train_objectives.py --preset small-gpt2 --seq-len 256 --micro 8 --steps 20
    python scripts/bench_train_objectives.py --attention auto   # KD with the trainer's default packed attention
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _bench_train():
    """scripts/bench_train.py's synthetic shard-set writers (one format writer, not a copy)."""
    spec = importlib.util.spec_from_file_location("bench_train", HERE / "bench_train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def stage(objective: str, L: int, micro: int, accum: int, attention: str = "dense", **settings):
    from shardsmith.schemas.train_recipe import EngineSpec, StageSpec

    st = StageSpec(name="bench", objective=objective, data={"sets": [{"path": "unused"}]}, seq_len=L,
                   micro_batch_size=micro, grad_accum=accum, max_steps=10**6,
                   optimizer={"lr": 1e-3, "weight_decay": 0.0, "grad_clip": 1.0}, **settings)
    return st, EngineSpec(zero_stage=0, precision="fp32", attention=attention)  # dense: the bare loop's mask


def tensors(b, dev):
    """A batch as the bare loop feeds it: ids, labels, positions and (packed rows) the block-causal mask."""
    import torch
    from shardsmith.trainer.engine import block_causal_mask

    ids, labels, pos = (torch.from_numpy(x).to(dev) for x in (b.input_ids, b.labels, b.position_ids))
    mask = None if b.segment_ids is None else block_causal_mask(torch.from_numpy(b.segment_ids).to(dev), torch.bool)
    return ids, labels, pos, mask


def kd_bare_loss(model, teacher, b, dev, T: float, alpha: float):
    """(summed KD loss of the micro-batch, its loss tokens)."""
    import torch
    import torch.nn.functional as tF

    ids, labels, pos, mask = tensors(b, dev)
    rows = (labels.reshape(-1) != -100).nonzero().squeeze(1)  # the loss tokens' flat positions
    s = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
    s = s.reshape(-1, s.shape[-1]).index_select(0, rows).float()  # the full logits go here, before the teacher runs
    with torch.no_grad():
        t = teacher(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
    t, y = t.reshape(-1, t.shape[-1]).index_select(0, rows).float(), labels.reshape(-1)[rows]
    log_q, log_p = tF.log_softmax(s / T, -1), tF.log_softmax(t / T, -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    ce = tF.cross_entropy(s, y, reduction="none")
    return (alpha * T * T * kl + (1 - alpha) * ce).sum(), len(rows)


def rank_bare_loss(model, b, dev, weight: float):
    """(summed rank loss of the micro-batch, its pairs)."""
    import torch.nn.functional as tF

    ids, labels, pos, _ = tensors(b, dev)
    logits = model(input_ids=ids, position_ids=pos, use_cache=False).logits
    keep = labels != -100
    lp = -tF.cross_entropy(logits.float().transpose(1, 2), labels.clamp(min=0), reduction="none")
    score = (lp * keep).sum(-1) / keep.sum(-1).clamp(min=1)
    n = b.pairs
    return (-score[:n] + weight * tF.softplus(score[n:] - score[:n])).sum(), n


def compare(name: str, eng, model, batches, loss_fn, units_fn, steps: int) -> dict:
    """Alternate a trainer step and a bare step per step; medians after two cold steps each."""
    import torch

    from shardsmith.trainer import engine as E

    opt = torch.optim.AdamW(E.param_groups(model, 0.0), lr=1e-3, betas=(0.9, 0.95))
    dev = E.device()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def bare(s):
        sync()
        t0 = time.perf_counter()
        f0 = minor_faults()
        bs = batches[s % len(batches)]
        total = sum(units_fn(b) for b in bs)
        for b in bs:
            loss, _ = loss_fn(model, b)
            (loss / total).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        return time.perf_counter() - t0, minor_faults() - f0

    def trainer(s):
        sync()
        t0 = time.perf_counter()
        f0 = minor_faults()
        eng.train_step(batches[s % len(batches)], s, 1e-3, 0, 1)
        sync()
        return time.perf_counter() - t0, minor_faults() - f0

    tb, te = [], []
    for s in range(steps + 2):
        if s % 2 == 0:
            tb.append(bare(s))
            te.append(trainer(s))
        else:
            te.append(trainer(s))
            tb.append(bare(s))
    tb, te = tb[2:], te[2:]
    return {"objective": name, "trainer_median_s": statistics.median(t for t, _ in te),
            "bare_median_s": statistics.median(t for t, _ in tb),
            "overhead": statistics.median([e / b for (e, _), (b, _) in zip(te, tb)]) - 1,
            "trainer_faults": statistics.median(f for _, f in te), "bare_faults": statistics.median(f for _, f in tb)}


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def minor_faults() -> int:
    """Minor page faults of this process so far: fresh pages the allocator maps in (zeroed by the kernel, counted as
    system time), the part of a step's cost that follows its peak memory rather than its arithmetic."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny-gpt2")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--micro", type=int, default=8)
    ap.add_argument("--accum", type=int, default=2)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--attention", default="dense", choices=("dense", "auto", "varlen"),
                    help="the trainer's engine.attention for KD's packed rows (the bare loop always uses the dense "
                         "block-causal mask)")
    args = ap.parse_args(argv)

    import torch
    from shardsmith.schemas.manifest import ShardManifest
    from shardsmith.trainer import engine as E
    from shardsmith.trainer.data import StageData
    from shardsmith.trainer.models import build_config, new_model

    torch.manual_seed(0)
    E.init_distributed()
    dev = E.device()
    bt = _bench_train()
    L, micro, accum = args.seq_len, args.micro, args.accum
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sft = bt.synthetic_set(tmp / "sft", 400_000, (L // 4, L), True, args.vocab, 1)
        pref = bt.synthetic_pairs(tmp / "pref", 512, (L // 8, L // 4), (L // 8, L // 3), args.vocab, 2)
        config = build_config(args.preset, None, {}, ShardManifest.load(sft), 1)

        # KD: the teacher is another init of the same architecture, saved as an HF folder
        teacher_dir = tmp / "teacher"
        new_model(config, 1).save_pretrained(teacher_dir)
        kd = {"teacher": str(teacher_dir), "temperature": 2.0, "alpha": 0.5}
        st, spec = stage("kd", L, micro, accum, args.attention, kd=kd)
        data = StageData([str(sft)], [1.0], seq_len=L, seed=0, sampling="epoch", packing=True, document_masking=True,
                         micro=micro, accum=accum, rank=0, world=1, objective="kd")
        batches = [data.step_batches(s) for s in range(args.steps + 2)]
        eng = E.Engine(new_model(config, 0), st, spec, 0)
        model = new_model(config, 0).to(dev)
        teacher = new_model(config, 1).to(dev).eval().requires_grad_(False)
        out.append(compare("kd", eng, model, batches,
                           lambda m, b: kd_bare_loss(m, teacher, b, dev, 2.0, 0.5), lambda b: b.loss_tokens,
                           args.steps))
        del eng, model, teacher

        st, spec = stage("rank", L, micro, accum, rank={"weight": 0.25})
        data = StageData([str(pref)], [1.0], seq_len=L, seed=0, sampling="epoch", packing=False,
                         document_masking=False, micro=micro, accum=accum, rank=0, world=1, objective="rank")
        batches = [data.step_batches(s) for s in range(args.steps + 2)]
        eng = E.Engine(new_model(config, 0), st, spec, 0)
        model = new_model(config, 0).to(dev)
        out.append(compare("rank", eng, model, batches, lambda m, b: rank_bare_loss(m, b, dev, 0.25),
                           lambda b: b.pairs, args.steps))

    print(f"\n{args.preset}, seq_len {L}, micro {micro} x accum {accum}, {args.steps} timed steps, {dev}, "
          f"torch threads {torch.get_num_threads()}, KD attention {args.attention} (bare: dense), peak RSS "
          f"{peak_rss_mib():.0f} MiB")
    print(f"{'objective':<10}{'trainer s/step':>16}{'bare s/step':>14}{'overhead':>10}{'page faults/step':>22}")
    for r in out:
        faults = f"{r['trainer_faults']:.0f} vs {r['bare_faults']:.0f}"
        print(f"{r['objective']:<10}{r['trainer_median_s']:>16.4f}{r['bare_median_s']:>14.4f}{r['overhead']:>+10.1%}"
              f"{faults:>22}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
