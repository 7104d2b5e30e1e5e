"""Turn per-document token counts into a selection that hits each source's token share.

For each source with target ``t`` tokens and ``T`` tokens available after filtering: every document is used
``floor(t / T)`` whole times (upsampling = whole extra epochs, recorded), and the remainder is filled by taking
documents in a seeded random order until the running token sum is closest to the remainder. The error of a
source's share is therefore at most one document, which is what keeps realized shares within a fraction of a
percentage point at ~1M tokens (random per-document sampling at a rate would not).

The train/validation split is decided by a seeded hash of each document's *content* (of its id when the ledger
has no content hash), before copies are made: a document, its copies and any exact duplicate of its text under
another id always land in the same split.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import polars as pl


def _unit_hash(seed: int, salt: str, ids: list[str]) -> np.ndarray:
    """Stable (version-independent) hash of each id to [0, 1)."""
    prefix = f"{seed}:{salt}:".encode()
    out = np.empty(len(ids), dtype=np.float64)
    for i, doc_id in enumerate(ids):
        digest = hashlib.blake2b(prefix + doc_id.encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "little") / 2.0**64
    return out


@dataclass
class SourcePlan:
    name: str
    share_requested: float
    target_tokens: int
    documents_available: int
    tokens_available: int
    planned_documents: int
    planned_tokens: int
    full_epochs: int

    @property
    def epochs(self) -> float:
        return self.planned_tokens / self.tokens_available if self.tokens_available else 0.0


def resolve_budget(budget: int | None, shares: dict[str, float], available: dict[str, int]) -> int:
    """The recipe's budget, or else the largest total for which no source needs upsampling."""
    if budget:
        return int(budget)
    fits = [available[n] / s for n, s in shares.items() if s > 0]
    return int(min(fits))


def plan_source(
    ledger: pl.DataFrame, name: str, share: float, target_tokens: int, seed: int, validation_fraction: float
) -> tuple[pl.DataFrame, SourcePlan]:
    """Select documents of one source; returns the plan table (id, copies, split, tokens) and its summary."""
    ids = ledger["id"].to_list()
    tokens = ledger["tokens"].to_numpy().astype(np.int64)
    available = int(tokens.sum())
    if len(set(ids)) != len(ids):
        dupes = ledger.filter(pl.col("id").is_duplicated())["id"].unique().head(3).to_list()
        raise ValueError(f"source '{name}': document ids are not unique (e.g. {dupes}); the plan needs unique ids")
    copies = np.zeros(len(ids), dtype=np.int64)
    full = 0
    if target_tokens > 0 and available > 0:
        full = target_tokens // available
        copies[:] = full
        remainder = target_tokens - full * available
        order = np.argsort(_unit_hash(seed, f"sample:{name}", ids), kind="stable")
        csum = np.cumsum(tokens[order])
        # number of documents whose running sum is closest to the remainder
        k = int(np.searchsorted(csum, remainder))
        below = csum[k - 1] if k > 0 else 0  # what k documents give; k + 1 give csum[k]
        if k < len(csum) and abs(csum[k] - remainder) < abs(below - remainder):
            k += 1
        copies[order[:k]] += 1
    split_keys = ledger["content"].to_list() if "content" in ledger.columns else ids
    split = np.where(_unit_hash(seed, "validation", split_keys) < validation_fraction, "validation", "train")
    table = pl.DataFrame({"id": ids, "copies": copies, "split": split, "tokens": tokens}).filter(pl.col("copies") > 0)
    summary = SourcePlan(
        name=name,
        share_requested=share,
        target_tokens=int(target_tokens),
        documents_available=len(ids),
        tokens_available=available,
        planned_documents=int(copies.sum()),
        planned_tokens=int((copies * tokens).sum()),
        full_epochs=int(full),
    )
    return table, summary


def target_tokens(budget: int, shares: dict[str, float]) -> dict[str, int]:
    """Split the budget by share with largest-remainder rounding, so targets sum exactly to the budget."""
    raw = {n: budget * s for n, s in shares.items()}
    base = {n: math.floor(v) for n, v in raw.items()}
    left = budget - sum(base.values())
    for n in sorted(raw, key=lambda n: raw[n] - base[n], reverse=True)[:left]:
        base[n] += 1
    return base
