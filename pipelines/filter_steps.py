"""Filter steps: one registry row per recipe ``FilterStep`` name (``schemas/mix_recipe.py``).

A row names the step class and how a chain builds it (``make``: a formatter, a filter with a rejected-document
writer, a word-level filter on the chain's shared word tokenizer, language ID, a length window); the params a
recipe may give are read from the class signature.  Adding a step is one :class:`StepRow` in :data:`FILTER_STEPS`
plus its name in the schema's ``FilterStep`` ``Literal`` (the schema may not import ``pipelines/``;
``tests/test_filters.py`` checks the two name the same steps).  Chains, defaults and the builder that calls
``make`` live in ``filter_chains.py``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    LanguageFilter,
    URLFilter,
)

from .lid import make_language_filter
from .normalize import NormalizeFormatter
from .pii import PIIStep
from .repetition import FastGopherRepetitionFilter
from .spam import SpamFilter
from .url_filter import OptionalURLFilter
from .gopher_quality import FastGopherQualityFilter
from .word_splitters import FineWeb2024GopherQualityFilter
from .zh_filters import CJKRatioFilter, MinCharsFilter, OpenCCT2S, SpamPhraseFilter, SymbolRatioFilter

__all__ = ["ALLOWED_PARAMS", "FILTER_STEPS", "StepRow"]



def _init_params(cls: type, exclude: tuple[str, ...] = ("exclusion_writer", "language")) -> set[str]:
    sig = inspect.signature(cls.__init__)
    return {
        n
        for n, p in sig.parameters.items()
        if n != "self" and n not in exclude and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def _tuples(pairs) -> tuple[tuple[int, float], ...]:
    return tuple((int(n), float(f)) for n, f in pairs)


def make_formatter(chain, row: "StepRow", p: dict[str, Any]) -> PipelineStep:
    """A step that rewrites text and never drops (``normalize``, ``opencc_t2s``): the class with the params."""
    return row.cls(**p)


def make_dropping(chain, row: "StepRow", p: dict[str, Any]) -> PipelineStep:
    """A filter whose drops go to the chain's rejected-document writer."""
    return row.cls(exclusion_writer=chain.writer(row.name), **p)


def make_word_level(chain, row: "StepRow", p: dict[str, Any]) -> PipelineStep:
    """A datatrove word-level filter on the chain's shared word tokenizer (``word_tokenizer``: its language,
    default the source's; ``word_splitter``: the step's own choice over the chain's)."""
    cls = row.cls
    tok_lang = p.pop("word_tokenizer", None) or chain.source.language
    splitter = p.pop("word_splitter", None) or chain.word_splitter or "datatrove"
    for key in ("top_n_grams", "dup_n_grams"):
        if key in p and p[key] is not None:
            p[key] = _tuples(p[key])
    if "stop_words" in p and p["stop_words"] is not None:
        p["stop_words"] = list(p["stop_words"])
    if "stop_chars" in p and p["stop_chars"] is not None:
        p["stop_chars"] = tuple(p["stop_chars"])
    cls = row.splitter_classes.get(splitter, cls)
    return cls(exclusion_writer=chain.writer(row.name), language=chain.tokenizer(tok_lang, splitter), **p)


def make_language(chain, row: "StepRow", p: dict[str, Any]) -> PipelineStep:
    """fastText language ID (``lid.py``); ``language_threshold`` is datatrove's name for ``threshold``; the
    rejected writer records the languages and threshold."""
    if "language_threshold" in p:  # datatrove's name for it
        p["threshold"] = p.pop("language_threshold")
    languages = p.get("languages") or [chain.source.language]
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
    lang_filter.exclusion_writer = chain.writer(row.name, languages=list(lang_filter.languages), threshold=threshold)
    return lang_filter


def make_length(chain, row: "StepRow", p: dict[str, Any]) -> PipelineStep:
    """A character-length window for any language (``min_chars`` and/or ``max_chars``)."""
    if p.get("min_chars") is None and p.get("max_chars") is None:
        raise ValueError("needs `min_chars` and/or `max_chars`")
    p.setdefault("min_chars", 0)
    return row.cls(exclusion_writer=chain.writer(row.name), **p)


@dataclass(frozen=True)
class StepRow:
    """One filter step: ``name`` (the recipe's ``FilterStep``), ``cls`` (the step class), ``make(chain, row,
    params)`` (how the chain builds it; ``chain`` gives ``source``, ``word_splitter``, ``writer(step, **adapter)``
    and ``tokenizer(language, splitter)``).  The recipe params allowed are ``cls``'s constructor arguments (or
    ``params_from``'s; ``exclusion_writer`` and ``language`` are the chain's) plus ``extra_params``, or exactly
    ``fixed_params`` when the recipe's names are not a constructor's.  ``splitter_classes``: a word splitter whose
    word counting needs another class (``word_splitters.py``)."""

    name: str
    cls: type
    make: Callable[..., PipelineStep] = make_dropping
    extra_params: frozenset[str] = frozenset()
    params_from: type | None = None
    fixed_params: frozenset[str] | None = None
    splitter_classes: dict[str, type] = field(default_factory=dict)

    @property
    def params(self) -> set[str]:
        if self.fixed_params is not None:
            return set(self.fixed_params)
        return _init_params(self.params_from or self.cls) | set(self.extra_params)


_WORD_PARAMS = frozenset({"word_tokenizer", "word_splitter"})
FILTER_STEPS: dict[str, StepRow] = {
    row.name: row
    for row in (
        StepRow("language", LanguageFilter, make_language,
                fixed_params=frozenset({"languages", "threshold", "language_threshold", "model_path", "backend"})),
        StepRow("url", OptionalURLFilter, params_from=URLFilter, extra_params=frozenset({"require_url"})),
        # datatrove's filter, faster n-gram counts (repetition.py)
        StepRow("gopher_repetition", FastGopherRepetitionFilter, make_word_level, extra_params=_WORD_PARAMS),
        StepRow("gopher_quality", FastGopherQualityFilter, make_word_level,  # datatrove's rules, per distinct word
                extra_params=_WORD_PARAMS,
                splitter_classes={"fineweb2024": FineWeb2024GopherQualityFilter}),  # FineWeb's word counting
        StepRow("c4_quality", C4QualityFilter, make_word_level, extra_params=_WORD_PARAMS),
        StepRow("fineweb_quality", FineWebQualityFilter, make_word_level, extra_params=_WORD_PARAMS),
        StepRow("opencc_t2s", OpenCCT2S, make_formatter),
        StepRow("cjk_ratio", CJKRatioFilter),
        StepRow("min_chars", MinCharsFilter),
        StepRow("symbol_ratio", SymbolRatioFilter),
        StepRow("spam_phrases", SpamPhraseFilter),
        StepRow("spam", SpamFilter),
        StepRow("normalize", NormalizeFormatter, make_formatter),
        StepRow("length", MinCharsFilter, make_length, fixed_params=frozenset({"min_chars", "max_chars"})),
        StepRow("pii", PIIStep, make_formatter),
    )
}  # fmt: skip
ALLOWED_PARAMS: dict[str, set[str]] = {name: row.params for name, row in FILTER_STEPS.items()}
