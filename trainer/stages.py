"""The stage runner: resolve a stage's weights and data, train it, save, export, hand plain HF weights on.

Per stage, ``OUT/<stage>/`` holds::

    ckpt/step-N/, ckpt/latest      DeepSpeed checkpoints (temp tag, then rename; `latest` written atomically)
    hf/step-N/, hf/final/          HF exports (safetensors + tokenizer), temp folder then rename
    metrics.jsonl                  step, loss, lr, grad_norm, tokens_per_s, tokens_seen (+ val_loss); DPO adds
                                   pairs, dpo_accuracy, dpo_margin, dpo_reward_chosen/rejected, dpo_logp_*, ...
    loss.png                       the loss curve
    stage.json                     status, parent weights and their digest, steps, world size; ``handoff`` (the
                                   hf/ folder later stages start from) and, with ``select:``, why that one
    eval/step-N/                   with ``eval:``: `shardsmith eval`'s results.json + items.jsonl (step 0 = start)
    eval/sweep.md, sweep.png       step x benchmark/domain table and plot; eval/selection.json: the champion rule

Test hooks (environment): ``SHARDSMITH_TRAIN_STEP_DELAY`` (seconds slept after each step, to make a kill land
mid-run) and ``SHARDSMITH_TRAIN_DEBUG_DIR`` (each rank writes the rows it read and its final weights digest).
"""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path

from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.train_recipe import IMPLEMENTED_OBJECTIVES, StageSpec, TrainRecipe


class StageError(ValueError):
    """A stage cannot run (bad input); a ValueError so the CLI prints it as one line."""


def _log(rank: int, msg: str) -> None:
    if rank == 0:
        print(f"[shardsmith.train] {msg}", flush=True)


def stage_output(out: Path, name: str, pick: str | None = None) -> Path:
    """The HF folder a stage hands on: ``hf/<pick>`` when named, else its handoff from ``stage.json``
    (``hf/merged`` after a merge step, ``hf/final`` otherwise)."""
    if pick:
        return out / name / "hf" / pick
    info = out / name / "stage.json"
    handoff = json.loads(info.read_text()).get("handoff", "final") if info.is_file() else "final"
    return out / name / "hf" / handoff


def merge_partner(recipe: TrainRecipe, index: int, out: Path, parent: Path | None) -> Path | None:
    """The folder a stage's ``merge.toward`` names (None without a merge step); raises when it does not exist."""
    spec = recipe.stages[index].merge
    if spec is None:
        return None
    toward = spec.toward
    if toward == "parent":
        folder = parent
    elif toward.startswith("stage:"):
        name, _, pick = toward[len("stage:"):].partition("/")
        folder = stage_output(out, name, pick or None)
    else:
        folder = Path(toward)
    if folder is None or not (folder / "config.json").is_file():
        raise StageError(f"stages.{recipe.stages[index].name}.merge.toward: '{toward}' is not an HF model folder"
                         + (f" ({folder})" if folder else ""))
    return folder


def init_source(recipe: TrainRecipe, index: int, out: Path) -> tuple[str, Path | None]:
    """('scratch', None) or ('hf', folder) for stage ``index``; raises when the source does not exist."""
    stage = recipe.stages[index]
    src = stage.init_from or ("scratch" if index == 0 else "previous")
    where = f"stages.{stage.name}.init_from"
    if src == "scratch":
        return "scratch", None
    if src == "previous":
        prev = recipe.stages[index - 1].name
        folder = stage_output(out, prev)
        if not (folder / "config.json").is_file():
            raise StageError(
                f"{where}: 'previous' means {folder}, which does not exist (has stage '{prev}' finished? "
                f"run it first or without --stage)"
            )
        return "hf", folder
    if src.startswith("stage:"):
        ref = src[len("stage:"):]
        name, _, pick = ref.partition("/")
        folder = stage_output(out, name, pick or None)
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
    from shardsmith.trainer.data import open_sets
    from shardsmith.trainer.objectives import preflight_objective

    for s in recipe.stages:
        if s.name not in names:
            continue
        if s.objective not in IMPLEMENTED_OBJECTIVES:
            raise StageError(
                f"stages.{s.name}.objective: '{s.objective}' is not implemented yet "
                f"(implemented: {', '.join(IMPLEMENTED_OBJECTIVES)})"
            )
        try:
            preflight_objective(s, open_sets([d.path for d in s.data.sets], "train"))
        except (ValueError, FileNotFoundError) as err:
            raise StageError(f"stages.{s.name}.data: {err}") from None
        src = s.init_from or ""
        i = [x.name for x in recipe.stages].index(s.name)
        if out is not None and (src == "previous" or src.startswith("stage:") or (not src and i > 0)):
            ref = recipe.stages[i - 1].name if not src.startswith("stage:") else src[6:].split("/")[0]
            if ref not in names:  # produced by an earlier run, not by this one: must exist now
                init_source(recipe, i, out)
        toward = s.merge.toward if s.merge else "parent"
        if toward != "parent" and not toward.startswith("stage:") and not (Path(toward) / "config.json").is_file():
            raise StageError(f"stages.{s.name}.merge.toward: '{toward}' is not an HF model folder (no config.json there)")
        if src and src not in ("scratch", "previous") and not src.startswith("stage:"):
            if not (Path(src) / "config.json").is_file():
                raise StageError(f"stages.{s.name}.init_from: '{src}' is not an HF model folder (no config.json there)")
        if s.eval is not None:
            check_eval_files(s)


def check_eval_files(stage: StageSpec) -> None:
    """An ``eval:`` section's benchmark files exist (the split scored, and the few-shot split when shots > 0), so a
    missing file fails at recipe check time, not after the first checkpoint. Layout: EVAL_BENCHMARK_FILES."""
    from shardsmith.schemas.train_recipe import EVAL_BENCHMARK_FILES, EVAL_FEWSHOT_SPLIT

    spec, where = stage.eval, f"stages.{stage.name}.eval"
    root = spec.data or os.environ.get("SHARDSMITH_BENCHMARKS")
    if not root:
        raise StageError(f"{where}.data: no benchmark folder: set data or $SHARDSMITH_BENCHMARKS "
                         "(a folder holding mcq_mmlu/, ...)")
    if not Path(root).is_dir():
        raise StageError(f"{where}.data: benchmark folder {root} does not exist")
    for name in spec.benchmarks:
        folder, splits, default = EVAL_BENCHMARK_FILES[name]
        needed = [spec.split or default] + ([EVAL_FEWSHOT_SPLIT[name]] if spec.shots and name in EVAL_FEWSHOT_SPLIT
                                            else [])
        for split in needed:
            path = Path(root) / folder / splits[split]
            if not path.exists():
                raise StageError(f"{where}: {name} split '{split}' needs {path}, which does not exist")


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


def _open_data(stage: StageSpec, seed: int, rank: int, world: int):
    """The stage's shard sets, opened first so that a bad set fails before a model is built."""
    from shardsmith.trainer.data import StageData

    return StageData(
        [d.path for d in stage.data.sets], [d.weight for d in stage.data.sets], seq_len=stage.seq_len, seed=seed,
        sampling=stage.sampling, packing=stage.packing, document_masking=stage.document_masking,
        micro=stage.micro_batch_size, accum=stage.grad_accum, rank=rank, world=world,
        val_split=stage.data.validation_split, val_rows=stage.data.val_rows, objective=stage.objective,
    )


def _build_model(recipe: TrainRecipe, index: int, out: Path, manifest: ShardManifest, shard0: Path):
    """(model, parent, parent folder or None): a new model for ``init_from: scratch``, else the parent's HF folder;
    checks the context."""
    from shardsmith.trainer.models import build_config, load_model, new_model

    stage = recipe.stages[index]
    kind, folder = init_source(recipe, index, out)
    if kind == "scratch":
        m = recipe.model
        config = build_config(m.preset, m.path, m.config, manifest, m.pad_vocab_to_multiple_of,
                              m.attn_implementation)
        model, parent = new_model(config, stage.seed if stage.seed is not None else recipe.seed), \
            f"scratch:{m.preset or m.path}"
    else:
        model, parent = load_model(folder, shard0, manifest, recipe.model.attn_implementation), str(folder)
    pos_limit = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
    if pos_limit and stage.seq_len > pos_limit:
        raise StageError(f"stages.{stage.name}.seq_len {stage.seq_len} exceeds the model's context {pos_limit}")
    return model, parent, folder


def _resume_point(eng, sdir: Path, resume: bool, rank: int, world: int) -> tuple[int, int]:
    """(start step, tokens seen): from the latest checkpoint on ``--resume`` (metrics cut back to it), else (0, 0)."""
    from shardsmith.trainer import engine as E

    ckpt_dir, metrics = sdir / "ckpt", sdir / "metrics.jsonl"
    if resume and E.latest_tag(ckpt_dir):
        client = eng.load(ckpt_dir)
        start, tokens_seen = int(client.get("step", 0)), int(client.get("tokens_seen", 0))
        if client.get("world") not in (None, world):
            raise StageError(f"{ckpt_dir}: saved with {client.get('world')} processes, resumed with {world}")
        _log(rank, f"{sdir.name}: resumed from {ckpt_dir}/{E.latest_tag(ckpt_dir)} at step {start}")
        if rank == 0:
            _truncate_metrics(metrics, start)
        return start, tokens_seen
    if rank == 0 and metrics.exists():
        metrics.unlink()
    return 0, 0


def _export_dtype(stage: StageSpec, precision: str) -> str:
    if stage.export_dtype != "auto":
        return stage.export_dtype
    return "bf16" if precision == "bf16" else "fp16" if precision == "fp16" else "fp32"


def default_hooks(stage: StageSpec, lr_at_start: float, merge_partner: Path | None = None) -> list:
    """The hooks every stage runs, in order (see ``trainer/hooks.py``), then the test hooks the environment asks for."""
    from shardsmith.trainer import hooks as H

    trace, delay = H.env_test_hooks()
    return [
        *trace,
        H.TrainMetrics(stage.log_every),
        H.Validation(stage.eval_every, lr_at_start),
        H.MetricsWriter(stage.log_every),
        H.Checkpoints(stage.save_every, stage.keep_checkpoints),
        *([H.BenchmarkSweep(stage.eval, stage.select, stage.save_every, f"stages.{stage.name}.eval")]
          if stage.eval else []),
        *([H.MergeStep(stage.merge, merge_partner)] if stage.merge else []),
        H.StageRecord(plot_metrics),
        *delay,
    ]


def train_loop(run, hooks: list, lr_for) -> None:
    """Train steps ``run.start .. run.stop-1``; hooks do everything else. ``dt`` is the time to draw and train a step."""
    from shardsmith.trainer.hooks import StepEnd

    for h in hooks:
        h.on_start(run)
    for step in range(run.start, run.stop):
        t0 = time.perf_counter()
        batches = run.data.step_batches(step)
        for h in hooks:
            h.before_step(run, step, batches)
        lr = lr_for(step)
        stats = run.eng.train_step(batches, step, lr, run.rank, run.world)
        run.tokens_seen += stats["tokens"]
        end = StepEnd(done=step + 1, lr=lr, stats=stats, dt=time.perf_counter() - t0)
        for h in hooks:
            h.after_step(run, end)
    for h in hooks:
        h.on_end(run)


def run_stage(recipe: TrainRecipe, index: int, out: Path, resume: bool) -> dict:
    """Train stage ``index`` of ``recipe`` into ``out/<stage>/`` (see the module docstring); returns ``stage.json``."""
    from shardsmith.trainer import engine as E
    from shardsmith.trainer.export import export_hf, weights_digest
    from shardsmith.trainer.hooks import StageRun, atomic_json, now_iso
    from shardsmith.trainer.schedules import lr_at

    stage: StageSpec = recipe.stages[index]
    rank, world, _ = E.init_distributed()
    sdir = out / stage.name
    seed = stage.seed if stage.seed is not None else recipe.seed
    spec = stage.engine or recipe.engine
    stage = E.fit_global_batch(stage, spec, world)
    if not resume and (E.latest_tag(sdir / "ckpt") or (sdir / "metrics.jsonl").is_file()
                       or (sdir / "hf" / "final").exists()):
        raise StageError(f"{sdir} already holds a run; pass --resume to continue it, or use another --out")
    E.barrier()
    if rank == 0:
        sdir.mkdir(parents=True, exist_ok=True)

    data = _open_data(stage, seed, rank, world)
    shard0, manifest = Path(stage.data.sets[0].path), data.manifest
    model, parent, parent_folder = _build_model(recipe, index, out, manifest, shard0)
    partner = merge_partner(recipe, index, out, parent_folder)
    init_digest = weights_digest(model.state_dict())
    loaded_digest = getattr(model, "_shardsmith_loaded_digest", init_digest)  # = the parent's weights, pre-resize
    total = stage.max_steps or data.steps_for_epochs(stage.epochs)
    stop = min(stage.stop_at_step or total, total)
    eng = E.Engine(model, stage, spec, seed)
    export_dtype = _export_dtype(stage, eng.precision)
    start, tokens_seen = _resume_point(eng, sdir, resume, rank, world)

    def export(tag: str) -> str | None:
        model, sd = eng.export_state()  # LoRA: merged weights; the adapter alone goes to hf/<tag>-adapter
        digest = None
        if rank == 0:
            digest = export_hf(model, sd, sdir / "hf" / tag, shard0 / manifest.tokenizer.path, export_dtype,
                               manifest.tokenizer.eos_id)
            eng.save_adapter(sdir / "hf" / f"{tag}-adapter")
        E.barrier()
        return digest

    info = {
        "stage": stage.name, "status": "running", "objective": stage.objective, "parent": parent,
        "init_digest": init_digest, "loaded_digest": loaded_digest, "embeddings_resized": loaded_digest != init_digest,
        "vocab_rows": model.get_input_embeddings().num_embeddings, "total_steps": total, "stop_at_step": stop,
        "world_size": world, "precision": eng.precision, "zero_stage": spec.zero_stage,
        "rows_per_epoch": data.rows_per_epoch(), "global_batch_rows": data.G, "seq_len": stage.seq_len,
        "started_at": now_iso(), "deepspeed_config": eng.config, "data": [d.model_dump() for d in stage.data.sets],
        "truncated_documents": getattr(data.sampler, "truncated", 0),
        "pairs_too_long": getattr(data.sampler, "too_long", None),
    }
    run = StageRun(name=stage.name, title=f"{recipe.name} / {stage.name}", rank=rank, world=world, eng=eng, data=data,
                   sdir=sdir, total=total, stop=stop, start=start, tokens_seen=tokens_seen, info=info, export=export,
                   log=lambda msg: _log(rank, msg))
    if rank == 0:
        atomic_json(sdir / "stage.json", info)
    _log(rank, f"{stage.name}: {stage.objective}, {total} steps (stop at {stop}), world {world}, "
               f"global batch {data.G} x {stage.seq_len}, {eng.precision}, ZeRO-{spec.zero_stage}, from {parent}")
    if getattr(data.sampler, "too_long", 0):
        _log(rank, f"{stage.name}: {data.sampler.too_long} pairs skipped: their prompt fills seq_len {stage.seq_len}")

    def lr_for(step: int) -> float:
        return lr_at(step, total, stage.optimizer.lr, stage.schedule)

    train_loop(run, default_hooks(stage, lr_for(0), partner), lr_for)
    E.barrier()
    return info


def release_memory() -> None:
    """After a stage: the engine is out of scope; return its memory before the next stage builds one."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def stage_done(out: Path, name: str) -> bool:
    p = out / name / "stage.json"
    return p.is_file() and json.loads(p.read_text()).get("status") == "done" and stage_output(out, name).is_dir()
