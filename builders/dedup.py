"""Exact and near-duplicate removal for conversations (first occurrence wins, in recipe source order).

Exact: a hash of every turn's role and normalised content (NFKC, case-folded, whitespace and punctuation removed),
so copies that differ only in spacing, case, full-/half-width forms or punctuation collapse.
Near: MinHash (datasketch) over character shingles of the normalised user+assistant text, LSH at a Jaccard
threshold; character shingles work for Chinese, which has no spaces.
"""

from __future__ import annotations

import hashlib
import unicodedata

import regex

from shardsmith.schemas.block_recipe import DedupFilter
from shardsmith.schemas.records import Conversation

_DROP = regex.compile(r"[\p{Z}\p{P}\p{C}\p{S}\s]+")  # separators, punctuation, control, symbols, whitespace


# ASCII text: NFKC changes nothing, casefold is lower(), and _DROP removes exactly the non-alphanumeric characters
# (tests/test_block_encode.py checks all 128) — str.translate does that several times faster than the regex
_ASCII_DROP = {c: None for c in range(128) if not chr(c).isalnum()}


def normalize_text(text: str) -> str:
    if text.isascii():
        return text.lower().translate(_ASCII_DROP)
    return _DROP.sub("", unicodedata.normalize("NFKC", text).casefold())


def conversation_key(conv: Conversation) -> str:
    h = hashlib.blake2b(digest_size=16)
    for m in conv.messages:
        h.update(m.role.encode())
        h.update(b"\x1f")
        h.update(normalize_text(m.content).encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()


class Deduper:
    """Stateful: ``check(conv)`` returns None for a first occurrence (and remembers it), else (reason, detail)."""

    def __init__(self, spec: DedupFilter, seed: int = 1):
        self.spec = spec
        self.seen: dict[str, str] = {}
        self.lsh = None
        if spec.near:
            from datasketch import MinHashLSH

            self.lsh = MinHashLSH(threshold=spec.threshold, num_perm=spec.num_perm)
            self._seed = seed
            self._n = 0

    def _minhash(self, text: str):
        from datasketch import MinHash

        k = self.spec.shingle
        shingles = {text[i : i + k] for i in range(max(1, len(text) - k + 1))} or {""}
        mh = MinHash(num_perm=self.spec.num_perm, seed=self._seed)
        mh.update_batch([s.encode("utf-8") for s in shingles])
        return mh

    def check(self, conv: Conversation, scope_key: str = "", key: str | None = None) -> tuple[str, str] | None:
        """``key``: ``conversation_key(conv)`` when the caller computed it already."""
        if self.spec.exact:
            key = scope_key + (key if key is not None else conversation_key(conv))
            if key in self.seen:
                return "duplicate", f"same normalised text as {self.seen[key]}"
        if self.lsh is not None:
            text = normalize_text(" ".join(m.content for m in conv.messages if m.role != "system"))
            mh = self._minhash(text)
            hits = [h for h in self.lsh.query(mh) if h.startswith(scope_key + "\x00")]
            if hits:
                return "near_duplicate", f"estimated Jaccard >= {self.spec.threshold} with {hits[0].split(chr(0), 1)[1]}"
            self._n += 1
            self.lsh.insert(f"{scope_key}\x00{conv.source}/{conv.id}#{self._n}", mh)
        if self.spec.exact:
            self.seen[key] = f"{conv.source}/{conv.id}"
        return None


__all__ = ["Deduper", "conversation_key", "normalize_text"]
