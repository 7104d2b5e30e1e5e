"""Every datatrove phase of a mix runs through one factory: the recipe's ``executor:`` picks a row of ``EXECUTORS``
(datatrove's Local-, Slurm- or RayPipelineExecutor) and ``PhaseRunner`` builds, runs and checks each phase with it.

The logging-folder contract is datatrove's own and the same for every kind: ``<logs>/<phase>/completions/NNNNN``
(a finished task; a re-run skips it), ``stats/NNNNN.json`` (read back by ``pipelines/stats.py``), ``logs/``.

Ordering. The mix driver decides between some phases from their results (filter counts before dedup, token counts
before the plan, ...). ``PhaseRunner.run`` submits a phase; ``PhaseRunner.wait`` is such a decision point: it
returns once every submitted phase has finished all its tasks, and raises (naming the phase and its logs) if one
did not. local and ray block in ``run`` (datatrove's ``run()`` returns when the tasks are done), so phases follow
one another in the driver's order. slurm does not block: each phase is an sbatch array submitted with
``--dependency=afterok:<ids>`` on the phases submitted since the last ``wait`` (inside ``parallel()``: on the ones
before it only), and ``wait`` polls the completion markers (``executor.poll_seconds``) while ``squeue`` still lists
the jobs. The driver (``shardsmith mix``) therefore stays in the foreground on the submitting node.

Ray never waits forever (datatrove's ``RayTaskManager`` does, on a placement group no node can hold): a local
cluster started here declares the CPUs and memory its tasks ask for, and before each phase ``_ray_check`` fails
it in one line when Ray cannot place one task (at once when no node is big enough; after
``executor.placement_timeout_s`` when a joined cluster stays full).

Written here rather than taken from datatrove: datatrove's ``depends=`` takes one executor, and the mix needs a phase
after several (dedup buckets after every source's signatures), plus a driver that waits for results.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from shardsmith.schemas.mix_recipe import ExecutorSpec


class PhaseError(RuntimeError):
    """A phase whose tasks did not all finish; the message names the phase and where its logs are."""


@dataclass
class Phase:
    """One datatrove pipeline run over ``tasks`` tasks; ``name`` is its logging dir below the build's logs root."""

    name: str
    pipeline: list
    tasks: int
    logging_dir: Path
    concurrency: int
    after: list[str] = field(default_factory=list)  # slurm job ids this phase waits for


@dataclass(frozen=True)
class ExecutorRow:
    """How one executor kind builds a phase's datatrove executor; ``blocking``: its ``run()`` returns when done."""

    build: Callable[[ExecutorSpec, Phase, str], object]
    blocking: bool
    start: Callable[[ExecutorSpec, int], Callable[[], None] | None] = lambda spec, workers: None
    # raises PhaseError (in bounded time) when the phase's tasks could never start; run before each phase
    check: Callable[[ExecutorSpec, Phase, object], None] = lambda spec, phase, executor: None


def _local(spec: ExecutorSpec, phase: Phase, job_name: str):
    from datatrove.executor import LocalPipelineExecutor

    return LocalPipelineExecutor(pipeline=phase.pipeline, tasks=phase.tasks,
                                 workers=min(phase.concurrency, phase.tasks), logging_dir=str(phase.logging_dir),
                                 skip_completed=True)


def _slurm(spec: ExecutorSpec, phase: Phase, job_name: str):
    from datatrove.executor import SlurmPipelineExecutor

    return SlurmPipelineExecutor(
        pipeline=phase.pipeline, tasks=phase.tasks, time=spec.time, partition=spec.partition,
        cpus_per_task=spec.cpus_per_task, mem_per_cpu_gb=spec.mem_per_cpu_gb, workers=spec.concurrency or -1,
        job_name=job_name, qos=spec.qos, env_command=spec.env_command, venv_path=spec.venv_path,
        sbatch_args=dict(spec.sbatch_args), max_array_size=spec.max_array_size,
        depends_job_id=":".join(phase.after) or None, logging_dir=str(phase.logging_dir), skip_completed=True,
    )


def _ray(spec: ExecutorSpec, phase: Phase, job_name: str):
    from datatrove.executor import RayPipelineExecutor

    return RayPipelineExecutor(
        pipeline=phase.pipeline, tasks=phase.tasks, workers=min(phase.concurrency, phase.tasks),
        logging_dir=str(phase.logging_dir), skip_completed=True, cpus_per_task=spec.cpus_per_task,
        mem_per_cpu_gb=spec.mem_per_cpu_gb, time=spec.task_timeout_s,
    )


GIB = 1024**3


def _start_ray(spec: ExecutorSpec, workers: int):
    """Join ``address`` or the cluster already initialised in this process, else start a local one; returns the
    shutdown for a cluster started here (None when joined).

    The local cluster declares exactly what ``max(workers, concurrency)`` tasks ask for: that many times
    ``cpus_per_task`` CPUs and ``cpus_per_task × mem_per_cpu_gb`` GiB of Ray's ``memory`` resource (``_memory``,
    ray.init's documented reservable-memory argument). Left to Ray, ``memory`` is ~70 % of the memory free at
    ``ray.init`` (``ray._private.resource_and_label_spec``): on a 2-core CI runner busy with other tests that was
    below one task's request, the placement group was infeasible and datatrove waited on it forever. Ray's
    ``memory`` is a scheduling quantity, not a limit, so declaring it takes nothing from the machine."""
    import os

    import ray

    if ray.is_initialized():
        return None
    if spec.address:
        ray.init(address=spec.address, log_to_driver=False)
        return None
    slots = max(workers, spec.concurrency or 0)
    # the local cluster's workers inherit this environment (PYTHONPATH, SHARDSMITH_* settings)
    ray.init(num_cpus=slots * spec.cpus_per_task, _memory=slots * spec.cpus_per_task * spec.mem_per_cpu_gb * GIB,
             include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {k: v for k, v in os.environ.items() if k.startswith(("SHARDSMITH_", "PYTHON"))}})
    return ray.shutdown


def ray_task_bundle(executor) -> dict[str, float]:
    """The placement-group bundle one Ray task of ``executor`` (a datatrove RayPipelineExecutor) asks for: the
    remote options ``RayPipelineExecutor.run`` builds, through datatrove's own ``convert_remote_options_to_bundle``."""
    from datatrove.executor.ray import convert_remote_options_to_bundle

    options = {"num_cpus": executor.cpus_per_task, "num_gpus": executor.gpus_per_task,
               "memory": int(executor.mem_per_cpu_gb * executor.cpus_per_task * GIB)}
    options.update(executor.ray_remote_kwargs or {})
    return convert_remote_options_to_bundle(options)


def _resources_text(resources: dict, keys) -> str:
    """``CPU 2, memory 6.0 GiB`` for the ``keys`` of a Ray resource dict (missing: 0)."""
    return ", ".join(f"{k} {resources.get(k, 0) / GIB:.1f} GiB" if k == "memory" else f"{k} {resources.get(k, 0):g}"
                     for k in keys)


def _ray_check(spec: ExecutorSpec, phase: Phase, executor) -> None:
    """Fail the phase in bounded time when Ray cannot place one of its tasks.

    datatrove's ``RayTaskManager`` waits on each task's placement group with ``ray.get(pg.ready())`` and no
    timeout, and Ray keeps an infeasible group pending forever, so a request no node can hold hung the build. Here,
    before datatrove runs: a bundle larger than every alive node's total resources fails at once; otherwise a
    probe placement group of the same bundle must be ready within ``placement_timeout_s`` (a joined cluster may be
    busy), then is removed. Both raise a one-line PhaseError with the resources asked and those the cluster has."""
    import ray
    from ray.exceptions import GetTimeoutError

    bundle = ray_task_bundle(executor)
    asked = [k for k, v in bundle.items() if v]
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if not any(all(node.get(k, 0) >= v for k, v in bundle.items()) for node in nodes):
        has = "; ".join(_resources_text(n, asked) for n in nodes[:4]) or "no alive node"
        raise PhaseError(f"phase {phase.name}: a Ray task asks {_resources_text(bundle, asked)} (executor."
                         f"cpus_per_task × mem_per_cpu_gb) and no node has that (nodes: {has}); lower them or give "
                         f"the cluster more")
    probe = ray.util.placement_group([bundle])
    try:
        ray.get(probe.ready(), timeout=spec.placement_timeout_s)
    except GetTimeoutError:
        raise PhaseError(f"phase {phase.name}: Ray placed no task asking {_resources_text(bundle, asked)} within "
                         f"{spec.placement_timeout_s:g} s (executor.placement_timeout_s); free now: "
                         f"{_resources_text(ray.available_resources(), asked)}") from None
    finally:
        ray.util.remove_placement_group(probe)


EXECUTORS: dict[str, ExecutorRow] = {
    "local": ExecutorRow(build=_local, blocking=True),
    "slurm": ExecutorRow(build=_slurm, blocking=False),
    "ray": ExecutorRow(build=_ray, blocking=True, start=_start_ray, check=_ray_check),
}


def _queued(job_ids: list[str]) -> bool:
    """Whether squeue still lists any of ``job_ids`` (False without squeue: nothing can still be running)."""
    if not job_ids or shutil.which("squeue") is None:
        return False
    out = subprocess.run(["squeue", "-h", "-o", "%A", "-j", ",".join(job_ids)], capture_output=True, text=True)
    return bool(out.stdout.strip())


class PhaseRunner:
    """Builds, submits and checks the phases of one build with the executor the recipe names."""

    def __init__(self, spec: ExecutorSpec, workers: int, logs_root: Path, job_prefix: str, dry_run: bool = False):
        self.spec = spec
        self.dry_run = dry_run
        self.planned: list[Phase | str | None] = []  # dry run: phases in submission order; None: the driver waits
        self.row = EXECUTORS[spec.kind]
        self.workers = workers
        self.logs_root = Path(logs_root)
        self.job_prefix = job_prefix
        self.pending: list[tuple[Phase, object]] = []  # submitted, not yet waited for
        self.after: list[str] = []  # job ids the next phase depends on
        self._group: list[str] | None = None  # job ids submitted inside parallel()
        self._stop = None
        self._started = False

    def phase(self, pipeline: list, tasks: int, logging_dir: Path, concurrency: int | None = None) -> Phase:
        name = Path(logging_dir).relative_to(self.logs_root).as_posix()
        width = concurrency or self.spec.concurrency or self.workers
        return Phase(name, pipeline, tasks, Path(logging_dir), width, after=list(self.after))

    def executor(self, phase: Phase):
        """The datatrove executor of ``phase`` (its job name: ``<recipe>.<phase with dots>``)."""
        return self.row.build(self.spec, phase, f"{self.job_prefix}.{phase.name.replace('/', '.')}")

    def run(self, pipeline: list, tasks: int, logging_dir: Path, concurrency: int | None = None) -> None:
        """Submit one phase (local / ray: run it to the end and check every task finished). Dry run: record it,
        with the phase names it would depend on (on slurm) in ``after``."""
        phase = self.phase(pipeline, tasks, logging_dir, concurrency)
        if self.dry_run:
            self.planned.append(phase)
            return self._chain([phase.name])
        if not self._started:
            self._stop = self.row.start(self.spec, self.workers)
            self._started = True
        executor = self.executor(phase)
        self.row.check(self.spec, phase, executor)
        executor.run()
        if self.row.blocking:
            self._check(phase, executor)
            return
        self.pending.append((phase, executor))
        job = str(getattr(executor, "job_id", "") or "")
        self._chain([job] if job and job != "-1" else [])

    def _chain(self, ids: list[str]) -> None:
        """The next phase depends on ``ids`` (inside ``parallel()``: on the group, once it closes)."""
        if self._group is not None:
            self._group += ids
        elif ids:
            self.after = ids

    @contextmanager
    def parallel(self):
        """Phases submitted inside depend on what came before, not on each other; later ones depend on all."""
        self._group = []
        try:
            yield
        finally:
            group, self._group = self._group, None
            if group:
                self.after = group

    def wait(self) -> None:
        """Return once every submitted phase finished all its tasks (slurm: poll); raise PhaseError if one failed."""
        if self.dry_run and self.planned and isinstance(self.planned[-1], Phase):
            self.planned.append(None)
        while self.pending:
            phase, executor = self.pending[0]
            if not executor.get_incomplete_ranks(skip_completed=True):
                self.pending.pop(0)
                continue
            if not _queued([str(getattr(e, "job_id", "")) for _, e in self.pending]):
                self._check(phase, executor)
            time.sleep(self.spec.poll_seconds)
        self.after = []

    @staticmethod
    def _check(phase: Phase, executor) -> None:
        missing = executor.get_incomplete_ranks(skip_completed=True)
        if missing:
            raise PhaseError(
                f"phase {phase.name}: {len(missing)} of {phase.tasks} tasks did not finish (first: task "
                f"{missing[0]}); see {phase.logging_dir / 'logs'}; re-run the same command to resume"
            )

    def close(self) -> None:
        """Stop what ``run`` started (a local Ray cluster); a joined cluster stays up."""
        if self._stop is not None:
            self._stop()
        self._stop, self._started = None, False
