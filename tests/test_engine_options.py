"""Engine options for GPU throughput, checked where they can be on a CPU: ``engine.compile`` hands the model to
DeepSpeed's ``engine.compile`` (compilation itself is lazy, at the first forward: not run here, it takes minutes on a
CPU) and ``engine.activation_checkpointing`` turns on HF gradient checkpointing for a stage that did not ask."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.train_recipe import DataSet, DataSpec, EngineSpec, StageSpec
from shardsmith.trainer import engine as E
from shardsmith.trainer.models import build_config, new_model


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine_options")
    tok = F.build_tokenizer(root / "tok")
    return ShardManifest.load(F.build_shard_set(root / "set", tok, F.sentences(8)))


def _engine(manifest, **options):
    E.init_distributed()
    stage = StageSpec(name="s", data=DataSpec(sets=[DataSet(path="unused")]), max_steps=1, seq_len=32)
    model = new_model(build_config("tiny-gpt2", None, {}, manifest), seed=0)
    return E.Engine(model, stage, EngineSpec(zero_stage=0, precision="fp32", **options), seed=0)


def test_compile_and_activation_checkpointing_reach_the_engine(manifest):
    plain = _engine(manifest)
    assert not plain.engine.is_compiled and not plain.model.is_gradient_checkpointing
    tuned = _engine(manifest, compile=True, activation_checkpointing=True)
    assert tuned.engine.is_compiled and tuned.model.is_gradient_checkpointing
    assert tuned.model.state_dict().keys() == plain.model.state_dict().keys()  # exports keep their names


@pytest.mark.skipif(not sys.platform.startswith("linux") or __import__("platform").libc_ver()[0] != "glibc",
                    reason="mallopt's thresholds are glibc's")
def test_cpu_heap_keeps_freed_blocks_for_the_next_steps():
    """After ``keep_freed_memory`` a 64 MiB block allocated, filled and freed round after round (above glibc's
    largest dynamic mmap threshold, 32 MiB: by default unmapped on free and faulted in again, 16 K pages every
    round) settles on pages the heap already holds: no page faults once the heap has grown to fit the pattern."""
    import resource

    import torch

    def faults_of_a_filled_block():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = torch.empty(64 << 20, dtype=torch.uint8).fill_(1)
        del block
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    assert E.keep_freed_memory()
    rounds = [faults_of_a_filled_block() for _ in range(10)]
    assert sum(rounds[-3:]) < 256, rounds  # of 3 x 16384 pages
