"""One word split per document, shared by a chain's word-level filters (see :class:`SharedWordTokenizer`).

``word_tokenizer_key`` maps a language code to datatrove's word-tokenizer key (every Chinese code to ``cmn_Hani``).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter, OrderedDict, deque
from contextlib import nullcontext
from math import log

from datatrove.utils.word_tokenizers import (
    SpaCyTokenizer,
    WordTokenizer,
    load_tokenizer_assignments,
    strip_strings,
)

__all__ = ["SharedWordTokenizer", "ZH_CODES", "word_tokenizer_key"]


ZH_CODES = {"zh", "zho", "chi", "cmn", "zh_hani", "zh_hans", "zh_hant", "zh-cn", "zh-hans", "zh-hant", "zho_hani"}


def word_tokenizer_key(language: str) -> str:
    """datatrove word-tokenizer key for a language code; every Chinese code maps to ``cmn_Hani`` (jieba).

    datatrove's ``"zh"`` key resolves to ``SpaCyTokenizer("xx")`` (its CSV loader lets a later ``hak,zh,...,xx`` row
    win), which does not segment Chinese at all: a paragraph becomes 2 "words" and Gopher drops it as too short.
    """
    key = "cmn_Hani" if language.lower() in ZH_CODES else language
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


JIEBA_VERSION = "0.42.1"  # the jieba whose accurate mode _FastJieba re-implements (pinned in pyproject.toml)


class _FastJieba:
    """jieba 0.42.1's accurate mode with HMM (``jieba.cut(text, cut_all=False)``, what spaCy's ``ChineseTokenizer``
    calls), same words, about half the time.

    Same block split (jieba's own ``re_han_default`` / ``re_skip_default``), same DAG of dictionary words, same
    best route (``max`` over ``(log(freq or 1) - log(total) + score, end)``: highest score, then the later end), same
    HMM pass (jieba's ``finalseg.cut``) over runs of single characters.  Faster because the DAG and the route are
    built in one pass with each word's ``log(freq) - log(total)`` computed once per process (the same float
    expression, so the same scores), and because a block's words and a run's HMM words are remembered
    (``block_cache`` entries each; a block is segmented on its own, and the HMM sees only the run, so neither
    depends on the text around it).  The memo is dropped when jieba's
    dictionary changes (``add_word``, ``load_userdict``, force-split words).
    """

    def __init__(self, tokenizer, block_cache: int = 100_000):
        import jieba
        from jieba import finalseg

        tokenizer.check_initialized()
        self.dt = tokenizer
        self.finalseg = finalseg
        self.re_han = jieba.re_han_default
        self.re_skip = jieba.re_skip_default
        self.block_cache = block_cache
        self._stamp: tuple | None = None
        self._check_dictionary()

    @staticmethod
    def usable(segmenter) -> bool:
        """True for jieba's default tokenizer object (or the module) of the version this class re-implements."""
        import jieba

        dt = getattr(segmenter, "dt", segmenter)
        return jieba.__version__ == JIEBA_VERSION and type(dt) is jieba.Tokenizer

    def _check_dictionary(self) -> None:
        dt = self.dt
        stamp = (id(dt.FREQ), len(dt.FREQ), dt.total, len(self.finalseg.Force_Split_Words))
        if stamp != self._stamp:
            self._stamp = stamp
            self.freq = dt.FREQ
            self.logtotal = log(dt.total)
            self.logp: dict[str, float] = {}
            self.blocks: dict[str, list[str]] = {}
            self.hmm: dict[str, list[str]] = {}  # HMM words of a run of single characters (depends on nothing else)

    def cut(self, text: str) -> list[str]:
        """``[w for w in jieba.cut(text, cut_all=False) if w]``."""
        self._check_dictionary()
        out: list[str] = []
        re_han, re_skip, blocks = self.re_han, self.re_skip, self.blocks
        for blk in re_han.split(text):
            if not blk:
                continue
            if re_han.match(blk):
                words = blocks.get(blk)
                if words is None:
                    words = self._cut_block(blk)
                    if len(blocks) >= self.block_cache:
                        blocks.clear()
                    blocks[blk] = words
                out.extend(words)
            else:
                for x in re_skip.split(blk):
                    if re_skip.match(x):
                        out.append(x)
                    else:
                        out.extend(x)
        return [w for w in out if w]

    def _route(self, blk: str) -> list[int]:
        """For each position, the end (inclusive) of the word the best route takes there (jieba's get_DAG + calc)."""
        freq, logp, logtotal = self.freq, self.logp, self.logtotal
        n = len(blk)
        score = [0.0] * (n + 1)
        end = [0] * (n + 1)
        for k in range(n - 1, -1, -1):
            best_s = best_x = None
            i = k
            frag = blk[k]
            while i < n and frag in freq:
                if freq[frag]:
                    lp = logp.get(frag)
                    if lp is None:
                        lp = logp[frag] = log(freq.get(frag) or 1) - logtotal
                    s = lp + score[i + 1]
                    if best_s is None or s >= best_s:  # ends grow: on a tie the later end wins, as in max()
                        best_s, best_x = s, i
                i += 1
                frag = blk[k : i + 1]
            if best_x is None:  # no dictionary word starts here: the single character
                frag = blk[k]
                lp = logp.get(frag)
                if lp is None:
                    lp = logp[frag] = log(freq.get(frag) or 1) - logtotal
                best_s, best_x = lp + score[k + 1], k
            score[k] = best_s
            end[k] = best_x
        return end

    def _cut_block(self, blk: str) -> list[str]:
        """jieba's ``Tokenizer.__cut_DAG`` for one block."""
        end = self._route(blk)
        out: list[str] = []
        x, buf, n = 0, "", len(blk)
        while x < n:
            y = end[x] + 1
            if y - x == 1:
                buf += blk[x:y]
            else:
                if buf:
                    self._flush(buf, out)
                    buf = ""
                out.append(blk[x:y])
            x = y
        if buf:
            self._flush(buf, out)
        return out

    def _flush(self, buf: str, out: list[str]) -> None:
        """A run of single characters: as is if one character or a dictionary word (split), else jieba's HMM."""
        if len(buf) == 1:
            out.append(buf)
        elif not self.freq.get(buf):
            words = self.hmm.get(buf)
            if words is None:
                if len(self.hmm) >= self.block_cache:
                    self.hmm.clear()
                words = self.hmm[buf] = list(self.finalseg.cut(buf))
            out.extend(words)
        else:
            out.extend(buf)


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
                    if _FastJieba.usable(self._jieba):
                        self._jieba = _FastJieba(getattr(self._jieba, "dt", self._jieba))
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
        (here :class:`_FastJieba`, same words) and ``spacy.util.get_words_and_spaces``; datatrove keeps
        ``strip_strings`` of the token texts.  When the pieces are exactly the text cut up, and no piece that has
        other characters starts with whitespace (always so for jieba: whitespace comes as pieces of its own), that
        alignment only adds whitespace tokens, which ``strip_strings`` removes: the words are
        ``strip_strings(pieces)``.  Otherwise spaCy's alignment runs.
        """
        from spacy.util import get_words_and_spaces

        self.counts["jieba"] += 1
        jieba = self._jieba
        if isinstance(jieba, _FastJieba):
            pieces = jieba.cut(text)
        else:
            pieces = [x for x in jieba.cut(text, cut_all=False) if x]
        if "".join(pieces) == text and not any(p[0].isspace() and not p.isspace() for p in pieces):
            return strip_strings(pieces)
        self.counts["jieba_aligned"] += 1
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
