"""The mix recipe's ``dedup:`` section: exact and MinHash document dedup (and optional sentence-span dedup).

On by default. Which copy of a duplicate is kept follows ``keep``: ``order`` (the source listed first in the recipe,
then the earlier document of a source) or ``tier`` (the source whose ``tier`` comes first in ``tier_order``, then
recipe order). ``scope: mix`` finds duplicates across every source of the mix; ``scope: source`` only inside each.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .common import Strict

DedupKeep = Literal[
    "order",  # the source listed first in the recipe keeps the document
    "tier",  # the source whose tier comes first in `tier_order` keeps it (ties: recipe order)
]
DedupScope = Literal[
    "mix",  # across all sources of the mix (and within each)
    "source",  # within each source only
]


class MinhashSpec(Strict):
    """datatrove's MinHash near-duplicate detection; FineWeb's parameters by default (5-grams, 14 buckets x 8 hashes:
    pairs with Jaccard similarity 0.8 are found with probability 0.92, 0.72 is the 50 % point)."""

    enabled: bool = True
    n_grams: int = Field(5, ge=1, le=64, description="shingle size in words (Chinese: jieba words)")
    num_buckets: int = Field(14, ge=1, le=256)
    hashes_per_bucket: int = Field(8, ge=1, le=64)
    seed: int = Field(1, description="seed of the hash permutations")


class SentenceDedupSpec(Strict):
    """C4-style span dedup (datatrove's SentenceDedup): spans of ``n_sentences`` sentences seen earlier in the mix
    are cut out of later documents. Off by default; applies to the sources named in ``sources`` (default: the web
    kinds)."""

    enabled: bool = False
    n_sentences: int = Field(3, ge=1, le=32)
    min_doc_words: int = Field(50, ge=0, description="a document left with fewer words is dropped")
    sources: list[str] | None = Field(None, description="source names (default: every source of a web kind)")


class DedupSpec(Strict):
    enabled: bool = Field(True, description="false: no dedup at all (the manifest says so)")
    exact: bool = Field(True, description="drop documents whose case- and whitespace-normalised text is seen before")
    minhash: MinhashSpec = Field(default_factory=MinhashSpec)
    sentences: SentenceDedupSpec = Field(default_factory=SentenceDedupSpec)
    scope: DedupScope = "mix"
    keep: DedupKeep = "order"
    tier_order: list[str] = Field(
        default_factory=lambda: ["high", "medium", "low"], description="keep: tier — best tier first"
    )
    skip_sources: list[str] = Field(default_factory=list, description="sources left out of dedup (kept whole)")
