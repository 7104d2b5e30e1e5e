"""DPO without a training run: pair rows as the trainer reads them, the objective/set-kind contract, prompts that
do not fit, a broken pairing, and the loss formulas against hand computation."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trainer_fixtures as F
from shardsmith.trainer.data import IGNORE, DataError, StageData


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("dpo")
    tok = F.build_tokenizer(root / "tok")
    return {"tok": tok, "pref": F.preference_set(root / "pref", tok, n_train=40, n_val=6),
            "sft": F.sft_set(root / "sft", tok, n_train=20, n_val=4)}


def stage_data(path, objective="dpo", seq_len=64, micro=4, accum=2, rank=0, world=1, sampling="epoch"):
    return StageData([str(path)], [1.0], seq_len=seq_len, seed=3, sampling=sampling, packing=False,
                     document_masking=False, micro=micro, accum=accum, rank=rank, world=world, val_rows=4,
                     objective=objective)


def test_pair_rows_hold_chosen_then_rejected_with_one_prompt(sets):
    from tokenizers import Tokenizer

    tk = Tokenizer.from_file(str(sets["tok"] / "tokenizer.json"))
    data = stage_data(sets["pref"])
    assert data.rows_per_epoch() == 40  # pairs
    seen = set()
    for step in range(5):  # one epoch: 5 steps x 8 pairs
        for b in data.step_batches(step):
            n = b.pairs
            assert n == 4 and len(b) == 8
            for i in range(n):
                c, r = b.input_ids[i], b.input_ids[n + i]
                lc, lr = b.labels[i], b.labels[n + i]
                # the prompt is every token before the first label; both sides share it
                kc, kr = int(np.flatnonzero(lc != IGNORE)[0]), int(np.flatnonzero(lr != IGNORE)[0])
                assert kc == kr and np.array_equal(c[: kc + 1], r[: kr + 1])
                prompt = tk.decode(c[: kc + 1].tolist())
                answer_c = tk.decode(lc[lc != IGNORE].tolist(), skip_special_tokens=False)
                answer_r = tk.decode(lr[lr != IGNORE].tolist(), skip_special_tokens=False)
                assert prompt.startswith("Q: what does") and prompt.endswith("A:")
                assert answer_c.endswith(".<|endoftext|>") and answer_r.endswith(".<|endoftext|>")
                assert answer_c != answer_r and any(w.isupper() for w in answer_c.split())
            seen.update(b.keys)
    assert len(seen) == 40  # every pair once per epoch
    assert data.validation_batches()[0].pairs == 4


def test_ranks_read_disjoint_pairs(sets):
    a = [k for s in range(2) for b in stage_data(sets["pref"], micro=2, rank=0, world=2).step_batches(s) for k in b.keys]
    b = [k for s in range(2) for b in stage_data(sets["pref"], micro=2, rank=1, world=2).step_batches(s) for k in b.keys]
    assert len(a) == len(b) == 8 and not set(a) & set(b)


def test_objective_and_set_kind_must_match(sets):
    with pytest.raises(DataError, match="not a preference set"):
        stage_data(sets["sft"], objective="dpo")
    with pytest.raises(DataError, match="only the dpo objective reads it"):
        stage_data(sets["pref"], objective="sft")


def test_pairs_whose_prompt_fills_the_row_are_skipped(sets):
    data = stage_data(sets["pref"], seq_len=17)
    assert 0 < data.sampler.too_long < 40 and data.rows_per_epoch() == 40 - data.sampler.too_long
    for b in data.step_batches(0):
        assert all((b.labels[i] != IGNORE).any() for i in range(len(b)))
    with pytest.raises(DataError, match="whose prompt fits seq_len 12"):
        stage_data(sets["pref"], seq_len=12)


def test_a_broken_pairing_is_refused(sets, tmp_path):
    """Pairs written through datatrove's shuffle (never the builder's way): adjacent documents are no longer a pair."""
    pairs = F.preference_pairs(40, seed=5)
    texts, nl = F.sft_texts([(p, x) for p, c, r in pairs for x in (c, r)])
    bad = F.build_shard_set(tmp_path / "bad", sets["tok"], texts, train_no_loss=nl, kind="preference",
                            shuffle=True, pair_layout="adjacent:chosen,rejected")
    data = stage_data(bad, accum=1)
    with pytest.raises(DataError, match="pairing .* is broken"):
        for step in range(data.steps_for_epochs(1.0)):
            data.step_batches(step)


def test_dpo_loss_formulas():
    import torch
    from shardsmith.trainer.objectives import dpo_losses

    pc, pr = torch.tensor([-10.0, -3.0]), torch.tensor([-12.0, -2.0])
    rc, rr = torch.tensor([-11.0, -3.0]), torch.tensor([-11.0, -3.0])
    m = np.array([(-10 + 11) - (-12 + 11), (-3 + 3) - (-2 + 3)])  # [2, -1]
    beta = 0.5
    sig = lambda x: 1 / (1 + np.exp(-x))
    loss, r_c, r_r = dpo_losses(pc, pr, rc, rr, beta)
    assert loss.tolist() == pytest.approx((-np.log(sig(beta * m))).tolist(), rel=1e-6)
    assert r_c.tolist() == pytest.approx([0.5, 0.0]) and r_r.tolist() == pytest.approx([-0.5, 0.5])
    loss, *_ = dpo_losses(pc, pr, rc, rr, beta, label_smoothing=0.2)
    assert loss.tolist() == pytest.approx((-0.8 * np.log(sig(beta * m)) - 0.2 * np.log(sig(-beta * m))).tolist(),
                                          rel=1e-6)
    loss, *_ = dpo_losses(pc, pr, rc, rr, beta, "ipo")
    assert loss.tolist() == pytest.approx(((m - 1 / (2 * beta)) ** 2).tolist(), rel=1e-6)
    loss, *_ = dpo_losses(pc, pr, rc, rr, beta, "hinge")
    assert loss.tolist() == pytest.approx(np.maximum(0, 1 - beta * m).tolist(), rel=1e-6)
    same, *_ = dpo_losses(pc, pr, pc, pr, beta)
    assert same.tolist() == pytest.approx([math.log(2)] * 2, rel=1e-7)


def test_dpo_stage_settings_are_validated():
    from pydantic import ValidationError
    from shardsmith.schemas.train_recipe import StageSpec

    base = {"name": "d", "objective": "dpo", "data": {"sets": [{"path": "x"}]}, "max_steps": 1}
    assert StageSpec(**base).dpo.beta == 0.1 and not StageSpec(**base).packing  # defaults filled in
    for bad, msg in (({"neftune_alpha": 5.0}, "token-objective settings"),
                     ({"data": {"sets": [{"path": "x"}], "packing": True}}, "never packed"),
                     ({"dpo": {"loss_type": "kto"}}, "loss_type"),
                     ({"dpo": {"label_smoothing": 0.6}}, "label_smoothing")):
        with pytest.raises(ValidationError, match=msg):
            StageSpec(**{**base, **bad})
    with pytest.raises(ValidationError, match="objective is 'sft'"):
        StageSpec(**{**base, "objective": "sft", "dpo": {"beta": 0.1}})
