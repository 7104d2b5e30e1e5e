"""datatrove's ``GopherQualityFilter`` with its per-word tests done once per distinct word.

Written by hand because datatrove has no faster variant: its filter tests every word of a document twice in
Python generator loops (``any(ch not in PUNCTUATION_SET for ch in w)`` for the symbol-only words,
``any(c.isalpha() for c in w)`` for the alphabetic ones), which costs more than the rest of the filter.  Here the
words are counted with ``collections.Counter`` (C) and each *distinct* word is tested once (and remembered per
process, ``memo_size`` words), then the counts are summed.  Same rules in the same order, same reasons; the mean
word length is ``sum / count`` of the same integers, which is what ``np.mean`` computes for them (an integer sum
below 2**53 is exact in float64, and both divide once, correctly rounded).  With the chain's shared word
tokenizer the words come from the split the repetition filter already made.

``tests/test_fast_paths.py`` compares its decisions and reasons with datatrove's filter on real documents.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.utils.text import PUNCTUATION_SET, split_into_words

__all__ = ["FastGopherQualityFilter", "gopher_document_checks"]


def gopher_document_checks(f: GopherQualityFilter, text: str, *, length_words: int, avg_word_length: float,
                           ratio_words: int, alpha_words: int, stop_words: Callable[[], int]) -> bool | tuple[bool, str]:
    """Gopher's document-level rules, in datatrove's order with its reasons, over counts the caller made.

    Callers differ only in how they count (datatrove 0.10.1 vs FineWeb's 2024 filter): ``length_words`` is the
    document length the length rules use, ``ratio_words`` the denominator of the hash / ellipsis / alphabetic
    ratios, ``alpha_words`` the words holding a letter, ``stop_words()`` (called last, only when reached) the
    stop-word count the rule compares."""
    if f.min_doc_words and length_words < f.min_doc_words:
        return False, "gopher_short_doc"
    if f.max_doc_words and length_words > f.max_doc_words:
        return False, "gopher_long_doc"
    if f.min_avg_word_length and avg_word_length < f.min_avg_word_length:
        return False, "gopher_below_avg_threshold"
    if f.max_avg_word_length and avg_word_length > f.max_avg_word_length:
        return False, "gopher_above_avg_threshold"
    if f.max_symbol_word_ratio and text.count("#") / ratio_words > f.max_symbol_word_ratio:
        return False, "gopher_too_many_hashes"
    if f.max_symbol_word_ratio and (text.count("...") + text.count("…")) / ratio_words > f.max_symbol_word_ratio:
        return False, "gopher_too_many_ellipsis"
    lines = text.splitlines()
    bullets = sum(s.lstrip().startswith("•") or s.lstrip().startswith("-") for s in lines)
    if f.max_bullet_lines_ratio and bullets / len(lines) > f.max_bullet_lines_ratio:
        return False, "gopher_too_many_bullets"
    ellipsis_lines = sum(s.rstrip().endswith("...") or s.rstrip().endswith("…") for s in lines)
    if f.max_ellipsis_lines_ratio and ellipsis_lines / len(lines) > f.max_ellipsis_lines_ratio:
        return False, "gopher_too_many_end_ellipsis"
    if f.max_non_alpha_words_ratio and alpha_words / ratio_words < f.max_non_alpha_words_ratio:
        return False, "gopher_below_alpha_threshold"
    if f.min_stop_words and stop_words() < f.min_stop_words:
        return False, "gopher_enough_stop_words"
    return True


class FastGopherQualityFilter(GopherQualityFilter):
    """datatrove's ``GopherQualityFilter`` (same parameters, decisions and reasons), per distinct word."""

    memo_size = 200_000
    _memo: dict[str, tuple[bool, bool]] = {}  # word -> (has a non-punctuation character, has an alphabetic one)

    def _word_kinds(self, word: str) -> tuple[bool, bool]:
        kinds = self._memo.get(word)
        if kinds is None:
            if len(self._memo) >= self.memo_size:
                self._memo.clear()
            kinds = self._memo[word] = (any(ch not in PUNCTUATION_SET for ch in word), any(c.isalpha() for c in word))
        return kinds

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        words = split_into_words(text, self.language)
        n_words = len(words)
        counts = Counter(words)
        n_non_symbol = non_symbol_chars = n_alpha = 0
        for word, count in counts.items():
            non_symbol, alpha = self._word_kinds(word)
            if non_symbol:
                n_non_symbol += count
                non_symbol_chars += count * len(word)
            if alpha:
                n_alpha += count

        avg_word_length = non_symbol_chars / n_non_symbol if n_non_symbol else float("nan")  # np.mean([]) is nan
        return gopher_document_checks(self, text, length_words=n_non_symbol, avg_word_length=avg_word_length,
                                      ratio_words=n_words, alpha_words=n_alpha,
                                      stop_words=lambda: len(self.stop_words.intersection(counts)))
