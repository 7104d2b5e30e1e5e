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
def shard_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine_options")
    tok = F.build_tokenizer(root / "tok")
    return F.build_shard_set(root / "set", tok, F.sentences(8))


@pytest.fixture(scope="module")
def manifest(shard_set):
    return ShardManifest.load(shard_set)


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


def test_one_process_zero0_step_equals_a_bare_torch_step(shard_set, manifest):
    """World of one, ZeRO-0 fp32: the engine skips DeepSpeed's gradient all-reduce (the identity there), and its step
    is still exactly the hand-written one: summed token losses over the global count, backward, clipping, AdamW."""
    import torch
    from shardsmith.trainer.data import StageData
    from shardsmith.trainer.objectives import token_losses

    E.init_distributed()
    stage = StageSpec(name="s", data=DataSpec(sets=[DataSet(path="unused")]), max_steps=1, seq_len=32,
                      micro_batch_size=2, grad_accum=2, optimizer={"lr": 1e-2, "weight_decay": 0.1, "grad_clip": 0.5})
    config = build_config("tiny-gpt2", None, {}, manifest)
    eng = E.Engine(new_model(config, seed=0), stage, EngineSpec(zero_stage=0, precision="fp32"), seed=0)
    assert not eng.engine.enable_backward_allreduce
    batches = StageData([str(shard_set)], [1.0], seq_len=32, seed=0, sampling="epoch", packing=False,
                        document_masking=False, micro=2, accum=2, rank=0, world=1, objective="clm").step_batches(0)
    eng.train_step(batches, 0, 1e-2, 0, 1)

    bare = new_model(config, seed=0)
    o = stage.optimizer
    opt = torch.optim.AdamW(E.param_groups(bare, o.weight_decay), lr=1e-2, betas=tuple(o.betas), eps=o.eps)
    total = sum(b.loss_tokens for b in batches)
    for b in batches:
        logits = bare(input_ids=torch.from_numpy(b.input_ids), position_ids=torch.from_numpy(b.position_ids)).logits
        (token_losses(logits, torch.from_numpy(b.labels)).sum() / total).backward()
    torch.nn.utils.clip_grad_norm_(bare.parameters(), o.grad_clip)
    opt.step()
    for (name, mine), theirs in zip(eng.model.state_dict().items(), bare.state_dict().values()):
        assert torch.allclose(mine, theirs, atol=1e-6), name
