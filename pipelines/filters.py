"""Per-source filter chains: recipe ``filters`` -> configured datatrove steps, with rejected-document writers.

``build_filter_steps(source, rejected_dir)`` returns ``[(step_name, PipelineStep), ...]`` in order, where
``step_name`` is the recipe's ``FilterStep`` literal.

Defaults (``filters: default``) per ``source.language``:

Both start with ``normalize`` (ftfy: HTML entities, mojibake, NFC; ``normalize.py``) and carry ``url`` and ``spam``
(categorised lexicon + link farms; ``spam.py``) after language ID.

* **en**: the FineWeb recipe (huggingface/datatrove:examples/fineweb.py): language en > 0.65, url, spam,
  gopher_repetition, gopher_quality, c4_quality (``filter_no_terminal_punct=False``), fineweb_quality; datatrove's
  default thresholds.
* **zh**: FineWeb-2's ``cmn_Hani`` settings (huggingface/fineweb-2:configs/cmn_Hani.yml, "paper version" d331bee):
  opencc_t2s, language zh > 0.69 (FineWeb-2's 0.692 was on GlotLID; on the bundled ft176 model real Chinese web
  text scores 0.97-1.0 and what falls under 0.69 is markdown/menu junk), url, cjk_ratio, min_chars, symbol_ratio,
  spam, gopher_repetition / gopher_quality / fineweb_quality with the cmn_Hani thresholds and stop words,
  jieba word splitting (``cmn_Hani``; datatrove's key ``zh`` silently means a tokenizer that does not segment
  Chinese); no C4 filter (FineWeb-2 dropped it for non-English).

``filters: none`` -> ``[]``.  An explicit list takes each step's defaults for the source's language, overridden by
``params``; an unknown step param raises ``ValueError`` naming the source, the step and the param.  Params are the
datatrove/zh_filters constructor arguments, plus: ``language``: ``languages``, ``threshold`` (or
``language_threshold``), ``model_path``, ``backend``; ``url``: ``require_url`` (default False: documents without a
url pass); word-level steps: ``word_tokenizer`` (a language code for the word splitter, default the source's).

Speed: the word-level filters share one :class:`SharedWordTokenizer` (``word_tokenizer.py``; passed as their
``language``, which datatrove accepts as a ``WordTokenizer`` instance), so each document is split into words once
instead of once per filter.  Dropped documents go through ``rejected.py``'s writer.
"""

from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    URLFilter,
)
from datatrove.pipeline.writers.jsonl import JsonlWriter

from ..schemas.mix_recipe import FilterChain, FilterSpec, SourceSpec
from .gopher_quality import FastGopherQualityFilter
from .lid import make_language_filter
from .normalize import NormalizeFormatter
from .repetition import FastGopherRepetitionFilter
from .rejected import RejectedJsonlWriter, RejectedRecordAdapter, rejected_writer
from .spam import SpamFilter
from .word_splitters import WORD_SPLITTERS, FineWeb2024GopherQualityFilter, FineWeb2024WordTokenizer
from .word_tokenizer import ZH_CODES, SharedWordTokenizer, word_tokenizer_key
from .zh_filters import CJKRatioFilter, MinCharsFilter, OpenCCT2S, SpamPhraseFilter, SymbolRatioFilter

__all__ = [
    "DEFAULT_CHAINS",
    "NAMED_CHAINS",
    "NamedChain",
    "filter_chain_info",
    "RejectedJsonlWriter",
    "RejectedRecordAdapter",
    "SharedWordTokenizer",
    "build_filter_steps",
    "word_tokenizer_key",
]

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
    "en": (
        "normalize",
        "language",
        "url",
        "spam",
        "gopher_repetition",
        "gopher_quality",
        "c4_quality",
        "fineweb_quality",
    ),
    "zh": (
        "normalize",
        "opencc_t2s",
        "language",
        "url",
        "cjk_ratio",
        "min_chars",
        "symbol_ratio",
        "spam",
        "gopher_repetition",
        "gopher_quality",
        "fineweb_quality",
    ),
}

# --------------------------------------------------------------------------------------------------------------------
# Named chains: one registry row per chain; `filters: default` picks the row whose `kinds` hold the source's kind
# --------------------------------------------------------------------------------------------------------------------

# Curated, edited text (encyclopedias): an article is often one long line or a few, with lists, tables and
# formulas flattened into it, so the web-page line rules (C4 / FineWeb line punctuation, Gopher's alpha ratio)
# reject whole articles (all 30 English Wikipedia sample articles fail `line_punct_ratio`, Baike loses 774 of 1,000
# under the zh web chain).  Kept: normalisation, language ID, a length floor, repetition (boilerplate stubs), spam
# for Chinese.
ENCYCLOPEDIA_CHAINS: dict[str, tuple[str | dict, ...]] = {
    "en": ("normalize", {"step": "language", "threshold": 0.5}, {"step": "length", "min_chars": 200},
           "gopher_repetition"),
    "zh": ("normalize", "opencc_t2s", "language", {"step": "min_chars", "min_chars": 100}, "spam",
           "gopher_repetition"),
}
# Edited news articles: prose in paragraphs, so Gopher's document-level quality rules still fit; the line rules of
# C4/FineWeb, written for scraped page furniture, drop short datelines and headlines.
NEWS_CHAINS: dict[str, tuple[str | dict, ...]] = {
    "en": ("normalize", "language", "url", "spam", "gopher_repetition", "gopher_quality"),
    "zh": ("normalize", "opencc_t2s", "language", "url", "cjk_ratio", {"step": "min_chars", "min_chars": 100},
           "spam", "gopher_repetition"),
}  # fmt: skip


@dataclass(frozen=True)
class NamedChain:
    """A row of :data:`NAMED_CHAINS`.

    ``steps`` maps a language key (``en``, ``zh``; every Chinese code is ``zh``) to the chain's steps, each a step
    name or ``{"step": name, **params}`` (the recipe's own forms).  ``kinds``: the source kinds that get this chain
    for ``filters: default``.  ``word_splitter``: per language key, how the chain's word-level steps split words
    (``datatrove`` where unset); a source's ``filters: {chain: ..., word_splitter: ...}`` overrides it.
    """

    name: str
    purpose: str
    steps: dict[str, tuple[str | dict, ...]]
    kinds: tuple[str, ...] = ()
    word_splitter: dict[str, str] = field(default_factory=dict)


NAMED_CHAINS: dict[str, NamedChain] = {
    chain.name: chain
    for chain in (
        NamedChain(
            "web",
            "crawled pages: the FineWeb recipe (en), FineWeb-2 cmn_Hani (zh)",
            DEFAULT_CHAINS,
            kinds=("fineweb", "c4", "dolma", "dclm", "skypile", "wanjuan", "zhihu", "wudao", "warc", "generic",
                   "hf_hub"),
            # FineWeb was filtered with NLTK's word split; datatrove 0.10.1's spaCy split drops 22 of 150
            # FineWeb-Edu documents that FineWeb kept (scripts/compare_word_splitters.py)
            word_splitter={"en": "fineweb2024"},
        ),
        NamedChain(
            "encyclopedia",
            "curated reference articles (Wikipedia, Baidu Baike)",
            ENCYCLOPEDIA_CHAINS,
            kinds=("wikipedia", "wikipedia_lines", "wikipedia_zh", "baidu_baike"),
            word_splitter={"en": "fineweb2024"},
        ),
        NamedChain(
            "news",
            "edited news articles",
            NEWS_CHAINS,
            kinds=("news_folder", "news_jsonl"),
            word_splitter={"en": "fineweb2024"},
        ),
    )
}  # fmt: skip


# Kinds whose text was filtered before it reached the mix: `filters: default` is `none` (a built block's
# conversations passed the block's own filters; the web chains' line rules are written for scraped pages).
UNFILTERED_KINDS = ("block",)


def default_chain_name(kind: str) -> str:
    """The named chain ``filters: default`` resolves to for a source kind (``web`` for any kind no row lists;
    ``none`` for :data:`UNFILTERED_KINDS`)."""
    if kind in UNFILTERED_KINDS:
        return "none"
    return next((c.name for c in NAMED_CHAINS.values() if kind in c.kinds), "web")


def _language_key(source: SourceSpec) -> str:
    return "zh" if source.language.lower() in ZH_CODES else source.language


def _chain_choice(source: SourceSpec) -> tuple[str, str | None]:
    """(chain name, word-splitter override) for ``source.filters``; ``custom`` for an explicit step list."""
    filters = source.filters
    if isinstance(filters, FilterChain):
        name, override = filters.chain, filters.word_splitter
    elif isinstance(filters, str):
        name, override = filters, None
    elif isinstance(filters, dict):  # a SourceSpec built with model_construct
        chain = FilterChain.model_validate(filters)
        name, override = chain.chain, chain.word_splitter
    else:
        return "custom", None
    return (default_chain_name(source.kind) if name == "default" else name), override


def filter_chain_info(source: SourceSpec) -> dict[str, str | None]:
    """What the manifest records per source: ``filter_chain`` (web | encyclopedia | news | none | custom) and
    ``word_splitter`` (the chain's choice for its word-level steps; a step's own ``word_splitter`` param wins)."""
    name, override = _chain_choice(source)
    splitter = None
    if name in NAMED_CHAINS:
        splitter = override or NAMED_CHAINS[name].word_splitter.get(_language_key(source), "datatrove")
    elif name == "custom":
        splitter = "datatrove"
    return {"filter_chain": name, "word_splitter": splitter}


_WORD_CLASSES = {
    "gopher_repetition": FastGopherRepetitionFilter,  # datatrove's filter, faster n-gram counts (repetition.py)
    "gopher_quality": FastGopherQualityFilter,  # datatrove's filter, per distinct word (gopher_quality.py)
    "c4_quality": C4QualityFilter,
    "fineweb_quality": FineWebQualityFilter,
}
_SIMPLE_CLASSES = {
    "cjk_ratio": CJKRatioFilter,
    "min_chars": MinCharsFilter,
    "length": MinCharsFilter,
    "symbol_ratio": SymbolRatioFilter,
    "spam_phrases": SpamPhraseFilter,
    "spam": SpamFilter,
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
    "normalize": _init_params(NormalizeFormatter),
    **{step: _init_params(cls) | {"word_tokenizer", "word_splitter"} for step, cls in _WORD_CLASSES.items()},
    **{step: _init_params(cls) for step, cls in _SIMPLE_CLASSES.items() if step != "length"},
    "length": {"min_chars", "max_chars"},
}


def _tuples(pairs) -> tuple[tuple[int, float], ...]:
    return tuple((int(n), float(f)) for n, f in pairs)


class _Builder:
    def __init__(self, source: SourceSpec, rejected_dir: str | None):
        self.source = source
        self.rejected_dir = rejected_dir.rstrip("/") if rejected_dir else None
        self.lang_key = _language_key(source)
        self.word_splitter = filter_chain_info(source)["word_splitter"]
        self._tokenizers: dict[tuple[str, str], SharedWordTokenizer | FineWeb2024WordTokenizer] = {}
        self._folders: Counter = Counter()

    def where(self, step: str) -> str:
        return f"source {self.source.name!r}, filter step {step!r}"

    def tokenizer(self, language: str, splitter: str) -> SharedWordTokenizer | FineWeb2024WordTokenizer:
        """One word tokenizer per (splitter, language), shared by the chain's word-level steps."""
        if splitter not in WORD_SPLITTERS:
            raise ValueError(f"word_splitter {splitter!r}: expected one of {', '.join(WORD_SPLITTERS)}")
        key = (splitter, word_tokenizer_key(language))
        if key not in self._tokenizers:
            make = FineWeb2024WordTokenizer if splitter == "fineweb2024" else SharedWordTokenizer
            self._tokenizers[key] = make(key[1])
        return self._tokenizers[key]

    def writer(self, step: str, **adapter_kw) -> JsonlWriter | None:
        if not self.rejected_dir:
            return None
        self._folders[step] += 1
        folder = step if self._folders[step] == 1 else f"{step}_{self._folders[step]}"
        adapter = RejectedRecordAdapter(self.source.name, step, **adapter_kw)
        return rejected_writer(self.rejected_dir, self.source.name, folder, adapter)

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
        if step == "normalize":
            return NormalizeFormatter(**p)
        if step in _WORD_CLASSES:
            cls = _WORD_CLASSES[step]
            tok_lang = p.pop("word_tokenizer", None) or self.source.language
            splitter = p.pop("word_splitter", None) or self.word_splitter or "datatrove"
            for key in ("top_n_grams", "dup_n_grams"):
                if key in p and p[key] is not None:
                    p[key] = _tuples(p[key])
            if "stop_words" in p and p["stop_words"] is not None:
                p["stop_words"] = list(p["stop_words"])
            if "stop_chars" in p and p["stop_chars"] is not None:
                p["stop_chars"] = tuple(p["stop_chars"])
            if step == "gopher_quality" and splitter == "fineweb2024":
                cls = FineWeb2024GopherQualityFilter  # FineWeb's word counting (word_splitters.py)
            return cls(exclusion_writer=self.writer(step), language=self.tokenizer(tok_lang, splitter), **p)
        if step == "length":
            if p.get("min_chars") is None and p.get("max_chars") is None:
                raise ValueError("needs `min_chars` and/or `max_chars`")
            p.setdefault("min_chars", 0)
            return MinCharsFilter(exclusion_writer=self.writer(step), **p)
        if step in _SIMPLE_CLASSES:
            return _SIMPLE_CLASSES[step](exclusion_writer=self.writer(step), **p)
        raise ValueError(f"unknown filter step {step!r}")  # pragma: no cover - FilterStep is a Literal


def _specs(source: SourceSpec) -> list[FilterSpec]:
    name, _ = _chain_choice(source)
    if name == "none":
        return []
    if name in NAMED_CHAINS:
        chain = NAMED_CHAINS[name]
        lang = _language_key(source)
        if lang not in chain.steps:
            raise ValueError(
                f"source {source.name!r}: no default filter chain for language {source.language!r} "
                f"(chain {name!r} exists for {', '.join(chain.steps)}); list `filters` explicitly or use `none`"
            )
        return [FilterSpec.model_validate(s) for s in chain.steps[lang]]
    out = []
    for f in source.filters:
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
