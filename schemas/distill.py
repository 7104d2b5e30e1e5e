"""The distillation-specific parts of a block recipe: the question pool and the teacher that answers it.

FF_3.13 stage 4 (seeds-code.md §1.1): 108,779 questions mixed by source (hellaswag 37 %, openhermes 28 %, mmlu 14 %,
math 12 %, gsm8k 7 %, arc 2 %, truthfulqa 1 %) answered by a larger teacher model. A teacher is either a file of
outputs someone else generated (``kind: file``) or a local HF model run here (``kind: hf``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from shardsmith.schemas.common import Strict


class PoolSpec(Strict):
    """How many questions to draw from each source: ``shares`` (normalized to sum to 1: the FF card's sum to 101 %)
    times ``total``, rounded by largest remainder so the counts add up to ``total`` exactly."""

    total: int = Field(ge=1, description="questions in the pool (FF: 108,779)")
    shares: dict[str, float] = Field(min_length=1, description="source name -> share (any positive scale)")
    seed: int = Field(0, description="which questions each source gives (same seed, same pool)")
    on_short: Literal["fail", "take_all"] = Field(
        "fail", description="a source with fewer questions than its count: fail naming it and the shortfall, or take "
                            "all it has and report the shortfall (the pool is then smaller than total)")

    @model_validator(mode="after")
    def _positive_shares(self):
        bad = [k for k, v in self.shares.items() if not v > 0]
        if bad:
            raise ValueError(f"shares must be > 0: {', '.join(bad)}")
        return self


class FileTeacherSpec(Strict):
    """Teacher outputs already generated: a JSON-lines file of ``{"id": ..., "output": ...}`` (optional ``model``,
    ``settings``) keyed by the question's id."""

    kind: Literal["file"]
    path: str = Field(description="the JSONL file (relative paths resolve against the recipe's folder)")
    name: str | None = Field(None, description="the teacher's name for the manifest (default: the file's stem)")


class HfTeacherSpec(Strict):
    """A causal LM run here through ``transformers`` generation. ``path`` is a local model folder (never fetched);
    ``hub_id`` names a hub model explicitly (downloads when not cached). Exactly one of the two."""

    kind: Literal["hf"]
    path: str | None = Field(None, description="local HF model folder (config.json, weights, tokenizer)")
    hub_id: str | None = Field(None, description="an HF hub id, e.g. Qwen/Qwen2.5-7B-Instruct (needs the network)")
    name: str | None = Field(None, description="the teacher's name for the manifest (default: folder name / hub id)")
    system: str | None = Field(None, description="system prompt for the template (default: the template's own)")
    do_sample: bool = Field(False, description="greedy (the FF card's choice) unless true")
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=1)
    seed: int = Field(0, description="sampling seed (each batch seeds from it and its question ids)")
    batch_size: int = Field(8, ge=1)
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="auto: bf16 on CUDA, fp32 on CPU")
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.hub_id is None):
            raise ValueError("an hf teacher needs exactly one of path (a local folder) or hub_id")
        return self


TeacherSpec = Annotated[FileTeacherSpec | HfTeacherSpec, Field(discriminator="kind")]


class DistillSpec(Strict):
    """The distill block's own keys: ``pool`` (over the block's sources, by name) and ``teacher``."""

    pool: PoolSpec
    teacher: TeacherSpec
