"""Trainer data path without DeepSpeed: readers, sampling order, loss-mask shift, packing isolation, errors."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F
from shardsmith.trainer.data import IGNORE, DataError, SplitReader, StageData
from shardsmith.trainer.engine import block_causal_mask


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer_data")
    tok = F.build_tokenizer(root / "tok")
    return {
        "tok": tok,
        "pt": F.pretrain_set(root / "pt", tok, n_train=120, n_val=12),
        "sft": F.sft_set(root / "sft", tok, n_train=60, n_val=8),
        "root": root,
    }


def _data(path, **kw):
    args = dict(seq_len=64, seed=3, sampling="random", packing=False, document_masking=False, micro=2, accum=2,
                rank=0, world=1)
    args.update(kw)
    return StageData([str(path)], [1.0], **args)


def test_windows_are_a_pure_function_of_seed_and_step(sets):
    a, b = _data(sets["pt"]), _data(sets["pt"])
    assert [a.micro_batch(5, m).keys for m in range(2)] == [b.micro_batch(5, m).keys for m in range(2)]
    assert a.micro_batch(5, 0).keys != a.micro_batch(6, 0).keys
    assert _data(sets["pt"], seed=4).micro_batch(5, 0).keys != a.micro_batch(5, 0).keys


@pytest.mark.parametrize("sampling,packing", [("random", False), ("epoch", False), ("epoch", True), ("random", True)])
def test_ranks_read_disjoint_rows_whose_union_is_the_single_process_batch(sets, sampling, packing):
    path = sets["sft"] if packing else sets["pt"]
    kw = dict(sampling=sampling, packing=packing, document_masking=packing)
    one = _data(path, micro=2, accum=2, world=1, **kw)  # G = 4
    ranks = [_data(path, micro=1, accum=2, world=2, rank=r, **kw) for r in range(2)]  # G = 4
    for step in (0, 3):
        whole = [k for m in range(2) for k in one.micro_batch(step, m).keys]
        parts = [[k for m in range(2) for k in d.micro_batch(step, m).keys] for d in ranks]
        assert sorted(map(str, parts[0] + parts[1])) == sorted(map(str, whole))
        if sampling == "epoch":  # tiles / packed rows are distinct objects: no row read twice in a step
            assert not set(map(str, parts[0])) & set(map(str, parts[1]))


def test_epoch_order_covers_every_window_once(sets):
    d = _data(sets["pt"], sampling="epoch", micro=4, accum=1)
    n = d.rows_per_epoch()
    seen = [k for s in range(n // 4) for k in d.micro_batch(s, 0).keys]
    assert len(seen) == len(set(seen)) == (n // 4) * 4


def test_window_labels_are_next_tokens(sets):
    d = _data(sets["pt"])
    b = d.micro_batch(0, 0)
    rd = SplitReader.open(sets["pt"], "train")
    si, fi, off = b.keys[0]
    toks = np.asarray(rd.tokens[fi][off:off + 65], dtype=np.int64)
    assert (b.input_ids[0] == toks[:-1]).all() and (b.labels[0] == toks[1:]).all()


def test_sft_loss_mask_is_shifted_with_the_labels(sets):
    """A label carries loss iff the *target* token's .ds.loss byte is 1: prompt targets are masked, the answer
    (including the EOS datatrove appends) is not."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(Path(sets["sft"]) / "tokenizer")
    d = _data(sets["sft"], sampling="epoch", packing=True, document_masking=True, seq_len=128)
    rd = SplitReader.open(sets["sft"], "train")
    b = d.micro_batch(0, 0)
    pairs = {p + a: (p, a) for p, a in F.qa_pairs(60, seed=0)}
    checked = 0
    for r, row in enumerate(b.keys):
        for k, (si, fi, start) in enumerate(row):
            seg = b.segment_ids[r] == k
            ids, labels = b.input_ids[r][seg], b.labels[r][seg]
            text = tok.decode(ids[:-1])
            prompt, answer = pairs[text]
            target = labels[labels != IGNORE]
            assert tok.decode(target) == answer + F.EOS
            # the first loss-carrying label predicts the first answer token from the last prompt token
            first = int(np.flatnonzero(labels != IGNORE)[0])
            assert tok.decode(ids[: first + 1]) == prompt
            mask = np.asarray(rd.loss[fi][start:start + len(ids)])
            assert ((labels[:-1] != IGNORE) == (mask[1:] == 1)).all()
            assert labels[-1] == IGNORE  # never across the document boundary
            checked += 1
    assert checked >= 2


def test_packed_rows_restart_positions_and_isolate_documents(sets):
    d = _data(sets["sft"], sampling="epoch", packing=True, document_masking=True, seq_len=128)
    b = d.micro_batch(1, 0)
    multi = [r for r, keys in enumerate(b.keys) if len(keys) >= 2]
    assert multi, "fixture rows should hold several documents"
    r = multi[0]
    seg, pos = b.segment_ids[r], b.position_ids[r]
    for k in range(len(b.keys[r])):
        p = pos[seg == k]
        assert (p == np.arange(len(p))).all()
    import torch

    m = block_causal_mask(torch.from_numpy(b.segment_ids[r:r + 1]), torch.float32)[0, 0]
    a_idx, b_idx = np.flatnonzero(seg == 0), np.flatnonzero(seg == 1)
    assert (m[b_idx][:, a_idx] < -1e30).all()  # document 1 never sees document 0
    assert (m[b_idx][:, b_idx].tril() == 0).all()


def test_fewer_validation_rows_than_processes_is_a_clear_error_not_a_hang(sets):
    """A process with no validation row would skip the all-reduce the others wait in."""
    assert len(_data(sets["pt"], val_rows=1).validation_batches()) == 1
    for rank in (0, 1):
        with pytest.raises(DataError, match=r"1 row\(s\) \(data.val_rows 1\) for 2 processes"):
            _data(sets["pt"], val_rows=1, rank=rank, world=2).validation_batches()
    assert _data(sets["pt"], val_rows=0, world=2).validation_batches() == []
    assert all(_data(sets["pt"], val_rows=2, rank=r, world=2).validation_batches() for r in (0, 1))


def test_missing_shard_file_is_a_clear_error(sets, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(sets["pt"], broken)
    victim = next((broken / "train").glob("*.ds"))
    victim.unlink()
    with pytest.raises(DataError, match=r"shard file train/.*\.ds listed in manifest.json is missing"):
        SplitReader.open(broken, "train")


def test_not_a_shard_set(tmp_path):
    with pytest.raises(DataError, match="no manifest.json"):
        SplitReader.open(tmp_path, "train")


def test_schedules():
    from shardsmith.schemas.train_recipe import ScheduleSpec
    from shardsmith.trainer.schedules import lr_at

    cos = ScheduleSpec(kind="cosine", warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, 100, 1.0, cos) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, cos) == pytest.approx(1.0)
    assert lr_at(99, 100, 1.0, cos) == pytest.approx(0.1)
    wsd = ScheduleSpec(kind="wsd", warmup_steps=10, decay_ratio=0.2, min_lr_ratio=0.0)
    assert lr_at(50, 100, 1.0, wsd) == 1.0 and lr_at(79, 100, 1.0, wsd) == 1.0
    assert lr_at(99, 100, 1.0, wsd) == pytest.approx(0.0)
    assert lr_at(89, 100, 1.0, wsd) == pytest.approx(0.5)
    assert lr_at(500, 100, 1.0, ScheduleSpec(kind="constant")) == 1.0


@pytest.mark.parametrize("name", ["demo", "ff313", "transformer-1b-chat", "fgpt", "steel"])
def test_shipped_recipes_validate(name):
    from shardsmith.schemas.train_recipe import TrainRecipe

    from shardsmith.recipes import load_recipe

    r = load_recipe(TrainRecipe, Path(__file__).resolve().parents[1] / "recipes" / "train" / f"{name}.yaml")
    assert r.stages[0].init_from == "scratch"


def test_recipe_errors_name_the_field(tmp_path):
    from shardsmith.schemas.train_recipe import TrainRecipe

    from shardsmith.recipes import RecipeError, load_recipe

    p = tmp_path / "r.yaml"
    p.write_text("name: x\nstages:\n  - name: a\n    data: {sets: [{path: d}]}\n    max_steps: 3\n    lr: 1\n")
    with pytest.raises(RecipeError, match=r"(?s)r.yaml.*stages.0.lr"):
        load_recipe(TrainRecipe, p)
    p.write_text("name: x\nstages:\n  - name: a\n    init_from: previous\n    data: {sets: [{path: d}]}\n    max_steps: 3\n")
    with pytest.raises(RecipeError, match="first stage has no previous"):
        load_recipe(TrainRecipe, p)
