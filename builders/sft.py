"""The SFT and preference blocks: read sources (+ self-cognition rows) -> steps -> the shared writer.

Steps, in order: (pair checks) -> structure -> length (chars) -> language -> dedup -> render -> length (tokens) ->
sample; then every kept conversation gets a language label and ``builders/writer.py`` writes the set.

A preference block runs the same steps on pairs: each filter judges both ``prompt + chosen`` and ``prompt +
rejected`` and keeps the pair only if both pass; a kept pair is written as two adjacent documents, chosen first
(``manifest.pair_layout``), and the split holds whole pairs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from shardsmith.schemas.block_recipe import PreferenceBlockRecipe, SftBlockRecipe
from shardsmith.schemas.manifest import PAIR_LAYOUT

from . import self_cognition
from .block import BlockKind, BlockStep, BuildError, Item, SourceBooks, check_counts, read_source, run_steps
from .block_steps import (
    CharLengthStep,
    DedupStep,
    LanguageStep,
    PairStep,
    RenderStep,
    SampleStep,
    StructureStep,
    TokenLengthStep,
)
from .importers import SFT_SHAPES
from .writer import BlockContext, BlockWrite, write_block

SFT_KIND = BlockKind("sft", SFT_SHAPES)


def _preference_kind() -> BlockKind:
    from .pairs import PAIR_SHAPESET

    return BlockKind("preference", PAIR_SHAPESET, pairs=True)


def conversation_steps(recipe: SftBlockRecipe, ctx: BlockContext, language: LanguageStep) -> list[BlockStep]:
    """The filters every conversation block runs, in order (a kind adds its own before or after these)."""
    steps: list[BlockStep] = [StructureStep(), CharLengthStep(), language]
    if recipe.filters.dedup is not None:
        steps.append(DedupStep(recipe.filters.dedup, recipe.seed))
    steps += [RenderStep(ctx.template, ctx.eos, loss_on_all=recipe.loss == "all"), TokenLengthStep(ctx.tokenizer),
              SampleStep(recipe.seed)]
    return steps


def read_sources(recipe: SftBlockRecipe, kind: BlockKind, base: Path) -> tuple[dict, dict]:
    """(items, books) per source name, in recipe order; self-cognition rows last."""
    items: dict[str, list[Item]] = {}
    books: dict[str, SourceBooks] = {}
    for src in recipe.sources:
        bk = books[src.name] = SourceBooks.for_source(src.name, src, recipe.filters, recipe.write_rejected)
        items[src.name] = read_source(src, base, bk, kind)
    sc = getattr(recipe, "self_cognition", None)
    if sc:
        bk = books[sc.source_name] = SourceBooks.for_source(sc.source_name, None, recipe.filters, recipe.write_rejected)
        convs = self_cognition.generate(sc, base)
        bk.read = len(convs)
        bk.step("import", bk.read, len(convs), {})
        items[sc.source_name] = [Item(c, copy=int(c.id.rsplit("#", 1)[1]) if "#" in c.id else 0) for c in convs]
    return items, books


def label_languages(items: dict[str, list[Item]]) -> None:
    """fastText language of kept conversations no language filter judged (for the manifest's ``languages``)."""
    undecided = [it for lst in items.values() for it in lst if it.conv.lang is None]
    if not undecided:
        return
    from shardsmith.pipelines.lid import detect_language

    from .filters import fix_cjk_label

    preds = detect_language([it.conv.text("user", "assistant", sep=" ") for it in undecided])
    for it, (lg, score) in zip(undecided, preds):
        lg = fix_cjk_label(lg, it.conv.text("user", "assistant")) if lg and score >= 0.3 else "unknown"
        it.conv = it.conv.model_copy(update={"lang": lg})


def build_sft(
    recipe: SftBlockRecipe | PreferenceBlockRecipe,
    out_dir: str | os.PathLike,
    *,
    recipe_dict: dict | None = None,
    base_dir: str | os.PathLike | None = None,
    timings: dict | None = None,
) -> Path:
    t_all = time.perf_counter()
    tm = timings if timings is not None else {}
    base = Path(base_dir) if base_dir else Path.cwd()
    pairs = isinstance(recipe, PreferenceBlockRecipe)
    kind = _preference_kind() if pairs else SFT_KIND

    t0 = time.perf_counter()
    ctx = BlockContext.resolve(recipe, base)
    tm["tokenizer_resolve"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    items, books = read_sources(recipe, kind, base)
    tm["import"] = time.perf_counter() - t0

    language = LanguageStep()
    steps = ([PairStep(recipe.pairs)] if pairs else []) + conversation_steps(recipe, ctx, language)
    run_steps(steps, items, books, tm)
    t0 = time.perf_counter()
    label_languages(items)
    tm["language_kept"] = time.perf_counter() - t0

    counts = check_counts(items, books)
    total_kept = sum(len(v) for v in items.values())
    if total_kept == 0:
        raise BuildError("no conversation survived the filters: " + json.dumps(counts, ensure_ascii=False))
    w = BlockWrite(
        kind="preference" if pairs else "sft", books=books, counts=counts, language_report=language.report(),
        disagreements=language.disagreements, recipe_dict=recipe_dict, split_by="pair" if pairs else "conversation",
        template_extra={"loss": "every token (loss: all)"} if recipe.loss == "all" else {},
    )
    if pairs:
        w.extra = {"pair_layout": PAIR_LAYOUT, "pair_filter": recipe.pairs.model_dump(mode="json")}
    out = write_block(out_dir, items, ctx, w, tm)
    tm["total"] = time.perf_counter() - t_all
    tm["conversations_read"] = sum(bk.read for bk in books.values())
    tm["conversations_kept"] = total_kept
    return out
