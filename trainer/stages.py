"""The stage runner: resolve a stage's weights and data, train it, save, export, hand plain HF weights on.

Per stage, ``OUT/<stage>/`` holds::

    ckpt/step-N/, ckpt/latest      DeepSpeed checkpoints (temp tag, then rename; `latest` written atomically)
    hf/step-N/, hf/final/          HF exports (safetensors + tokenizer), temp folder then rename
    metrics.jsonl                  step, loss, lr, grad_norm, tokens_per_s, tokens_seen (+ val_loss); DPO adds
                                   pairs, dpo_accuracy, dpo_margin, dpo_reward_chosen/rejected, dpo_logp_*, ...
    loss.png                       the loss curve
    stage.json                     status, parent weights and their digest, steps, world size

Test hooks (environment): ``SHARDSMITH_TRAIN_STEP_DELAY`` (seconds slept after each step, to make a kill land
mid-run) and ``SHARDSMITH_TRAIN_DEBUG_DIR`` (each rank writes the rows it read and its final weights digest).
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import time
from pathlib import Path

from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.train_recipe import IMPLEMENTED_OBJECTIVES, StageSpec, TrainRecipe


class StageError(ValueError):
    """A stage cannot run (bad input); a ValueError so the CLI prints it as one line."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _log(rank: int, msg: str) -> None:
    if rank == 0:
        print(f"[shardsmith.train] {msg}", flush=True)


def init_source(recipe: TrainRecipe, index: int, out: Path) -> tuple[str, Path | None]:
    """('scratch', None) or ('hf', folder) for stage ``index``; raises when the source does not exist."""
    stage = recipe.stages[index]
    src = stage.init_from or ("scratch" if index == 0 else "previous")
    where = f"stages.{stage.name}.init_from"
    if src == "scratch":
        return "scratch", None
    if src == "previous":
        prev = recipe.stages[index - 1].name
        folder = out / prev / "hf" / "final"
        if not (folder / "config.json").is_file():
            raise StageError(
                f"{where}: 'previous' means {folder}, which does not exist (has stage '{prev}' finished? "
                f"run it first or without --stage)"
            )
        return "hf", folder
    if src.startswith("stage:"):
        ref = src[len("stage:"):]
        name, _, pick = ref.partition("/")
        folder = out / name / "hf" / (pick or "final")
        if not (folder / "config.json").is_file():
            raise StageError(f"{where}: '{src}' means {folder}, which does not exist")
        return "hf", folder
    folder = Path(src)
    if not (folder / "config.json").is_file():
        raise StageError(f"{where}: '{src}' is not an HF model folder (no config.json there)")
    return "hf", folder


def preflight(recipe: TrainRecipe, names: list[str], out: Path | None = None) -> None:
    """Fail before any work: every stage's shard sets open and their files exist, objectives are implemented, an
    ``init_from`` folder exists, and a stage run alone finds the earlier stage's export it starts from."""
    from shardsmith.trainer.data import check_objective, open_sets

    for s in recipe.stages:
        if s.name not in names:
            continue
        if s.objective not in IMPLEMENTED_OBJECTIVES:
            raise StageError(
                f"stages.{s.name}.objective: '{s.objective}' is not implemented yet "
                f"(implemented: {', '.join(IMPLEMENTED_OBJECTIVES)})"
            )
        try:
            check_objective(open_sets([d.path for d in s.data.sets], "train"), s.objective)
        except (ValueError, FileNotFoundError) as err:
            raise StageError(f"stages.{s.name}.data: {err}") from None
        src = s.init_from or ""
        i = [x.name for x in recipe.stages].index(s.name)
        if out is not None and (src == "previous" or src.startswith("stage:") or (not src and i > 0)):
            ref = recipe.stages[i - 1].name if not src.startswith("stage:") else src[6:].split("/")[0]
            if ref not in names:  # produced by an earlier run, not by this one: must exist now
                init_source(recipe, i, out)
        if src and src not in ("scratch", "previous") and not src.startswith("stage:"):
            if not (Path(src) / "config.json").is_file():
                raise StageError(f"stages.{s.name}.init_from: '{src}' is not an HF model folder (no config.json there)")


def _truncate_metrics(path: Path, step: int) -> None:
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(k + "\n" for k in keep))
    os.replace(tmp, path)


def plot_metrics(metrics: Path, png: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # plotting is a convenience; never fail a run on it
        return
    rows = [json.loads(ln) for ln in metrics.read_text().splitlines() if ln.strip()] if metrics.is_file() else []
    tr = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None]
    va = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    if tr:
        ax.plot(*zip(*tr), label="train loss", lw=1)
    if va:
        ax.plot(*zip(*va), "o-", label="val loss", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    tmp = png.with_name(".tmp-" + png.name)
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, png)


def run_stage(recipe: TrainRecipe, index: int, out: Path, resume: bool) -> dict:

    from shardsmith.trainer import engine as E
    from shardsmith.trainer.data import StageData
    from shardsmith.trainer.export import export_hf, weights_digest
    from shardsmith.trainer.models import build_config, load_model, new_model
    from shardsmith.trainer.schedules import lr_at

    stage: StageSpec = recipe.stages[index]
    rank, world, _ = E.init_distributed()
    sdir = out / stage.name
    ckpt_dir, hf_dir, metrics = sdir / "ckpt", sdir / "hf", sdir / "metrics.jsonl"
    info_path = sdir / "stage.json"
    seed = stage.seed if stage.seed is not None else recipe.seed
    spec = stage.engine or recipe.engine

    if not resume and (E.latest_tag(ckpt_dir) or metrics.is_file() or (hf_dir / "final").exists()):
        raise StageError(f"{sdir} already holds a run; pass --resume to continue it, or use another --out")
    E.barrier()
    if rank == 0:
        sdir.mkdir(parents=True, exist_ok=True)

    # data first: bad shard sets fail before a model is built
    weights = [d.weight for d in stage.data.sets]
    data = StageData(
        [d.path for d in stage.data.sets], weights, seq_len=stage.seq_len, seed=seed, sampling=stage.sampling,
        packing=stage.packing, document_masking=stage.document_masking, micro=stage.micro_batch_size,
        accum=stage.grad_accum, rank=rank, world=world, val_split=stage.data.validation_split,
        val_rows=stage.data.val_rows, objective=stage.objective,
    )
    shard0 = Path(stage.data.sets[0].path)
    manifest: ShardManifest = data.manifest

    kind, folder = init_source(recipe, index, out)
    if kind == "scratch":
        m = recipe.model
        config = build_config(m.preset, m.path, m.config, manifest, m.pad_vocab_to_multiple_of,
                              m.attn_implementation)
        model = new_model(config, seed)
        parent = f"scratch:{m.preset or m.path}"
    else:
        model = load_model(folder, shard0, manifest, recipe.model.attn_implementation)
        parent = str(folder)
    pos_limit = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    if pos_limit and stage.seq_len > pos_limit:
        raise StageError(f"stages.{stage.name}.seq_len {stage.seq_len} exceeds the model's context {pos_limit}")
    init_digest = weights_digest(model.state_dict())
    loaded_digest = getattr(model, "_shardsmith_loaded_digest", init_digest)  # = the parent's weights, pre-resize
    resized = loaded_digest != init_digest

    total = stage.max_steps or data.steps_for_epochs(stage.epochs)
    stop = min(stage.stop_at_step or total, total)
    eng = E.Engine(model, stage, spec, seed)
    precision = eng.precision
    export_dtype = stage.export_dtype if stage.export_dtype != "auto" else ("bf16" if precision == "bf16" else
                                                                             "fp16" if precision == "fp16" else "fp32")
    start, tokens_seen = 0, 0
    if resume and E.latest_tag(ckpt_dir):
        client = eng.load(ckpt_dir)
        start, tokens_seen = int(client.get("step", 0)), int(client.get("tokens_seen", 0))
        if client.get("world") not in (None, world):
            raise StageError(f"{ckpt_dir}: saved with {client.get('world')} processes, resumed with {world}")
        _log(rank, f"{stage.name}: resumed from {ckpt_dir}/{E.latest_tag(ckpt_dir)} at step {start}")
        if rank == 0:
            _truncate_metrics(metrics, start)
    elif rank == 0 and metrics.exists():
        metrics.unlink()

    info = {
        "stage": stage.name, "status": "running", "objective": stage.objective, "parent": parent,
        "init_digest": init_digest, "loaded_digest": loaded_digest, "embeddings_resized": resized,
        "vocab_rows": model.get_input_embeddings().num_embeddings, "total_steps": total, "stop_at_step": stop, "world_size": world,
        "precision": precision, "zero_stage": spec.zero_stage, "rows_per_epoch": data.rows_per_epoch(),
        "global_batch_rows": data.G, "seq_len": stage.seq_len, "started_at": _now(),
        "deepspeed_config": eng.config, "data": [d.model_dump() for d in stage.data.sets],
        "truncated_documents": getattr(data.sampler, "truncated", 0),
        "pairs_too_long": getattr(data.sampler, "too_long", None),
    }
    if rank == 0:
        _atomic_json(info_path, info)
    _log(rank, f"{stage.name}: {stage.objective}, {total} steps (stop at {stop}), world {world}, "
               f"global batch {data.G} x {stage.seq_len}, {precision}, ZeRO-{spec.zero_stage}, from {parent}")

    if getattr(data.sampler, "too_long", 0):
        _log(rank, f"{stage.name}: {data.sampler.too_long} pairs skipped: their prompt fills seq_len {stage.seq_len}")
    debug = os.environ.get("SHARDSMITH_TRAIN_DEBUG_DIR")
    delay = float(os.environ.get("SHARDSMITH_TRAIN_STEP_DELAY", "0") or 0)
    dbg_rows = open(Path(debug) / f"{stage.name}.rank{rank}.jsonl", "a") if debug else None

    def log_row(row: dict) -> None:
        if rank == 0:
            with open(metrics, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    def export(tag: str) -> str | None:
        sd = eng.state_dict_for_export()
        digest = None
        if rank == 0:
            digest = export_hf(eng.model, sd, hf_dir / tag, shard0 / manifest.tokenizer.path, export_dtype,
                               manifest.tokenizer.eos_id)
        E.barrier()
        return digest

    val_batches = data.validation_batches()
    if start == 0 and val_batches:
        log_row({"step": 0, **eng.evaluate_stats(val_batches), "tokens_seen": 0,
                 "lr": lr_at(0, total, stage.optimizer.lr, stage.schedule)})
    t_last = time.perf_counter()
    for step in range(start, stop):
        batches = data.step_batches(step)
        if dbg_rows:
            dbg_rows.write(json.dumps({"step": step, "keys": [b.keys for b in batches]}) + "\n")
        lr = lr_at(step, total, stage.optimizer.lr, stage.schedule)
        stats = eng.train_step(batches, step, lr, rank, world)
        done = step + 1
        tokens_seen += stats["tokens"]
        now = time.perf_counter()
        dt, t_last = now - t_last, now
        row = None
        if done % stage.log_every == 0 or done == stop:
            row = {"step": done, "loss": stats["loss"], "lr": lr, "grad_norm": stats["grad_norm"],
                   "tokens_per_s": stats["tokens"] / dt if dt > 0 else None, "tokens_seen": tokens_seen,
                   "loss_tokens": stats["loss_tokens"], "step_time_s": dt,
                   **{k: v for k, v in stats.items() if k.startswith("dpo_") or k == "pairs"}}
        if stage.eval_every and (done % stage.eval_every == 0 or done == stop) and val_batches:
            row = row or {"step": done, "tokens_seen": tokens_seen, "lr": lr}
            row.update(eng.evaluate_stats(val_batches))
        if row:
            log_row(row)
            if rank == 0 and (done % max(stage.log_every * 10, 1) == 0 or done == stop):
                _log(rank, f"{stage.name} step {done}/{stop} loss {stats['loss']:.4f}"
                           + (f" acc {stats['dpo_accuracy']:.3f} margin {stats['dpo_margin']:.3f}"
                              if "dpo_accuracy" in stats else "")
                           + (f" val {row['val_loss']:.4f}" if row.get("val_loss") is not None else ""))
        if stage.save_every and done % stage.save_every == 0 and done < stop:
            eng.save(ckpt_dir, done, {"step": done, "tokens_seen": tokens_seen, "world": world},
                     stage.keep_checkpoints)
            export(f"step-{done}")
        if delay:
            time.sleep(delay)
        t_last = time.perf_counter() if delay else t_last

    final_digest = export("final")
    if stage.save_every and stop % stage.save_every == 0:
        export(f"step-{stop}")
    if debug:
        dbg_rows.close()
        Path(debug, f"{stage.name}.rank{rank}.digest").write_text(weights_digest(eng.model.state_dict()))
    if rank == 0:
        plot_metrics(metrics, sdir / "loss.png", f"{recipe.name} / {stage.name}")
        info.update(status="done", finished_at=_now(), final_digest=final_digest, steps_done=stop,
                    tokens_seen=tokens_seen)
        _atomic_json(info_path, info)
    E.barrier()
    return info


def release_memory() -> None:
    """After a stage: the engine is out of scope; return its memory before the next stage builds one."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _atomic_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def stage_done(out: Path, name: str) -> bool:
    p = out / name / "stage.json"
    return p.is_file() and json.loads(p.read_text()).get("status") == "done" and (out / name / "hf" / "final").is_dir()
