"""Issue 14, item 1: every phase of `shardsmith mix` through the executor the recipe names (pipelines/executors.py).

- Slurm: no cluster here, so ``tests/fake_slurm`` stands in for sbatch / srun / scontrol on PATH: sbatch records what
  datatrove submits (the script it generated, the ``--dependency`` option) and runs the job at once through the real
  ``launch_pickled_pipeline``. The scripts are parsed and checked against ``--dry-run``'s plan, and the shards
  compared byte for byte with a local build.
- Ray: ``run_mix`` starts a local Ray cluster sized for the recipe's tasks and builds the mini mix; every output
  file equals the local build's (the demo mix: tests/test_cli_demo.py, the real-sample mix: tests/test_mix_real.py,
  each against the local build its module already makes). A task Ray cannot place fails the phase in one line.
- ``--dry-run`` prints the plan and writes nothing.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from conftest import REPO, assert_same_shards

from shardsmith.cli import main as cli_main
from shardsmith.pipelines.executors import Phase
from shardsmith.pipelines.mixer import plan_phases, run_mix
from shardsmith.recipes import load_recipe
from shardsmith.schemas.mix_recipe import MixRecipe

FAKE_SLURM = Path(__file__).resolve().parent / "fake_slurm"
DEMO = REPO / "recipes" / "mix" / "demo.yaml"

# two sources of the demo corpus (web: 2 files, 2 tasks), dedup with 3 MinHash buckets (a 3-task array), no filter chain
# and a shipped tokenizer: the executor is under test here, and every Slurm task pays a Python start-up
MINI = """\
name: mini
seed: 7
tokenizer: {name: gpt2}
validation_fraction: 0.05
workers: 2
dedup: {keep: order, minhash: {num_buckets: 3}}
executor: {kind: slurm, partition: cpu-small, time: "00:30:00", cpus_per_task: 2, mem_per_cpu_gb: 3, qos: low,
           concurrency: 2, env_command: "export MINI_JOB=1", sbatch_args: {account: curation}}
sources:
  - {name: web, kind: fineweb, language: en, weight: 0.7, filters: none, paths: ["${SHARDSMITH_SAMPLE}/web/*.parquet"]}
  - {name: wiki, kind: wikipedia, language: en, weight: 0.3, filters: none, paths: ["${SHARDSMITH_SAMPLE}/wiki/*.jsonl"]}
"""


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from shardsmith.demo.mix_corpus import write_sample_corpus

    root = tmp_path_factory.mktemp("sample")
    write_sample_corpus(root)
    os.environ["SHARDSMITH_SAMPLE"] = str(root)
    yield root
    os.environ.pop("SHARDSMITH_SAMPLE", None)


@pytest.fixture(scope="module")
def mini_recipe(sample, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "mini.yaml"
    path.write_text(MINI)
    return path


@pytest.fixture(scope="module")
def mini_local(mini_recipe, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mini") / "local"
    run_mix(str(mini_recipe), str(out), overrides=["executor.kind=local"])
    return out


@pytest.fixture(scope="module")
def slurm_build(mini_recipe, tmp_path_factory):
    """The mini mix through fake Slurm (kept .work: the logging dirs datatrove wrote); fake sbatch's records in jobs/."""
    root = tmp_path_factory.mktemp("slurm")
    jobs = root / "jobs"
    env = {"PATH": f"{FAKE_SLURM}:{Path(sys.executable).parent}:{os.environ['PATH']}", "FAKE_SLURM_DIR": str(jobs)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        run_mix(str(mini_recipe), str(root / "slurm"), keep_work=True)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return root


def submitted_jobs(jobs: Path) -> dict[str, dict]:
    """Job id -> {directives, dependency (job ids), command} from what fake sbatch recorded."""
    out = {}
    for script in sorted(jobs.glob("*.sh"), key=lambda p: int(p.stem)):
        text = script.read_text()
        directives = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", text, re.M))
        args = (jobs / f"{script.stem}.args").read_text().split()
        dep = next((a.split("=", 1)[1] for a in args if a.startswith("--dependency=")), "")
        out[script.stem] = {"directives": directives, "text": text,
                            "after": [i for part in dep.split(",") if part.startswith("afterok:")
                                      for i in part.split(":")[1:]]}
    return out


def test_slurm_scripts_carry_the_plan_and_build_the_same_shards(slurm_build, mini_recipe, mini_local):
    jobs = submitted_jobs(slurm_build / "jobs")
    phases = {j["directives"]["job-name"]: (jid, j) for jid, j in jobs.items()
              if "launch_pickled_pipeline" in j["text"]}
    name_of = {jid: name for name, (jid, _) in phases.items()}
    planned = [p for p in plan_phases(load_recipe(MixRecipe, mini_recipe), slurm_build / "plan")[0] if isinstance(p, Phase)]
    # --dry-run lists exactly the jobs submitted, with their array sizes and dependencies
    assert sorted(phases) == sorted(f"mini.{p.name.replace('/', '.')}" for p in planned)
    for p in planned:
        jid, job = phases[f"mini.{p.name.replace('/', '.')}"]
        d = job["directives"]
        assert d["array"] == f"0-{p.tasks - 1}%2", (p.name, d["array"])  # concurrency 2 (merge: 1 task, %1)
        assert (d["partition"], d["time"], d["cpus-per-task"], d["mem-per-cpu"], d["qos"], d["account"]) == (
            "cpu-small", "00:30:00", "2", "3G", "low", "curation")
        assert "export MINI_JOB=1" in job["text"]
        assert [name_of[i] for i in job["after"]] == [f"mini.{a.replace('/', '.')}" for a in p.after], p.name
        # the script runs datatrove's pickled executor of this phase's logging dir
        assert f"launch_pickled_pipeline {slurm_build / 'slurm' / '.work' / 'logs' / p.name}/executor.pik" in job["text"]
    names = [p.name for p in planned]
    assert {"dedup/mix/buckets", "dedup/mix/cluster", "dedup/mix/resolve"} <= set(names)
    by_name = {p.name: p for p in planned}
    assert by_name["dedup/mix/buckets"].tasks == 3
    assert sorted(by_name["dedup/mix/buckets"].after) == ["dedup/mix/sign/web", "dedup/mix/sign/wiki"]
    assert by_name["dedup/mix/cluster"].after == ["dedup/mix/buckets"]
    assert by_name["dedup/mix/filter/wiki"].after == ["dedup/mix/resolve"]
    # a stats job per phase, after it (datatrove's merge_stats)
    assert sum("merge_stats" in j["text"] for j in jobs.values()) == len(planned)
    # the shards Slurm built are the local build's, byte for byte
    assert_same_shards(slurm_build / "slurm", mini_local)


def test_slurm_venv_and_array_limit_reach_the_script(tmp_path):
    from shardsmith.pipelines.executors import PhaseRunner
    from shardsmith.schemas.mix_recipe import ExecutorSpec

    spec = ExecutorSpec(kind="slurm", partition="p", venv_path="/opt/env/bin/activate", max_array_size=10)
    runner = PhaseRunner(spec, 4, tmp_path, "m")
    executor = runner.executor(runner.phase([], 25, tmp_path / "filter" / "a"))
    script = executor.get_launch_file_contents(executor.get_sbatch_args(10), "true")
    assert "source /opt/env/bin/activate" in script and "#SBATCH --array=0-9" in script
    assert "#SBATCH --job-name=m.filter.a" in script and executor.max_array_size == 10


def test_a_failed_slurm_phase_stops_the_driver_naming_the_phase(tmp_path, monkeypatch):
    """A task that raises: the job fails, and the driver's wait ends in one error naming the phase and its logs."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import LambdaFilter

    from shardsmith.pipelines.executors import PhaseError, PhaseRunner
    from shardsmith.schemas.mix_recipe import ExecutorSpec

    monkeypatch.setenv("PATH", f"{FAKE_SLURM}:{Path(sys.executable).parent}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(tmp_path / "jobs"))
    runner = PhaseRunner(ExecutorSpec(kind="slurm", partition="p", poll_seconds=0.1), 1, tmp_path, "m")
    runner.run([[Document(text="x", id="0")], LambdaFilter(lambda doc: 1 / 0)], 1, tmp_path / "broken")
    with pytest.raises(PhaseError, match=r"phase broken: 1 of 1 tasks did not finish .*broken/logs"):
        runner.wait()
    assert (tmp_path / "jobs" / "1001.failed").exists()


def test_dry_run_prints_the_plan_and_writes_nothing(sample, tmp_path, capsys):
    out = tmp_path / "never"
    assert cli_main(["mix", str(DEMO), "--out", str(out), "--dry-run", "--set", "executor.kind=ray",
                     "--set", "workers=2"]) == 0
    text = capsys.readouterr().out
    assert not out.exists()
    assert "executor: ray" in text
    planned = [p for p in plan_phases(load_recipe(MixRecipe, DEMO, ["workers=2"]), out)[0] if isinstance(p, Phase)]
    for p in planned:
        assert re.search(rf"^{re.escape(p.name)}\s+{p.tasks}\s", text, re.M), p.name
    assert re.search(r"^filter/web\s+2\s+1 input file", text, re.M)  # two parquet files, two tasks


def test_slurm_without_partition_is_a_one_line_recipe_error(tmp_path, capsys):
    assert cli_main(["mix", str(DEMO), "--out", str(tmp_path / "x"), "--dry-run", "--set", "executor.kind=slurm"]) == 2
    err = capsys.readouterr().err.strip()
    assert "executor" in err and "needs `partition`" in err and "Traceback" not in err


@pytest.mark.timeout(600)  # a hang fails here instead of stalling the suite (pytest-timeout)
def test_ray_and_local_write_byte_identical_shards(mini_recipe, mini_local, tmp_path):
    """run_mix starts (and stops) its own local cluster, sized for the recipe: the mini recipe's tasks ask 2 CPUs and
    6 GiB each (cpus_per_task 2 × mem_per_cpu_gb 3), more than Ray's default ``memory`` on a small runner."""
    pytest.importorskip("ray", reason="the `scale` extra (ray) is not installed")
    run_mix(str(mini_recipe), str(tmp_path / "ray"), overrides=["executor.kind=ray"])
    assert_same_shards(mini_local, tmp_path / "ray")


@pytest.mark.timeout(120)
def test_ray_task_that_cannot_be_placed_fails_the_phase_in_one_line(tmp_path):
    """A joined cluster of 1 CPU and 1 GiB: a task asking 2 GiB fails at once (no node can hold it); a task that fits
    while another placement group holds the CPU fails after ``placement_timeout_s``. datatrove alone waits forever
    in both cases (``RayTaskManager``: ``ray.get(pg.ready())`` without a timeout)."""
    ray = pytest.importorskip("ray", reason="the `scale` extra (ray) is not installed")
    from datatrove.data import Document

    from shardsmith.pipelines.executors import GIB, PhaseError, PhaseRunner
    from shardsmith.schemas.mix_recipe import ExecutorSpec

    pipeline = [[Document(text="x", id="0")]]
    ray.init(num_cpus=1, _memory=GIB, include_dashboard=False, log_to_driver=False)
    try:
        too_big = PhaseRunner(ExecutorSpec(kind="ray", mem_per_cpu_gb=2), 1, tmp_path, "m")
        with pytest.raises(PhaseError, match=r"^phase filter/web: a Ray task asks CPU 1, memory 2\.0 GiB .*"
                           r"no node has that \(nodes: CPU 1, memory 1\.0 GiB\)"):
            too_big.run(pipeline, 1, tmp_path / "filter" / "web")
        busy = ray.util.placement_group([{"CPU": 1}])
        ray.get(busy.ready(), timeout=60)
        waits = PhaseRunner(ExecutorSpec(kind="ray", mem_per_cpu_gb=1, placement_timeout_s=0.5), 1, tmp_path, "m")
        with pytest.raises(PhaseError, match=r"^phase count/web: Ray placed no task asking CPU 1, memory 1\.0 GiB "
                           r"within 0\.5 s .*free now: CPU 0, memory 1\.0 GiB$"):
            waits.run(pipeline, 1, tmp_path / "count" / "web")
        ray.util.remove_placement_group(busy)
        assert not (tmp_path / "filter" / "web" / "completions").exists()  # nothing ran
    finally:
        ray.shutdown()
