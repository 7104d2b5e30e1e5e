"""The self-teaching recipe (Memphis-CoT, seed 003): R rounds of generate -> check -> pair -> train -> average.

``shardsmith self-teach RECIPE --out OUT`` (``shardsmith/selfteach.py``) runs it. Per round r, starting from
``self_teach.init`` (Memphis: the phase-1 SFT export), the current model answers every question of the CoT block
``N`` times, each answer is checked against the gold answer by the CoT block's parser, (correct, incorrect) pairs
become a preference block, one stage is trained on it, and the trained weights are SLERP-averaged with the round's
starting weights. The result starts round r + 1::

    name: memphis-cot
    seed: 3
    model: {attn_implementation: sdpa}
    engine: {zero_stage: 2}
    self_teach:
      init: out/memphis/sft/sft/hf/final          # an HF folder (paths are relative to the working directory)
      rounds: 3
      questions: {block: recipes/blocks/memphis-cot.yaml}     # a `kind: cot` block recipe
      generation: {samples: 8, temperature: 0.5, top_p: 0.8, max_new_tokens: 512}
      merge: {t: 0.99, toward: previous}
    stage:                                         # a trainer stage (schemas/train_recipe.py StageSpec) without
      objective: rank                              # name / init_from / data.sets, which the loop fills per round
      rank: {weight: 0.25}
      epochs: 1
      seq_len: 1024
      optimizer: {lr: 5.0e-7}

The stage is validated here, through ``StageSpec`` itself, before any work starts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from .common import Strict
from .train_recipe import EngineSpec, ModelSpec, StageSpec

ROUND_STAGE = "train"  # the name of each round's one stage: OUT/round-<r>/train/
FILLED_BY_LOOP = ("name", "init_from", "merge")  # stage keys the loop owns (merge: the loop averages itself)


class QuestionSpec(Strict):
    """Where the questions and their gold answers come from: the sources of a ``kind: cot`` block recipe, read by
    the same importers as its build; its template renders the prompts and the pairs, its tokenizer encodes them."""

    block: str = Field(description="a kind: cot block recipe (Memphis: TinyCoT); relative to the working directory")
    sources: list[str] | None = Field(None, description="ask only these sources of the block (default: all)")
    limit: int | None = Field(None, ge=1, description="at most this many questions (a seeded sample, the same every "
                              "round); default: every question, as Memphis")


class GenerationSpec(Strict):
    """Sampling, as Memphis ran vLLM: N = 8, temperature 0.5, top_p 0.8, at most 512 new tokens."""

    samples: int = Field(8, ge=2, description="answers per question (a pair needs a correct and an incorrect one)")
    temperature: float = Field(0.5, gt=0)
    top_p: float = Field(0.8, gt=0, le=1)
    max_new_tokens: int = Field(512, ge=1)
    batch_size: int = Field(32, ge=1, description="prompts per generate call (left-padded)")
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="auto: bf16 on CUDA, fp32 on CPU")
    device: Literal["auto", "cpu", "cuda"] = "auto"


class PairSpec(Strict):
    """How checked answers become pairs: per question, its distinct correct answers are paired in order with its
    distinct incorrect ones; extras are dropped (Memphis: "each correct and incorrect response is unique")."""

    max_per_question: int | None = Field(None, ge=1, description="cap on pairs per question (default: no cap)")
    validation_fraction: float = Field(0.0, ge=0, lt=1, description="pairs held out in the block's validation split "
                                       "(Memphis: none)")


class AverageSpec(Strict):
    """The moving average between rounds: SLERP (or linear) of the trained weights and the round's starting weights.

    Memphis: "interpolated between the previous model weights and the updated weights using SLERP, with an
    interpolation factor of 0.99", "as a moving average". ``toward: previous`` (default) reads it as an exponential
    moving average: ``t`` is the weight of the previous weights (0.99 keeps 99 % of them), like ``merge --decay`` and
    a stage's ``merge: {toward: parent}``; ``toward: trained`` reads it the mergekit way, ``t`` = the weight of the
    trained weights. Each round's ``round.json`` records which."""

    t: float = Field(0.99, ge=0, le=1, description="the weight of the checkpoint named by `toward`")
    toward: Literal["previous", "trained"] = "previous"
    method: Literal["slerp", "linear"] = "slerp"


class SelfTeachSpec(Strict):
    init: str = Field(description="the HF folder round 1 starts from (Memphis: the phase-1 SFT export)")
    rounds: int = Field(3, ge=1, description="generate + train + average cycles (Memphis: 3)")
    questions: QuestionSpec
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    pairs: PairSpec = Field(default_factory=PairSpec)
    merge: AverageSpec = Field(default_factory=AverageSpec)


class SelfTeachRecipe(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = 1234
    model: ModelSpec = Field(default_factory=ModelSpec, description="only model keys that apply to loading an HF "
                             "folder matter (attn_implementation); the weights come from self_teach.init")
    engine: EngineSpec = Field(default_factory=EngineSpec)
    self_teach: SelfTeachSpec
    stage: dict[str, Any] = Field(description="the stage each round trains (StageSpec keys but name, init_from, "
                                  "merge and data.sets); objective defaults to rank")

    @field_validator("stage")
    @classmethod
    def _stage(cls, stage: dict[str, Any]) -> dict[str, Any]:
        """The keys the loop owns are refused; the rest is validated now as the trainer will read it (``StageSpec``,
        placeholder paths), so a bad stage fails before any generation."""
        owned = [k for k in FILLED_BY_LOOP if k in stage]
        if owned:
            raise ValueError(f"stage.{owned[0]} is set by the loop for each round (remove it; the average between "
                             "rounds is self_teach.merge)")
        if "sets" in (stage.get("data") or {}):
            raise ValueError("stage.data.sets is each round's pairs block, set by the loop (remove it)")
        stage = {"objective": "rank", **stage}
        try:
            round_stage(stage, init_from="scratch", pairs_block="<round pairs block>")
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"stage{'.' + where if where else ''}: {first['msg']}") from None
        return stage


def round_stage_dict(stage: dict[str, Any], init_from: str, pairs_block: str) -> dict[str, Any]:
    """A round's stage as recipe data: the recipe's ``stage`` with its name, starting weights and pairs block."""
    data = {**(stage.get("data") or {}), "sets": [{"path": pairs_block}]}
    return {**stage, "name": ROUND_STAGE, "init_from": init_from, "data": data}


def round_stage(stage: dict[str, Any], init_from: str, pairs_block: str) -> StageSpec:
    """A round's stage as the trainer reads it (validated)."""
    return StageSpec.model_validate(round_stage_dict(stage, init_from, pairs_block))
