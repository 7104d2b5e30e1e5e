"""datatrove's ``GopherRepetitionFilter`` with its n-gram statistics computed without a Python-level join per n-gram.

Same decisions and reasons as datatrove 0.10.1's filter (``tests/test_filters.py`` compares them document by
document on real English and Chinese text, and the helper functions against datatrove's own).  datatrove builds each
n-gram with ``" ".join(words[i : i + n])`` / ``"".join(words[i : i + n])`` inside Python loops: about a third of the
English chain's time.  Here:

* the n-grams of one size come from ``map(str.join, zip(...))`` (C loops); the ``""``-joined n+1-grams are the
  n-grams plus the next word (``map(operator.add, ...)``), so each size costs one string concatenation per position;
* ``find_top_duplicate`` counts with ``Counter(iterable)`` (C); ties go to the first n-gram seen, as in datatrove's
  ``Counter.most_common(1)`` over the same insertion order;
* ``find_all_duplicate``: when no n-gram string occurs twice (``len(set(grams)) == len(grams)``) the repeated
  characters are 0 without walking; otherwise datatrove's walk (skip ``n`` after a repeat) runs on the prepared list,
  and stops as soon as the repeated characters already exceed the threshold (they only grow, so the decision is
  the same).
"""

from __future__ import annotations

import operator
from collections import Counter

from datatrove.data import Document
from datatrove.pipeline.filters.gopher_repetition_filter import GopherRepetitionFilter, find_duplicates
from datatrove.utils.text import split_into_words

__all__ = ["FastGopherRepetitionFilter", "joined_n_grams", "repeated_chars", "top_duplicate_chars"]


def joined_n_grams(words: list[str], n: int, sep: str) -> list[str]:
    """``[sep.join(words[i : i + n]) for i in range(len(words) - n + 1)]``, built in C loops."""
    if n <= 0:  # datatrove's slices: n <= 0 gives len(words) - n + 1 empty-ish slices; keep its exact behaviour
        return [sep.join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return list(map(sep.join, zip(*(words[k:] for k in range(n)))))


def top_duplicate_chars(n_grams: list[str]) -> int:
    """datatrove's ``find_top_duplicate``: characters of the most frequent n-gram times its count (first seen wins)."""
    top, count = Counter(n_grams).most_common(1)[0]
    return len(top) * count


def repeated_chars(grams: list[str], n: int, text_len: int = 1, stop_ratio: float | None = None) -> int:
    """datatrove's ``find_all_duplicate`` over ``grams`` (its ``"".join`` n-grams): characters of n-grams already
    seen, skipping ``n`` positions after each.  With ``stop_ratio``, returns as soon as ``count / text_len >
    stop_ratio`` (datatrove's own test; the count only grows, so the decision is the same)."""
    if len(set(grams)) == len(grams):
        return 0
    unique: set[str] = set()
    add = unique.add
    repeated, idx, end = 0, 0, len(grams)
    while idx < end:
        gram = grams[idx]
        if gram in unique:
            repeated += len(gram)
            if stop_ratio is not None and repeated / text_len > stop_ratio:
                return repeated
            idx += n
        else:
            add(gram)
            idx += 1
    return repeated


class FastGopherRepetitionFilter(GopherRepetitionFilter):
    """datatrove's ``GopherRepetitionFilter`` (same parameters, decisions and reasons), faster n-gram statistics."""

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        if not text:
            return False, "empty"

        paragraphs = self.paragraph_exp.split(text.strip())
        paragraphs_duplicates, char_duplicates = find_duplicates(paragraphs)
        if self.dup_para_frac and paragraphs_duplicates / len(paragraphs) > self.dup_para_frac:
            return False, "dup_para_frac"
        if self.dup_para_char_frac and char_duplicates / len(text) > self.dup_para_char_frac:
            return False, "dup_para_char_frac"

        lines = self._line_splitter.split(text)
        line_duplicates, char_duplicates = find_duplicates(lines)
        if self.dup_line_frac and line_duplicates / len(lines) > self.dup_line_frac:
            return False, "dup_line_frac"
        if self.dup_line_char_frac and char_duplicates / len(text) > self.dup_line_char_frac:
            return False, "dup_line_char_frac"

        words = split_into_words(text, self.language)
        for n, n_frac in self.top_n_grams:
            n_grams = joined_n_grams(words, n, " ")
            if n_grams and top_duplicate_chars(n_grams) / len(text) > n_frac:
                return False, f"top_{n}_gram"
        return self._dup_n_grams(words, len(text))

    def _dup_n_grams(self, words: list[str], text_len: int) -> bool | tuple[bool, str]:
        grams, grams_n = None, 0
        for n, n_frac in self.dup_n_grams:
            if grams is not None and n == grams_n + 1 and n > 1:
                grams = list(map(operator.add, grams, words[grams_n:]))  # the n-grams: (n-1)-gram + next word
            else:
                grams = joined_n_grams(words, n, "")
            grams_n = n
            count = repeated_chars(grams, n, text_len, stop_ratio=n_frac)
            if count / text_len > n_frac:
                return False, f"duplicated_{n}_n_grams"
        return True
