"""MinHash stage 1 with datatrove's signatures, faster: :class:`FastMinhashSignature`.

datatrove's ``MinhashDedupSignature`` spends most of its time splitting words, not hashing: every document goes
through spaCy inside ``memory_zone()`` (no tokenizer cache), and Chinese through spaCy's jieba segmenter, which builds
a spaCy ``Doc`` around jieba's words. The signature itself is one numpy expression. This stage keeps every input of
that computation — ``simplify_text`` with the same ``TextNormConfig``, the same words, the same n-grams joined by one
space, the same hash function and the same ``(a, b)`` permutation parameters from the same seed, the same uint64
arithmetic — and changes only how the words are found and how often the arithmetic runs:

* **Whitespace languages with spaCy's rule-based tokenizer** (English and most others): spaCy tokenizes every
  space-delimited chunk on its own (prefix / suffix / infix / special-case rules never look past a space), and
  ``simplify_text`` leaves single spaces only, so a text's words are the concatenation of its chunks' words. Each
  distinct chunk is tokenized by the real spaCy tokenizer once per process and remembered (:class:`ChunkWords`).
* **Chinese** (``cmn_Hani``): ``SharedWordTokenizer``'s jieba path (``pipelines/word_tokenizer.py``): jieba's own
  accurate-mode words without the spaCy ``Doc`` — the same words datatrove keeps.
* **Any other tokenizer** (Japanese, Thai, ...): datatrove's own, unchanged.
* ``simplify_text``'s last step (drop the combining marks, category ``Mn``, of the NFD form) is one
  ``str.translate`` deleting every ``Mn`` code point of this Python's ``unicodedata`` (nothing to do for ASCII
  text), instead of a per-character generator (:func:`simplify`).
* The n-grams are hashed by one C-level ``map`` over ``" ".join`` views, duplicates removed with ``np.unique``
  (the minimum over a set does not depend on repeats), then ``(shingles * a + b) % p`` as datatrove computes it.

``tests/test_dedup_signature.py`` and ``scripts/bench_dedup.py`` compare the signature files byte for byte with
datatrove's stage on real documents.
"""

from __future__ import annotations

import dataclasses
import sys
import unicodedata
from functools import lru_cache

import numpy as np
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature, _mersenne_prime
from datatrove.utils.text import simplify_text
from datatrove.utils.word_tokenizers import SpaCyTokenizer, load_tokenizer_assignments, strip_strings

from .word_tokenizer import SharedWordTokenizer, word_tokenizer_key

__all__ = ["ChunkWords", "FastMinhashSignature", "minhash_language", "shingle_words"]


@lru_cache(maxsize=1)
def _combining_marks() -> dict[int, None]:
    """``str.translate`` table deleting every code point of category ``Mn`` (this Python's unicodedata)."""
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Mn"}


def simplify(text: str, config) -> str:
    """``datatrove.utils.text.simplify_text(text, config)``, same result: the diacritics step done by a regex."""
    if not config.norm_unicode_diacritics:
        return simplify_text(text, config)
    text = simplify_text(text, dataclasses.replace(config, norm_unicode_diacritics=False))
    if text.isascii():  # NFD of ASCII is itself, and ASCII has no combining marks
        return text
    return unicodedata.normalize("NFD", text).translate(_combining_marks()).strip()


def minhash_language(language: str) -> str:
    """datatrove's word-tokenizer key for a source language: Chinese (any code) -> ``cmn_Hani`` (jieba words;
    datatrove's own ``zh`` key does not segment Chinese at all), else the language's own key."""
    return word_tokenizer_key(language)


class ChunkWords:
    """datatrove's ``SpaCyTokenizer.word_tokenize`` for text with single spaces, one spaCy call per distinct chunk.

    Exact for spaCy's rule-based tokenizer, which splits on spaces first and applies its rules to each chunk alone
    (other tokenizers are used whole). A chunk that is no special case and where no prefix, suffix or infix rule
    matches is one token, itself (spaCy's ``_split_affixes`` finds nothing to split and ``_attach_tokens`` no
    infix): those are taken as they are, without building a ``Doc``; every other chunk goes through spaCy. The memo
    holds at most ``max_chunks`` chunks (then starts again).
    """

    def __init__(self, key: str, max_chunks: int = 500_000):
        self.key = key
        self.max_chunks = max_chunks
        self._reset()

    def _reset(self) -> None:
        self._inner = None
        self._rules = None
        self._memo: dict[str, list[str]] = {}

    def __getstate__(self) -> dict:
        return {"key": self.key, "max_chunks": self.max_chunks}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()

    def _load(self) -> None:
        from spacy.tokenizer import Tokenizer as RuleTokenizer

        self._inner = load_tokenizer_assignments()[self.key]()
        if type(self._inner) is SpaCyTokenizer and self._inner.language not in ("zh", "ja"):
            rules = self._inner.tokenizer.tokenizer
            if type(rules) is RuleTokenizer:
                self._rules = rules
                self._special = rules.rules
                self._prefix, self._suffix = rules.prefix_search, rules.suffix_search
                self._infix = rules.infix_finditer

    def _is_one_token(self, chunk: str) -> bool:
        """No special case, and no prefix / suffix / infix rule matches anywhere: spaCy leaves the chunk whole."""
        if not chunk or chunk in self._special:
            return False
        for search in (self._prefix, self._suffix):
            if search is not None:
                m = search(chunk)
                if m is not None and m.end() > m.start():
                    return False
        return self._infix is None or next(iter(self._infix(chunk)), None) is None

    def __call__(self, text: str) -> list[str]:
        if self._inner is None:
            self._load()
        if self._rules is None:
            return self._inner.word_tokenize(text)
        memo = self._memo
        chunks = text.split(" ")
        missing = {c for c in chunks if c not in memo}
        if missing:
            if len(memo) + len(missing) > self.max_chunks:
                memo.clear()
            rest = []
            for chunk in missing:
                if self._is_one_token(chunk):
                    memo[chunk] = [chunk] if chunk.strip() else []
                else:
                    rest.append(chunk)
            if rest:
                # like datatrove, inside spaCy's memory zone: these chunks' strings do not stay in the vocab
                with self._inner.tokenizer.memory_zone():
                    for chunk in rest:
                        memo[chunk] = strip_strings([t.text for t in self._rules(chunk)])
        out: list[str] = []
        for chunk in chunks:
            out.extend(memo[chunk])
        return out


_SHARED: dict[str, object] = {}


def shingle_words(language: str, shared: bool = True):
    """The word split :class:`FastMinhashSignature` uses for ``language`` (same words as datatrove's): one per
    language and process when ``shared`` (a spaCy pipeline is loaded once, the chunk memo serves every task)."""
    key = minhash_language(language)
    if shared and key in _SHARED:
        return _SHARED[key]
    split = SharedWordTokenizer(key).word_tokenize if key == "cmn_Hani" else ChunkWords(key)
    if shared:
        _SHARED[key] = split
    return split


class FastMinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash stage 1 (same files, same signatures) with a faster word split and a vectorised
    signature; ``rank_offset`` names this task's files ``rank + rank_offset`` so that several sources can write
    into one signature folder (their documents are then deduplicated against each other by stage 2)."""

    name = "🎯 MinHash stage 1 (fast)"

    def __init__(self, output_folder, config: MinhashConfig | None = None, language: str = "en", rank_offset: int = 0,
                 shared_words: bool = True):
        super().__init__(output_folder, config=config, language=minhash_language(language))
        self.source_language = language
        self.rank_offset = rank_offset
        self.shared_words = shared_words
        self._split_words = None  # looked up in the worker (not pickled with the step)
        # datatrove's cached tokenizer object is shared per process; once another step has used it, it holds a
        # spaCy pipeline with the jieba module, which cannot be pickled to the executor's workers. Our
        # ``get_shingles`` never reads it.
        self.word_tokenizer = None
        self._xxh64 = self.config.hash_config.hash_fc == "xxhash" and self.config.hash_config.precision == 64

    @property
    def split_words(self):
        if self._split_words is None:
            self._split_words = shingle_words(self.source_language, self.shared_words)
        return self._split_words

    def get_shingles(self, text: str) -> np.ndarray:
        words = self.split_words(simplify(text, self.config.norm_config))
        n = self.config.n_grams
        if len(words) < n:
            return np.empty((0, 1), dtype=np.uint64)
        grams = map(" ".join, zip(*(words[i:] for i in range(n))))
        if self._xxh64:
            from xxhash import xxh64_intdigest

            hashes = map(xxh64_intdigest, grams)
        else:
            hashes = map(self._hash_func, grams)
        return np.fromiter(hashes, dtype=np.uint64, count=len(words) - n + 1).reshape((-1, 1))

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        a, b = self.parameters
        phv = (np.unique(shingles).reshape((-1, 1)) * a + b) % _mersenne_prime
        if self.config.hash_config.precision == 32:
            phv = np.bitwise_and(phv, self.config.hash_config.max)
        mins = np.min(phv, axis=0).astype(self.config.hash_config.np_dtype)
        return mins.reshape(self.config.num_buckets, self.config.hashes_per_bucket).tolist()

    def run(self, data, rank: int = 0, world_size: int = 1):
        return super().run(data, rank + self.rank_offset, world_size)
