"""Benchmark decontamination: the recipe section (``decontaminate:`` in mix and block recipes) and what the manifest
records (``decontamination``). The index and the steps live in ``pipelines/decontam.py``.

Recipe::

    decontaminate:                      # on by default; `decontaminate: false` opts out (the manifest says so)
      benchmarks: [../shared/data]      # folders of mcq_<name>/ folders, one benchmark's folder/file, or a hub
                                        # name hf:cais/mmlu:all@test (fetched once, then cached);
                                        # unset: $SHARDSMITH_BENCHMARKS; neither: the build says it was not checked
      files: [{name: my_eval, paths: [my_eval.jsonl]}]   # any user file of questions/answers (MCQ, CoT, SFT shapes)
      action: drop                      # drop | flag (keep, record)
      ngram: 13                         # words; a Chinese character is one word
      min_ngram: 7                      # a part shorter than ngram but at least this long is matched whole
      min_overlap: 0.5                  # share of one part's n-grams a document must hold
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .common import Strict

DecontamStatus = Literal["checked", "not_checked", "opted_out"]


class BenchmarkFiles(Strict):
    """A user's own test set: files of questions and answers in any MCQ, CoT or SFT shape (``builders/``)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="the benchmark's name in the manifest")
    paths: list[str] = Field(min_length=1, description="files or folders; relative to the recipe (blocks) or cwd")
    shape: str = Field("auto", description="an MCQ, CoT or SFT shape; auto detects per file")


class DecontamSpec(Strict):
    """Which benchmarks a build is checked against, and what happens to a document that shares an n-gram."""

    enabled: bool = Field(True, description="false: opt out (the manifest records that nothing was checked)")
    benchmarks: list[str] | None = Field(
        None, description="folders holding mcq_<name>/ benchmark folders (laid out like ../shared/data), one "
        "benchmark's folder or file, or a hub name hf:<repo>[:<config>][@<split>] (fetched once into a local cache; "
        "only then is the hub touched); unset: $SHARDSMITH_BENCHMARKS (entries separated by commas)"
    )
    files: list[BenchmarkFiles] = Field(default_factory=list, description="user files of questions/answers")
    action: Literal["drop", "flag"] = Field("drop", description="drop: reject with the benchmark and item; flag: "
                                            "keep, count and record")
    ngram: int = Field(13, ge=5, le=50, description="n-gram length in normalised words (Chinese: characters)")
    min_ngram: int = Field(7, ge=3, le=50, description="an item part shorter than `ngram` is matched whole when it "
                           "has at least this many words besides numbers (shorter ones cannot be checked: counted)")
    min_overlap: float = Field(0.5, gt=0, le=1, description="a document is contaminated by an item when it holds at "
                               "least this share of the n-grams of one of the item's parts (question + options, "
                               "question, question + answer, explanation): a phrase it merely shares is not enough")
    index: str | None = Field(None, description="folder to keep (and reuse) the index in; default: beside the "
                              "shard set, `<DIR>.decontam-index`")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        if isinstance(value, bool):  # `decontaminate: false`
            return {"enabled": value}
        if isinstance(value, list):  # `decontaminate: [path, ...]`
            return {"benchmarks": value}
        return value

    @model_validator(mode="after")
    def _lengths(self) -> "DecontamSpec":
        if self.min_ngram > self.ngram:
            raise ValueError(f"min_ngram ({self.min_ngram}) must not exceed ngram ({self.ngram})")
        return self


# ---------------------------------------------------------------------------------------------------------------
# manifest


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class BenchmarkInfo(_Open):
    name: str
    paths: list[str] = Field(default_factory=list, description="the folder (or file) read")
    files: int = Field(0, description="test files read")
    items: int = Field(0, description="test items indexed")
    ngrams: int = Field(0, description="distinct n-grams this benchmark put in the index")
    whole_items: int = Field(0, description="items whose every part is shorter than ngram: matched whole")
    too_short: int = Field(0, description="items shorter than min_ngram: not checkable")


class DecontamHit(_Open):
    source: str
    id: str = Field(description="the document (mix) or record (block) id")
    benchmark: str
    item: str = Field(description="the test item's id: file:row as read")
    ngram: str = Field(description="the first shared n-gram, normalised")
    overlap: float = Field(description="share of the n-grams of one part of the item found in the document")


class DecontamReport(_Open):
    status: DecontamStatus
    note: str = Field(description="one line: where the benchmarks came from, or why nothing was checked")
    action: Literal["drop", "flag"] | None = None
    ngram: int | None = None
    min_ngram: int | None = None
    min_overlap: float | None = None
    index: str | None = Field(None, description="the index folder")
    benchmarks: list[BenchmarkInfo] = Field(default_factory=list)
    checked: dict[str, int] = Field(default_factory=dict, description="documents checked per source")
    hits: dict[str, dict[str, int]] = Field(default_factory=dict, description="source -> benchmark -> documents")
    examples: list[DecontamHit] = Field(default_factory=list, description="the first hits of each source")
