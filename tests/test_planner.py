"""The mix planner: token targets, seeded selection, whole-epoch upsampling, document-level split."""

import numpy as np
import polars as pl
import pytest

from shardsmith.pipelines.planner import plan_source, resolve_budget, target_tokens


def ledger(n, seed=0, lo=50, hi=3000):
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"id": [f"d{i}" for i in range(n)], "tokens": rng.integers(lo, hi, n)})


def test_targets_sum_to_budget_exactly():
    shares = {"a": 0.62, "b": 0.18, "c": 0.07, "d": 0.07, "e": 0.06}
    t = target_tokens(1_000_003, shares)
    assert sum(t.values()) == 1_000_003
    assert all(abs(t[k] - 1_000_003 * s) < 1 for k, s in shares.items())


def test_default_budget_is_largest_mix_without_upsampling():
    shares = {"a": 0.5, "b": 0.5}
    assert resolve_budget(None, shares, {"a": 1000, "b": 300}) == 600
    assert resolve_budget(5000, shares, {"a": 1000, "b": 300}) == 5000


def test_a_target_of_exactly_the_available_tokens_takes_every_document_once():
    """The no-budget default of a one-source mix: one epoch, no document doubled to fill a remainder of zero."""
    led = ledger(150)
    available = int(led["tokens"].sum())
    table, s = plan_source(led, "a", 1.0, resolve_budget(None, {"a": 1.0}, {"a": available}), seed=1,
                           validation_fraction=0.0)
    assert s.full_epochs == 1 and s.planned_documents == 150 and s.planned_tokens == available
    assert table["copies"].to_list() == [1] * 150
    # a tiny remainder (less than half the shortest document) adds nothing either; a large one adds a document
    _, s = plan_source(led, "a", 1.0, available + int(led["tokens"].min()) // 3, seed=1, validation_fraction=0.0)
    assert s.planned_documents == 150
    _, s = plan_source(led, "a", 1.0, available + int(led["tokens"].max()), seed=1, validation_fraction=0.0)
    assert s.planned_documents >= 151


def test_downsample_hits_target_within_one_document():
    led = ledger(2000)
    table, s = plan_source(led, "a", 0.3, 400_000, seed=1, validation_fraction=0.05)
    assert s.full_epochs == 0
    assert abs(s.planned_tokens - 400_000) <= led["tokens"].max()
    assert table["copies"].max() == 1
    assert s.planned_tokens == int((table["copies"] * table["tokens"]).sum())


def test_upsample_uses_whole_epochs_then_remainder():
    led = ledger(100)
    available = int(led["tokens"].sum())
    target = int(2.5 * available)
    table, s = plan_source(led, "a", 1.0, target, seed=3, validation_fraction=0.0)
    assert s.full_epochs == 2
    assert set(table["copies"].unique().to_list()) <= {2, 3}
    assert len(table) == 100  # every document at least twice
    assert abs(s.planned_tokens - target) <= led["tokens"].max()
    assert s.epochs == pytest.approx(s.planned_tokens / available)


def test_plan_is_seeded_and_split_is_by_document():
    led = ledger(3000)
    t1, _ = plan_source(led, "a", 0.5, 1_000_000, seed=7, validation_fraction=0.1)
    t2, _ = plan_source(led, "a", 0.5, 1_000_000, seed=7, validation_fraction=0.1)
    t3, _ = plan_source(led, "a", 0.5, 1_000_000, seed=8, validation_fraction=0.1)
    assert t1.equals(t2)
    assert not t1.equals(t3)
    # split depends on the id only: the same id gets the same split whatever is sampled
    full, _ = plan_source(led, "a", 1.0, int(led["tokens"].sum()) * 2, seed=7, validation_fraction=0.1)
    joined = t1.join(full, on="id", suffix="_full")
    assert (joined["split"] == joined["split_full"]).all()
    frac = (full["split"] == "validation").mean()
    assert 0.07 < frac < 0.13


def test_duplicate_ids_are_refused():
    led = pl.DataFrame({"id": ["x", "x", "y"], "tokens": [10, 20, 30]})
    with pytest.raises(ValueError, match="not unique"):
        plan_source(led, "src", 1.0, 30, seed=0, validation_fraction=0.0)


def test_exact_duplicate_texts_share_a_split():
    led = pl.DataFrame({"id": [f"d{i}" for i in range(400)], "tokens": [100] * 400,
                        "content": [f"h{i % 50}" for i in range(400)]})  # 50 texts, 8 ids each
    table, _ = plan_source(led, "a", 1.0, 40_000, seed=2, validation_fraction=0.3)
    joined = table.join(led.select("id", "content"), on="id", how="left", suffix="_l")
    assert joined.group_by("content").agg(pl.col("split").n_unique().alias("n"))["n"].max() == 1
    assert set(table["split"].to_list()) == {"train", "validation"}
