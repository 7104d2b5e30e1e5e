"""Per-source filter chains: recipe ``filters`` -> configured datatrove steps, with rejected-document writers.

``build_filter_steps(source, rejected_dir)`` returns ``[(step_name, PipelineStep), ...]`` in order, where
``step_name`` is the recipe's ``FilterStep`` literal.

Defaults (``filters: default``) per ``source.language``:

* **en**: the FineWeb recipe (huggingface/datatrove:examples/fineweb.py): language en > 0.65, url, gopher_repetition,
  gopher_quality, c4_quality (``filter_no_terminal_punct=False``), fineweb_quality; datatrove's default thresholds.
* **zh**: FineWeb-2's ``cmn_Hani`` settings (huggingface/fineweb-2:configs/cmn_Hani.yml, "paper version" d331bee):
  opencc_t2s, language zh > 0.69 (FineWeb-2's 0.692 was on GlotLID; on the bundled ft176 model real Chinese web
  text scores 0.97-1.0 and what falls under 0.69 is markdown/menu junk), cjk_ratio, min_chars, symbol_ratio,
  spam_phrases, gopher_repetition / gopher_quality / fineweb_quality with the cmn_Hani thresholds and stop words,
  jieba word splitting (``cmn_Hani``; datatrove's key ``zh`` silently means a tokenizer that does not segment
  Chinese); no C4 filter (FineWeb-2 dropped it for non-English).

``filters: none`` -> ``[]``.  An explicit list takes each step's defaults for the source's language, overridden by
``params``; an unknown step param raises ``ValueError`` naming the source, the step and the param.  Params are the
datatrove/zh_filters constructor arguments, plus: ``language``: ``languages``, ``threshold`` (or
``language_threshold``), ``model_path``, ``backend``; ``url``: ``require_url`` (default False: documents without a
url pass); word-level steps: ``word_tokenizer`` (a language code for the word splitter, default the source's).

Speed: the word-level filters share one :class:`SharedWordTokenizer` (passed as their ``language``, which datatrove
accepts as a ``WordTokenizer`` instance), so each document is split into words once instead of once per filter.
"""

from __future__ import annotations

import inspect
import re
from bisect import bisect_left
from collections import Counter, OrderedDict, deque
from contextlib import nullcontext
from types import MethodType
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
    URLFilter,
)
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.word_tokenizers import (
    SpaCyTokenizer,
    WordTokenizer,
    load_tokenizer_assignments,
    strip_strings,
)

from ..schemas.mix_recipe import FilterSpec, SourceSpec
from .lid import make_language_filter
from .zh_filters import DETAIL_KEY, CJKRatioFilter, MinCharsFilter, OpenCCT2S, SpamPhraseFilter, SymbolRatioFilter

__all__ = [
    "DEFAULT_CHAINS",
    "RejectedJsonlWriter",
    "RejectedRecordAdapter",
    "SharedWordTokenizer",
    "build_filter_steps",
    "word_tokenizer_key",
]

# --------------------------------------------------------------------------------------------------------------------
# Shared, memoizing word tokenizer
# --------------------------------------------------------------------------------------------------------------------

_ZH_CODES = {"zh", "zho", "chi", "cmn", "zh_hani", "zh_hans", "zh_hant", "zh-cn", "zh-hans", "zh-hant", "zho_hani"}


def word_tokenizer_key(language: str) -> str:
    """datatrove word-tokenizer key for a language code; every Chinese code maps to ``cmn_Hani`` (jieba).

    datatrove's ``"zh"`` key resolves to ``SpaCyTokenizer("xx")`` (its CSV loader lets a later ``hak,zh,...,xx`` row
    win), which does not segment Chinese at all: a paragraph becomes 2 "words" and Gopher drops it as too short.
    """
    key = "cmn_Hani" if language.lower() in _ZH_CODES else language
    if key not in load_tokenizer_assignments():
        raise ValueError(f"no datatrove word tokenizer for language {language!r}")
    return key


class _Analysis:
    """One spaCy pass over a text: token offsets and sentence starts (plain ints, no spaCy objects kept)."""

    __slots__ = ("text", "starts", "ends", "sent_starts", "_lines")

    def __init__(self, text: str, starts: list[int], ends: list[int], sent_starts: list[bool]):
        self.text = text
        self.starts = starts
        self.ends = ends
        self.sent_starts = sent_starts
        self._lines: dict[str, tuple[int, int]] | None = None

    def result(self, lo: int = 0, hi: int | None = None, offset: int = 0):
        """words, sentences and sentence spans of tokens ``lo:hi``, as spaCy would give for that text alone."""
        hi = len(self.starts) if hi is None else hi
        text, starts, ends, ss = self.text, self.starts, self.ends, self.sent_starts
        words = strip_strings([text[starts[i] : ends[i]] for i in range(lo, hi)])
        spans: list[tuple[int, int]] = []
        if hi > lo:
            first = lo
            for i in range(lo + 1, hi):
                if ss[i]:
                    spans.append((starts[first] - offset, ends[i - 1] - offset))
                    first = i
            spans.append((starts[first] - offset, ends[hi - 1] - offset))
        sents = strip_strings([text[a + offset : b + offset] for a, b in spans])
        return words, sents, spans

    def line(self, line: str):
        """Results for ``line`` if it is one of this text's lines (``str.splitlines`` + ``strip``), else None.

        spaCy tokenizes whitespace-delimited chunks independently, and the sentencizer's state is reset by the
        whitespace token between two lines, so a line's tokens and sentence starts inside the whole text are exactly
        those of the line tokenized alone.
        """
        if self._lines is None:
            self._lines = {}
            pos = 0
            for m in _LINE_BREAK.finditer(self.text + "\n"):
                raw = self.text[pos : m.start()]
                stripped = raw.strip()
                if stripped and stripped not in self._lines:
                    a = pos + (len(raw) - len(raw.lstrip()))
                    self._lines[stripped] = (a, a + len(stripped))
                pos = m.end()
        span = self._lines.get(line)
        if span is None:
            return None
        a, b = span
        lo = bisect_left(self.starts, a)
        hi = bisect_left(self.starts, b)
        return self.result(lo, hi, offset=a)


# the line boundaries of str.splitlines()
_LINE_BREAK = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class SharedWordTokenizer(WordTokenizer):
    """A memoizing wrapper around datatrove's word tokenizer for one language, shared by a chain's filters.

    Results are exactly those of datatrove's tokenizer for the same key (``tests/test_filters.py`` checks word,
    sentence and span lists and whole-chain decisions against bare datatrove on real data).

    * The last ``cache_size`` texts' ``word_tokenize`` / ``sent_tokenize`` / ``span_tokenize`` results are kept,
      keyed by the text.  (datatrove's own ``split_into_parts`` has an ``lru_cache(5)``, but C4QualityFilter's
      per-line sentence splits flush it.)
    * For spaCy's rule-based tokenizer (English and other whitespace languages; not jieba/Chinese, not Japanese),
      one pass of spaCy's tokenizer gives all three results, read with ``Doc.to_array`` instead of building a
      Python ``Token`` per word (the sentencizer's rule is applied to those arrays), and three exact shortcuts
      apply:

      - **spaCy's chunk cache.** datatrove tokenizes inside ``memory_zone()`` (to bound memory), where spaCy
        never caches, so every word is re-analysed by the prefix/suffix/infix rules.  Here the first
        ``warm_chars`` characters a process sees are tokenized outside the zone, which fills spaCy's own cache of
        "whitespace-delimited chunk -> tokens" (capped at ``spacy_cache_size`` entries: bounded memory); later
        texts are tokenized in the zone, as datatrove does, and hit that cache.
      - **Lines from the document.** C4QualityFilter sentence-splits every line of a document that the Gopher
        filters have just tokenized whole; a line's tokens and sentence starts are read off that pass.
      - **Rejoined lines.** C4QualityFilter rewrites the document as ``"\\n".join(kept_lines)``; the words of that
        text (FineWebQualityFilter) are the concatenation of the lines' words.
    * For Chinese (``cmn_Hani``: spaCy's ``ChineseTokenizer`` with jieba) ``word_tokenize`` calls jieba and
      ``spacy.util.get_words_and_spaces`` exactly as spaCy does, without building the ``Doc`` (lexemes, tokens,
      sentencizer: about two thirds of datatrove's time there).  Sentences go to the real tokenizer.

    Equal-configured instances compare and hash equal: datatrove's ``load_word_tokenizer`` (an unbounded
    ``lru_cache``) then maps every copy made by pickling/deep-copying onto one live instance per process, so there
    is one spaCy pipeline per language per process and that cache does not grow.  Pickling drops the loaded
    tokenizer and all caches; they are rebuilt lazily in the worker.
    """

    def __init__(
        self,
        language: str,
        cache_size: int = 4,
        warm_chars: int = 2_000_000,
        spacy_cache_size: int = 50_000,
        fast_paths: bool = True,
        max_line_chars: int = 1_000_000,
    ):
        super().__init__(word_tokenizer_key(language))
        self.cache_size = cache_size
        self.warm_chars = warm_chars
        self.spacy_cache_size = spacy_cache_size
        self.fast_paths = fast_paths
        self.max_line_chars = max_line_chars
        self._reset()

    # -- identity / pickling ------------------------------------------------------------------------------------------
    _CONFIG = ("language", "cache_size", "warm_chars", "spacy_cache_size", "fast_paths", "max_line_chars")

    def _config(self) -> tuple:
        return (type(self).__name__, *(getattr(self, k) for k in self._CONFIG))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SharedWordTokenizer) and self._config() == other._config()

    def __hash__(self) -> int:
        return hash(self._config())

    def __repr__(self) -> str:
        return f"SharedWordTokenizer({self.language!r})"

    def __getstate__(self) -> dict:
        return {k: self.__dict__[k] for k in self._CONFIG}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()

    def _reset(self) -> None:
        self._inner: WordTokenizer | None = None
        self._spacy_rules = False
        self._jieba = None
        self._punct_chars: frozenset[str] = frozenset()
        self._words: OrderedDict[str, list[str]] = OrderedDict()
        self._sents: OrderedDict[str, list[str]] = OrderedDict()
        self._spans: OrderedDict[str, list[tuple[int, int]]] = OrderedDict()
        self._recent: deque[_Analysis] = deque(maxlen=self.cache_size)
        self._lines: dict[str, tuple[list[str], list[str], list[tuple[int, int]]]] = {}
        self._line_chars = 0
        self._warmed = 0
        self.counts: Counter = Counter()  # spacy_pass / tokenize, from_line, assembled, hit_*

    # -- the real tokenizer -------------------------------------------------------------------------------------------
    @property
    def inner(self) -> WordTokenizer:
        if self._inner is None:
            # a fresh instance (not datatrove's process-wide one), so warming its cache touches nothing else
            inner = load_tokenizer_assignments()[self.language]()
            self._spacy_rules = False
            self._jieba = None
            if self.fast_paths and type(inner) is SpaCyTokenizer and inner.language == "zh":
                from spacy.lang.zh import ChineseTokenizer, Segmenter

                zh_tok = inner.tokenizer.tokenizer
                if type(zh_tok) is ChineseTokenizer and zh_tok.segmenter == Segmenter.jieba:
                    self._jieba = zh_tok.jieba_seg
            if self.fast_paths and type(inner) is SpaCyTokenizer and inner.language != "ja":
                from spacy.tokenizer import Tokenizer as RuleTokenizer

                nlp = inner.tokenizer
                if type(nlp.tokenizer) is RuleTokenizer and nlp.pipe_names == ["sentencizer"]:
                    nlp.tokenizer.max_cache_size = max(nlp.tokenizer.max_cache_size, self.spacy_cache_size)
                    sentencizer = nlp.get_pipe("sentencizer")
                    self._punct_chars = frozenset(sentencizer.punct_chars)
                    self._spacy_rules = True
            self._inner = inner
        return self._inner

    def _remember(self, text: str, words, sents, spans) -> None:
        for cache, value in ((self._words, words), (self._sents, sents), (self._spans, spans)):
            if value is None:
                continue
            cache[text] = value
            if len(cache) > self.cache_size:
                cache.popitem(last=False)

    def _spacy_pass(self, text: str) -> _Analysis | None:
        """Tokens and sentence starts of ``text``, as datatrove's ``SpaCyTokenizer`` gets them, without building a
        Python ``Token`` per word.

        datatrove runs ``nlp(text)`` = tokenizer + sentencizer; here the tokenizer runs (``nlp.make_doc``, same
        ``max_length``) and token offsets are read with ``Doc.to_array``; the sentencizer's rule (spaCy 3.x
        ``Sentencizer.predict``: a sentence starts at the first token that is neither punctuation nor one of its
        ``punct_chars`` after a token in ``punct_chars``) is applied to those arrays with the pipe's own
        ``punct_chars``.  Returns None for texts containing ``IS_ALPHA`` (datatrove retries those with the string
        removed), which take the slow path.
        """
        if "IS_ALPHA" in text:
            return None
        from spacy.attrs import IDX, IS_PUNCT, LENGTH

        inner = self.inner
        nlp = inner.tokenizer
        warming = self._warmed < self.warm_chars
        with nlp.memory_zone() if not warming else nullcontext():
            nlp.max_length = len(text) + 10
            doc = nlp.make_doc(text)
            if len(doc):
                starts, lengths, is_punct = doc.to_array([IDX, LENGTH, IS_PUNCT]).T.tolist()
            else:
                starts, lengths, is_punct = [], [], []
        if warming:
            self._warmed += len(text)
        self.counts["spacy_pass"] += 1
        ends = [s + n for s, n in zip(starts, lengths)]
        return _Analysis(text, starts, ends, self._sentence_starts(text, starts, ends, is_punct))

    def _sentence_starts(self, text: str, starts: list[int], ends: list[int], is_punct: list[int]) -> list[bool]:
        punct_chars = self._punct_chars
        n = len(starts)
        guesses = [False] * n
        if n:
            start = 0
            seen_period = False
            guesses[0] = True
            for i in range(n):
                in_punct_chars = text[starts[i] : ends[i]] in punct_chars
                if seen_period and not is_punct[i] and not in_punct_chars:
                    guesses[start] = True
                    start = i
                    seen_period = False
                elif in_punct_chars:
                    seen_period = True
            if start < n:
                guesses[start] = True
        return guesses

    def _jieba_words(self, text: str) -> list[str]:
        """datatrove's word split for ``cmn_Hani`` without building a spaCy ``Doc``.

        spaCy's ``ChineseTokenizer`` (jieba segmenter) makes its tokens with ``jieba.cut(text, cut_all=False)``
        and ``spacy.util.get_words_and_spaces``; datatrove keeps ``strip_strings`` of the token texts.  Same calls,
        same jieba object, minus the ``Doc``, lexeme and sentencizer work (about 2/3 of the time).
        """
        from spacy.util import get_words_and_spaces

        self.counts["jieba"] += 1
        pieces = [x for x in self._jieba.cut(text, cut_all=False) if x]
        return strip_strings(get_words_and_spaces(pieces, text)[0])

    @staticmethod
    def _is_line(text: str) -> bool:
        return "\n" not in text and "\r" not in text

    def _store_line(self, text: str, result) -> None:
        # bounded by characters: the lines of the current document are all that is needed (C4 -> FineWeb)
        if self._line_chars + len(text) > self.max_line_chars:
            self._lines.clear()
            self._line_chars = 0
        if len(text) <= self.max_line_chars:
            self._lines[text] = result
            self._line_chars += len(text)

    def _line_result(self, text: str):
        """All three results for a one-line text, from the line cache or from a recent document's pass."""
        got = self._lines.get(text)
        if got is not None:
            self.counts["hit_line"] += 1
            return got
        for analysis in reversed(self._recent):
            got = analysis.line(text)
            if got is not None:
                self.counts["from_line"] += 1
                self._store_line(text, got)
                return got
        return None

    def _fill(self, text: str) -> bool:
        """Compute and cache all three results for ``text``; False if only the slow path can do it."""
        is_line = self._is_line(text)
        got = self._line_result(text) if is_line else None
        if got is None:
            analysis = self._spacy_pass(text)
            if analysis is None:
                return False
            got = analysis.result()
            if is_line:
                self._store_line(text, got)
            else:
                self._recent.append(analysis)
        self._remember(text, *got)
        return True

    def _assemble_from_lines(self, text: str) -> list[str] | None:
        """Words of a multi-line text whose every non-blank line is known (C4's ``"\n".join(kept_lines)``)."""
        if "\n" not in text:
            return None
        parts = text.split("\n")
        out: list[str] = []
        for part in parts:
            stripped = part.strip()
            if not stripped:
                continue  # whitespace only: no words
            got = self._line_result(part) if self._is_line(part) else None
            if got is None and stripped != part and self._is_line(stripped):
                got = self._line_result(stripped)  # surrounding whitespace only adds whitespace tokens
            if got is None:
                return None
            out.extend(got[0])
        self.counts["assembled"] += 1
        return out

    def _get(self, kind: str, text: str):
        cache = {"words": self._words, "sents": self._sents, "spans": self._spans}[kind]
        got = cache.get(text)
        if got is not None:
            cache.move_to_end(text)
            self.counts[f"hit_{kind}"] += 1
            return list(got)
        inner = self.inner
        if self._jieba is not None and kind == "words":
            words = self._jieba_words(text)
            self._remember(text, words, None, None)
            return list(words)
        if self._spacy_rules:
            if kind == "words":
                words = self._assemble_from_lines(text)
                if words is not None:
                    self._remember(text, words, None, None)
                    return list(words)
            if self._fill(text):
                return list(cache[text])
        # slow path: the real tokenizer's own method
        self.counts["tokenize"] += 1
        value = {"words": inner.word_tokenize, "sents": inner.sent_tokenize, "spans": inner.span_tokenize}[kind](text)
        value = list(value)
        self._remember(text, *(value if k == kind else None for k in ("words", "sents", "spans")))
        return list(value)

    # -- WordTokenizer API --------------------------------------------------------------------------------------------
    def word_tokenize(self, text: str) -> list[str]:
        return self._get("words", text)

    def sent_tokenize(self, text: str) -> list[str]:
        return self._get("sents", text)

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return self._get("spans", text)


# --------------------------------------------------------------------------------------------------------------------
# Rejected-document records
# --------------------------------------------------------------------------------------------------------------------


class RejectedRecordAdapter:
    """``JsonlWriter`` adapter: ``{"id", "text", "reason", "source", "metadata"}`` for each dropped document.

    ``reason`` is datatrove's ``filter_reason`` (plus the measured value our own filters leave in
    ``metadata["filter_detail"]``).  datatrove's LanguageFilter gives no reason, so one is synthesised from the
    ``language`` / ``language_score`` metadata it sets, e.g. ``language fr (0.93) not in ['en'] (threshold 0.65)``.
    """

    def __init__(self, source: str, step: str, languages: list[str] | None = None, threshold: float | None = None):
        self.source = source
        self.step = step
        self.languages = languages
        self.threshold = threshold

    def language_reason(self, metadata: dict) -> str:
        lang = metadata.get("language")
        if "language_script" in metadata:  # GlotLID: cmn + Hani
            lang = f"{lang}_{metadata['language_script']}"
        score = metadata.get("language_score")
        score_s = f"{score:.2f}" if isinstance(score, (int, float)) else "?"
        if self.languages is not None and lang in self.languages:
            return f"language {lang} ({score_s}) below threshold {self.threshold}"
        return f"language {lang} ({score_s}) not in {self.languages} (threshold {self.threshold})"

    def __call__(self, writer, document: Document) -> dict:
        metadata = dict(document.metadata)
        reason = metadata.pop("filter_reason", None)
        detail = metadata.pop(DETAIL_KEY, None)
        if reason is None:
            reason = self.language_reason(metadata) if self.step == "language" else f"dropped by {self.step}"
        elif detail:
            reason = f"{reason}: {detail}"
        return {
            "id": document.id,
            "text": document.text,
            "reason": reason,
            "source": self.source,
            "metadata": metadata,
        }


class RejectedJsonlWriter(JsonlWriter):
    """A ``JsonlWriter`` with a :class:`RejectedRecordAdapter`, picklable with plain ``pickle`` too.

    datatrove binds ``adapter`` to the writer as a method, which dill/cloudpickle (its executors) handle but the
    standard pickler does not; the bound method is dropped from the state and re-bound on load.
    """

    def __init__(self, output_folder: str, adapter: RejectedRecordAdapter, output_filename: str = "${rank}.jsonl.gz"):
        super().__init__(output_folder, output_filename=output_filename, adapter=adapter)
        self.record_adapter = adapter

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("adapter", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.adapter = MethodType(self.record_adapter, self)


def _rejected_writer(rejected_dir: str, source: str, folder: str, adapter: RejectedRecordAdapter) -> JsonlWriter:
    return RejectedJsonlWriter(f"{rejected_dir}/{source}/{folder}", adapter=adapter)


# --------------------------------------------------------------------------------------------------------------------
# URL filter that tolerates sources without urls
# --------------------------------------------------------------------------------------------------------------------


class OptionalURLFilter(URLFilter):
    """datatrove ``URLFilter`` (UT1 block lists shipped with datatrove) for sources that may lack urls.

    Documents without ``metadata["url"]`` pass (counted as stat ``no_url``) unless ``require_url``; datatrove's
    own filter asserts.  The public-suffix list is tldextract's bundled snapshot: no network fetch.
    """

    def __init__(self, require_url: bool = False, **kwargs):
        super().__init__(**kwargs)
        from tldextract import TLDExtract

        self.require_url = require_url
        self.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)

    # The UT1 lists take ~5 s to load and datatrove loads them again in every task's copy of the step; one
    # process keeps one read-only copy per configuration instead.
    _loaded: dict[tuple, tuple] = {}
    _LISTS = ("block_listed_domains", "block_listed_url", "banned_words", "banned_subwords", "soft_banned_words")

    def download_data(self):
        if self._downloaded or not self.use_integrated_lists:
            return
        key = tuple(frozenset(getattr(self, name)) for name in self._LISTS)
        cached = OptionalURLFilter._loaded.get(key)
        if cached is None:
            super().download_data()
            OptionalURLFilter._loaded[key] = tuple(getattr(self, n) for n in self._LISTS) + (
                self.banned_subwords_automaton,
            )
            return
        *lists, self.banned_subwords_automaton = cached
        for name, value in zip(self._LISTS, lists):
            setattr(self, name, value)
        self._downloaded = True

    def filter(self, document: Document) -> bool | tuple[bool, str]:
        if not document.metadata.get("url"):
            if self.require_url:
                return False, "no_url"
            self.stat_update("no_url")
            return True
        return super().filter(document)


# --------------------------------------------------------------------------------------------------------------------
# Step factories and defaults
# --------------------------------------------------------------------------------------------------------------------

# huggingface/fineweb-2 configs/cmn_Hani.yml at d331bee ("updated configs with paper version", 2025-06-16)
CMN_HANI = {
    "dup_line_frac": 0.287,
    "dup_n_grams": ((5, 0.198), (6, 0.182), (7, 0.167), (8, 0.154), (9, 0.14), (10, 0.127)),
    "language_score": 0.692,  # GlotLID score; see ZH_LANGUAGE_THRESHOLD
    "line_punct_thr": 0.106,
    "max_avg_word_length": 5,
    "max_non_alpha_words_ratio": 0.735,
    "min_avg_word_length": 1,
    "new_line_ratio": 0.178,
    "stopwords": (
        "的", "年", "在", "月", "是", "和", "日", "了", "於", "·", "為",
        "有", "被", "人", "中", "为", "他", "與", "後", "也", "而", "由",
    ),
    "top_n_grams": ((2, 0.256), (3, 0.201), (4, 0.171)),
}  # fmt: skip
ZH_LANGUAGE_THRESHOLD = 0.69

# per-language defaults for each step's params (merged over the generic ones below)
_STEP_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "en": {
        "language": {"languages": ["en"], "threshold": 0.65},
        "c4_quality": {"filter_no_terminal_punct": False},
    },
    "zh": {
        "language": {"languages": ["zh"], "threshold": ZH_LANGUAGE_THRESHOLD},
        "cjk_ratio": {"min_ratio": 0.3},
        "min_chars": {"min_chars": 100},
        "symbol_ratio": {"max_ratio": 0.4},
        "gopher_repetition": {
            # FineWeb-2 disables the paragraph and line-char checks and tunes the rest per language
            "dup_para_frac": 0,
            "dup_line_char_frac": 0,
            "dup_para_char_frac": 0,
            "dup_line_frac": CMN_HANI["dup_line_frac"],
            "top_n_grams": CMN_HANI["top_n_grams"],
            "dup_n_grams": CMN_HANI["dup_n_grams"],
        },
        "gopher_quality": {
            "min_avg_word_length": CMN_HANI["min_avg_word_length"],
            "max_avg_word_length": CMN_HANI["max_avg_word_length"],
            "max_non_alpha_words_ratio": CMN_HANI["max_non_alpha_words_ratio"],
            "stop_words": list(CMN_HANI["stopwords"]),
            "min_stop_words": 2,
        },
        "fineweb_quality": {
            "short_line_thr": 999,  # disabled in FineWeb-2
            "char_duplicates_ratio": 0.1,  # FineWeb-2 raised it from 0.01
            "line_punct_thr": CMN_HANI["line_punct_thr"],
            "new_line_ratio": CMN_HANI["new_line_ratio"],
        },
    },
}
_GENERIC_DEFAULTS: dict[str, dict[str, Any]] = {
    "language": {"threshold": 0.65},
    "c4_quality": {"filter_no_terminal_punct": False},
}

DEFAULT_CHAINS: dict[str, tuple[str, ...]] = {
    "en": ("language", "url", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality"),
    "zh": (
        "opencc_t2s",
        "language",
        "cjk_ratio",
        "min_chars",
        "symbol_ratio",
        "spam_phrases",
        "gopher_repetition",
        "gopher_quality",
        "fineweb_quality",
    ),
}

_WORD_CLASSES = {
    "gopher_repetition": GopherRepetitionFilter,
    "gopher_quality": GopherQualityFilter,
    "c4_quality": C4QualityFilter,
    "fineweb_quality": FineWebQualityFilter,
}
_SIMPLE_CLASSES = {
    "cjk_ratio": CJKRatioFilter,
    "min_chars": MinCharsFilter,
    "length": MinCharsFilter,
    "symbol_ratio": SymbolRatioFilter,
    "spam_phrases": SpamPhraseFilter,
}


def _init_params(cls: type, exclude: tuple[str, ...] = ("exclusion_writer", "language")) -> set[str]:
    sig = inspect.signature(cls.__init__)
    return {
        n
        for n, p in sig.parameters.items()
        if n != "self" and n not in exclude and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


_URL_PARAMS = _init_params(URLFilter) | {"require_url"}
ALLOWED_PARAMS: dict[str, set[str]] = {
    "language": {"languages", "threshold", "language_threshold", "model_path", "backend"},
    "url": _URL_PARAMS,
    "opencc_t2s": {"config"},
    **{step: _init_params(cls) | {"word_tokenizer"} for step, cls in _WORD_CLASSES.items()},
    **{step: _init_params(cls) for step, cls in _SIMPLE_CLASSES.items() if step != "length"},
    "length": {"min_chars", "max_chars"},
}


def _tuples(pairs) -> tuple[tuple[int, float], ...]:
    return tuple((int(n), float(f)) for n, f in pairs)


class _Builder:
    def __init__(self, source: SourceSpec, rejected_dir: str | None):
        self.source = source
        self.rejected_dir = rejected_dir.rstrip("/") if rejected_dir else None
        self.lang_key = "zh" if source.language.lower() in _ZH_CODES else source.language
        self._tokenizers: dict[str, SharedWordTokenizer] = {}
        self._folders: Counter = Counter()

    def where(self, step: str) -> str:
        return f"source {self.source.name!r}, filter step {step!r}"

    def tokenizer(self, language: str) -> SharedWordTokenizer:
        key = word_tokenizer_key(language)
        if key not in self._tokenizers:
            self._tokenizers[key] = SharedWordTokenizer(key)
        return self._tokenizers[key]

    def writer(self, step: str, **adapter_kw) -> JsonlWriter | None:
        if not self.rejected_dir:
            return None
        self._folders[step] += 1
        folder = step if self._folders[step] == 1 else f"{step}_{self._folders[step]}"
        adapter = RejectedRecordAdapter(self.source.name, step, **adapter_kw)
        return _rejected_writer(self.rejected_dir, self.source.name, folder, adapter)

    def params(self, spec: FilterSpec) -> dict[str, Any]:
        step = spec.step
        allowed = ALLOWED_PARAMS[step]
        unknown = sorted(set(spec.params) - allowed)
        if unknown:
            raise ValueError(
                f"{self.where(step)}: unknown param {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        if step == "language" and {"threshold", "language_threshold"} <= set(spec.params):
            raise ValueError(f"{self.where(step)}: give `threshold` or `language_threshold`, not both")
        merged = dict(_GENERIC_DEFAULTS.get(step, {}))
        merged.update(_STEP_DEFAULTS.get(self.lang_key, {}).get(step, {}))
        merged.update(spec.params)
        return merged

    def build(self, spec: FilterSpec) -> PipelineStep:
        step = spec.step
        p = self.params(spec)
        try:
            return self._make(step, p)
        except (TypeError, ValueError, FileNotFoundError) as e:
            raise ValueError(f"{self.where(step)}: {e}") from e

    def _make(self, step: str, p: dict[str, Any]) -> PipelineStep:
        if step == "language":
            if "language_threshold" in p:  # datatrove's name for it
                p["threshold"] = p.pop("language_threshold")
            languages = p.get("languages") or [self.source.language]
            if isinstance(languages, str):
                languages = [languages]
            threshold = float(p["threshold"])
            lang_filter = make_language_filter(
                languages,
                threshold,
                model_path=p.get("model_path"),
                backend=p.get("backend"),
                exclusion_writer=None,
            )
            lang_filter.exclusion_writer = self.writer(
                step, languages=list(lang_filter.languages), threshold=threshold
            )
            return lang_filter
        if step == "url":
            return OptionalURLFilter(exclusion_writer=self.writer(step), **p)
        if step == "opencc_t2s":
            return OpenCCT2S(**p)
        if step in _WORD_CLASSES:
            cls = _WORD_CLASSES[step]
            tok_lang = p.pop("word_tokenizer", None) or self.source.language
            for key in ("top_n_grams", "dup_n_grams"):
                if key in p and p[key] is not None:
                    p[key] = _tuples(p[key])
            if "stop_words" in p and p["stop_words"] is not None:
                p["stop_words"] = list(p["stop_words"])
            if "stop_chars" in p and p["stop_chars"] is not None:
                p["stop_chars"] = tuple(p["stop_chars"])
            return cls(exclusion_writer=self.writer(step), language=self.tokenizer(tok_lang), **p)
        if step == "length":
            if p.get("min_chars") is None and p.get("max_chars") is None:
                raise ValueError("needs `min_chars` and/or `max_chars`")
            p.setdefault("min_chars", 0)
            return MinCharsFilter(exclusion_writer=self.writer(step), **p)
        if step in _SIMPLE_CLASSES:
            return _SIMPLE_CLASSES[step](exclusion_writer=self.writer(step), **p)
        raise ValueError(f"unknown filter step {step!r}")  # pragma: no cover - FilterStep is a Literal


def _specs(source: SourceSpec) -> list[FilterSpec]:
    filters = source.filters
    if filters == "none":
        return []
    if filters == "default":
        lang = "zh" if source.language.lower() in _ZH_CODES else source.language
        if lang not in DEFAULT_CHAINS:
            raise ValueError(
                f"source {source.name!r}: no default filter chain for language {source.language!r} "
                f"(defaults exist for {', '.join(DEFAULT_CHAINS)}); list `filters` explicitly or use `none`"
            )
        return [FilterSpec(step=s) for s in DEFAULT_CHAINS[lang]]
    out = []
    for f in filters:
        if isinstance(f, FilterSpec):
            out.append(f)
        else:  # a plain dict / str (e.g. a SourceSpec built with model_construct)
            try:
                out.append(FilterSpec.model_validate(f))
            except Exception as e:
                raise ValueError(f"source {source.name!r}: bad filter entry {f!r}: {e}") from e
    return out


def build_filter_steps(source: SourceSpec, rejected_dir: str | None) -> list[tuple[str, PipelineStep]]:
    """The configured datatrove steps for ``source.filters``, in order, as ``(FilterStep name, step)`` pairs.

    With ``rejected_dir``, each filter writes what it drops to
    ``{rejected_dir}/{source.name}/{step}/${rank}.jsonl.gz`` (a repeated step gets ``{step}_2`` ...), one JSON
    object per document: ``{"id", "text", "reason", "source", "metadata"}``.
    """
    builder = _Builder(source, rejected_dir)
    return [(spec.step, builder.build(spec)) for spec in _specs(source)]
