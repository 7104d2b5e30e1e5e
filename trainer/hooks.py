"""Stage hooks: what happens around the training step (metrics, validation, checkpoints, export, the stage record).

The stage loop (``stages.train_loop``) only draws batches and calls ``Engine.train_step``; everything else is a hook
(OLMo-core's callbacks beside a short loop). A hook sees the run through ``StageRun`` and may implement any of

    on_start(run)                  once, after the engine is built and a resume is loaded
    before_step(run, step, batches)  before step ``step`` (0-based) trains
    after_step(run, end)           after it trained; ``end.row`` collects the metrics row of this step
    on_end(run)                    once, after the last step

Hooks run in list order (``default_hooks``), so a later hook sees what an earlier one wrote: the metrics writer comes
after the hooks that fill ``end.row``; the stage record comes after the export that sets ``run.final_digest``.
A new concern (benchmark evaluation, a merge step) is one more hook in that list.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class StageRun:
    """The state a stage's hooks share. ``export(tag)`` writes ``hf/<tag>`` (rank 0) and returns its digest."""

    name: str
    title: str
    rank: int
    world: int
    eng: Any
    data: Any
    sdir: Path
    total: int
    stop: int
    start: int
    tokens_seen: int
    info: dict
    export: Any
    log: Any
    final_digest: str | None = None
    handoff: str = "final"  # the hf/<tag> the stage hands on: a sweep's champion, then a merge's blend

    @property
    def ckpt_dir(self) -> Path:
        return self.sdir / "ckpt"

    @property
    def metrics(self) -> Path:
        return self.sdir / "metrics.jsonl"


@dataclass
class StepEnd:
    """One trained step: ``done`` = steps finished, ``stats`` from ``Engine.train_step``, ``dt`` its wall time."""

    done: int
    lr: float
    stats: dict
    dt: float
    row: dict | None = None

    def row_or_new(self, run: StageRun) -> dict:
        if self.row is None:
            self.row = {"step": self.done, "tokens_seen": run.tokens_seen, "lr": self.lr}
        return self.row


class StageHook:
    """No-op base: a hook overrides only the moments it cares about."""

    def on_start(self, run: StageRun) -> None:
        pass

    def before_step(self, run: StageRun, step: int, batches) -> None:
        pass

    def after_step(self, run: StageRun, end: StepEnd) -> None:
        pass

    def on_end(self, run: StageRun) -> None:
        pass


def append_row(run: StageRun, row: dict) -> None:
    if run.rank == 0:
        with open(run.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


class TrainMetrics(StageHook):
    """Every ``log_every`` steps (and the last): loss, lr, grad norm, throughput, DPO statistics."""

    def __init__(self, log_every: int):
        self.log_every = log_every

    def after_step(self, run: StageRun, end: StepEnd) -> None:
        if end.done % self.log_every and end.done != run.stop:
            return
        s = end.stats
        end.row = {"step": end.done, "loss": s["loss"], "lr": end.lr, "grad_norm": s["grad_norm"],
                   "tokens_per_s": s["tokens"] / end.dt if end.dt > 0 else None, "tokens_seen": run.tokens_seen,
                   "loss_tokens": s["loss_tokens"], "step_time_s": end.dt,
                   **{k: v for k, v in s.items() if k not in ("loss", "loss_tokens", "tokens", "grad_norm")}}


class Validation(StageHook):
    """Held-out loss (and DPO statistics) at step 0 of a fresh run and every ``eval_every`` steps (and the last)."""

    def __init__(self, eval_every: int | None, lr_at_start: float):
        self.eval_every, self.lr_at_start = eval_every, lr_at_start
        self.batches = None

    def on_start(self, run: StageRun) -> None:
        self.batches = run.data.validation_batches()
        if run.start == 0 and self.batches:
            append_row(run, {"step": 0, **run.eng.evaluate_stats(self.batches), "tokens_seen": 0,
                             "lr": self.lr_at_start})

    def after_step(self, run: StageRun, end: StepEnd) -> None:
        due = self.eval_every and (end.done % self.eval_every == 0 or end.done == run.stop)
        if due and self.batches:
            end.row_or_new(run).update(run.eng.evaluate_stats(self.batches))


class MetricsWriter(StageHook):
    """Appends the step's row to ``metrics.jsonl`` and prints a progress line every ten log rows."""

    def __init__(self, log_every: int):
        self.log_every = log_every

    def after_step(self, run: StageRun, end: StepEnd) -> None:
        if not end.row:
            return
        append_row(run, end.row)
        if run.rank == 0 and (end.done % max(self.log_every * 10, 1) == 0 or end.done == run.stop):
            s, row = end.stats, end.row
            run.log(f"{run.name} step {end.done}/{run.stop} loss {s['loss']:.4f}"
                    + (f" acc {s['dpo_accuracy']:.3f} margin {s['dpo_margin']:.3f}" if "dpo_accuracy" in s else "")
                    + (f" val {row['val_loss']:.4f}" if row.get("val_loss") is not None else ""))


class Checkpoints(StageHook):
    """Every ``save_every`` steps before the last: a DeepSpeed checkpoint (resume point) and an ``hf/step-N`` export.
    At the end: ``hf/final`` (its digest becomes ``run.final_digest``) and ``hf/step-<stop>`` when the cadence hits it."""

    def __init__(self, save_every: int | None, keep: int | None):
        self.save_every, self.keep = save_every, keep

    def after_step(self, run: StageRun, end: StepEnd) -> None:
        if self.save_every and end.done % self.save_every == 0 and end.done < run.stop:
            run.eng.save(run.ckpt_dir, end.done,
                         {"step": end.done, "tokens_seen": run.tokens_seen, "world": run.world}, self.keep)
            run.export(f"step-{end.done}")

    def on_end(self, run: StageRun) -> None:
        run.final_digest = run.export("final")
        if self.save_every and run.stop % self.save_every == 0:
            run.export(f"step-{run.stop}")


class MergeStep(StageHook):
    """After the final export (and a sweep's selection): ``hf/merged`` = merge(the stage's handoff so far, ``hf/final``
    or the sweep's champion, at t=0; ``partner`` at t=1) by the stage's ``merge`` spec; ``stage.json`` records the
    merge and names ``merged`` as the stage's handoff."""

    def __init__(self, spec, partner: Path):
        self.spec, self.partner = spec, partner

    def on_end(self, run: StageRun) -> None:
        if run.rank != 0:
            return
        from shardsmith.trainer.merge import merge_folders

        base = run.sdir / "hf" / run.handoff
        record = merge_folders(base, self.partner, self.spec.t, run.sdir / "hf" / "merged", self.spec.method,
                               log=run.log)
        run.handoff = "merged"
        run.info.update(handoff="merged", merge={**record, "base": f"hf/{base.name}"})
        run.log(f"{run.name}: hf/merged = {self.spec.method} t={self.spec.t} of hf/{base.name} toward {self.partner}")


class SweepError(ValueError):
    """A benchmark sweep cannot go on (the evaluator failed, the start weights are gone); one line."""


def eval_command(hf_dir: Path, out_dir: Path, spec) -> list[str]:
    """``python -m shardsmith.cli eval`` for one checkpoint: the trainer never imports evaluation/ (it imports
    builders/), so scoring runs the CLI in a child process and the sweep reads the files it writes."""
    import sys

    cmd = [sys.executable, "-m", "shardsmith.cli", "eval", str(hf_dir), "--bench", ",".join(spec.benchmarks),
           "--shots", str(spec.shots), "--out", str(out_dir), "--batch-size", str(spec.batch_size),
           "--dtype", spec.dtype]
    for flag, value in (("--data", spec.data), ("--split", spec.split), ("--limit", spec.limit)):
        if value is not None:
            cmd += [flag, str(value)]
    return cmd


def score_checkpoint(hf_dir: Path, out_dir: Path, spec, where: str) -> None:
    """Score ``hf_dir`` into ``out_dir`` (results.json, items.jsonl); an evaluation killed midway resumes there.
    A failure is one line naming the stage, the checkpoint and the evaluator's own error."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    proc = subprocess.run(eval_command(hf_dir, out_dir, spec), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        raise SweepError(f"{where}: shardsmith eval on {hf_dir} failed (exit {proc.returncode}): "
                         f"{lines[-1] if lines else 'no output'}")


class BenchmarkSweep(StageHook):
    """``eval:`` + ``select:``: the start weights (``hf/step-0``), every ``every`` steps (``hf/step-N``, exported here
    when the checkpoint cadence does not) and the last step (``hf/final``) are scored by ``shardsmith eval`` into
    ``eval/step-N/`` on rank 0 while the other ranks wait. At the end: ``eval/sweep.md``, ``eval/sweep.png``; with a
    rule, the champion (``trainer/selection.py``) becomes the stage's handoff and ``stage.json`` says which and why.
    Runs after ``Checkpoints`` (whose exports it scores) and before ``MergeStep`` (which blends the champion)."""

    def __init__(self, eval_spec, select_spec, save_every: int | None, where: str):
        self.spec, self.select, self.save_every, self.where = eval_spec, select_spec, save_every, where
        self.every = eval_spec.every or save_every

    def _score(self, run: StageRun, step: int, tag: str) -> None:
        """Rank 0 scores while the others wait; a failure there (the evaluator, a metric the rule names but the
        results lack) stops every rank with it instead of leaving them at a barrier."""
        from shardsmith.trainer import engine as E

        error = None
        if run.rank == 0:
            try:
                self._score_here(run, step, tag)
            except ValueError as err:
                error = err
        failed = E.all_sum([1.0 if error else 0.0])[0] if run.world > 1 else float(error is not None)
        if error is not None:
            raise error
        if failed:
            raise SweepError(f"{self.where}: scoring hf/{tag} failed on rank 0 (see its error)")

    def _score_here(self, run: StageRun, step: int, tag: str) -> None:
        folder = run.sdir / "eval" / f"step-{step}"
        if not self._complete(folder):
            t0 = time.perf_counter()
            score_checkpoint(run.sdir / "hf" / tag, folder, self.spec, self.where)
            run.log(f"{run.name}: scored hf/{tag} (step {step}) on {', '.join(self.spec.benchmarks)} in "
                    f"{time.perf_counter() - t0:.1f}s")
        if step == 0 and self.select is not None:
            from shardsmith.trainer.selection import check_metrics

            check_metrics(self.select, folder)

    def _complete(self, folder: Path) -> bool:
        """Already scored by an earlier (killed, resumed) run with every benchmark of the spec."""
        path = folder / "results.json"
        return path.is_file() and set(self.spec.benchmarks) <= set(json.loads(path.read_text())["benchmarks"])

    def on_start(self, run: StageRun) -> None:
        """Score the start; on ``--resume`` also every cadence step up to the resume point that a killed run had not
        scored yet (the resume step's export is redone from the loaded checkpoint when the kill came before it)."""
        if run.start == 0:
            run.export("step-0")
        elif not (run.sdir / "hf" / "step-0").is_dir():
            raise SweepError(f"{self.where}: {run.sdir / 'hf' / 'step-0'} (the start weights the guards compare "
                             "against) is missing; re-run the stage without --resume")
        for step in [0] + list(range(self.every, run.start + 1, self.every)):
            if step == run.start and step > 0 and not (run.sdir / "hf" / f"step-{step}").is_dir():
                run.export(f"step-{step}")
            self._score(run, step, f"step-{step}")

    def after_step(self, run: StageRun, end: StepEnd) -> None:
        if end.done % self.every or end.done >= run.stop:
            return
        if not (self.save_every and end.done % self.save_every == 0):  # Checkpoints did not export this step
            run.export(f"step-{end.done}")
        self._score(run, end.done, f"step-{end.done}")

    def on_end(self, run: StageRun) -> None:
        self._score(run, run.stop, "final")
        if run.rank != 0:
            return
        from shardsmith.trainer.selection import select_champion, write_sweep

        scored = self.scored(run)
        report = select_champion(self.select, scored) if self.select else None
        write_sweep(run.title, scored, report, run.sdir / "eval")
        if report is None:
            return
        champ = report["champion"]
        run.handoff = champ["tag"]
        run.info.update(handoff=champ["tag"], selection={
            "rule": self.select.model_dump(), "champion": champ, "comparisons": report["comparisons"],
            "candidates": [{k: r[k] for k in ("step", "tag", "value_pp", "metrics_pp", "passed", "eligible")}
                           | {"guards_failing": [f for g in r["guards"] for f in g["failing"]]}
                           for r in report["candidates"]],
            "report": "eval/selection.json"})
        run.log(f"{run.name}: champion hf/{champ['tag']} (step {champ['step']}): {champ['reason']}")

    def scored(self, run: StageRun) -> list:
        """The sweep's checkpoints in step order: the start, each cadence step before the last, the last."""
        from shardsmith.trainer.selection import Scored

        steps = [0] + list(range(self.every, run.stop, self.every)) + [run.stop]
        return [Scored(st, "step-0" if st == 0 else "final" if st == run.stop else f"step-{st}",
                       run.sdir / "eval" / f"step-{st}") for st in dict.fromkeys(steps)]


class StageRecord(StageHook):
    """At the end: the loss plot and ``stage.json`` marked ``done`` with the final digest (the stage wrote it as
    ``running`` before its first step). Written atomically, so a reader never sees half a file."""

    def __init__(self, plot):
        self.plot = plot

    def on_end(self, run: StageRun) -> None:
        if run.rank != 0:
            return
        self.plot(run.metrics, run.sdir / "loss.png", run.title)
        run.info.update(status="done", finished_at=now_iso(), final_digest=run.final_digest, steps_done=run.stop,
                        tokens_seen=run.tokens_seen)
        atomic_json(run.sdir / "stage.json", run.info)


class BatchTrace(StageHook):
    """Test hook (``SHARDSMITH_TRAIN_DEBUG_DIR``): each rank writes the row keys of every step before it trains and
    its final weights digest, so tests can check an exact resume and identical ranks."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.file = None

    def on_start(self, run: StageRun) -> None:
        self.file = open(self.folder / f"{run.name}.rank{run.rank}.jsonl", "a")

    def before_step(self, run: StageRun, step: int, batches) -> None:
        self.file.write(json.dumps({"step": step, "keys": [b.keys for b in batches]}) + "\n")

    def on_end(self, run: StageRun) -> None:
        from shardsmith.trainer.export import weights_digest

        self.file.close()
        (self.folder / f"{run.name}.rank{run.rank}.digest").write_text(weights_digest(run.eng.model.state_dict()))


class StepDelay(StageHook):
    """Test hook (``SHARDSMITH_TRAIN_STEP_DELAY``): sleep after each step so that a kill lands mid-run."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def after_step(self, run: StageRun, end: StepEnd) -> None:
        time.sleep(self.seconds)


def env_test_hooks() -> tuple[list[StageHook], list[StageHook]]:
    """([BatchTrace] or [], [StepDelay] or []) as the environment asks: the trace goes first (it records each step
    before it trains), the delay last (after the step's checkpoint, so a kill lands between steps' work)."""
    folder = os.environ.get("SHARDSMITH_TRAIN_DEBUG_DIR")
    delay = float(os.environ.get("SHARDSMITH_TRAIN_STEP_DELAY", "0") or 0)
    return ([BatchTrace(folder)] if folder else []), ([StepDelay(delay)] if delay else [])


def now_iso() -> str:
    import datetime as _dt

    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def atomic_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)
