"""Public entry points: ``train`` (all stages of a recipe, or one) and ``generate`` (greedy completions)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from shardsmith.schemas.train_recipe import TrainRecipe

from shardsmith.recipes import load_recipe


def train(recipe_path: str, out_dir: str, overrides: list[str] | None = None, stage: str | None = None,
          resume: bool = False) -> None:
    """Run every stage of RECIPE in order (or only ``stage``) into ``out_dir/<stage>/``.

    ``resume``: finished stages are skipped, an unfinished one continues from its last DeepSpeed checkpoint, and
    the run's order of data is exactly the uninterrupted one's."""
    from shardsmith.trainer.stages import preflight, release_memory, run_stage, stage_done

    recipe = load_recipe(TrainRecipe, recipe_path, overrides)
    names = [s.name for s in recipe.stages]
    if stage is not None and stage not in names:
        raise ValueError(f"{recipe_path}: no stage named '{stage}' (stages: {', '.join(names)})")
    todo = [stage] if stage else names
    out = Path(out_dir)
    preflight(recipe, todo, out)
    if int(os.environ.get("RANK", "0")) == 0:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".recipe.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps({"recipe_path": str(recipe_path), "overrides": overrides or [],
                                   "recipe": recipe.model_dump(mode="json")}, indent=2))
        os.replace(tmp, out / "recipe.json")
    for i, s in enumerate(recipe.stages):
        if s.name not in todo:
            continue
        if resume and stage_done(out, s.name):
            print(f"[shardsmith.train] {s.name}: already done, skipped (--resume)", flush=True)
            continue
        run_stage(recipe, i, out, resume=resume)
        release_memory()


def generate(model_dir: str, prompts: list[str], max_new_tokens: int = 40) -> list[str]:
    from shardsmith.trainer.generate import generate as _generate

    return _generate(model_dir, prompts, max_new_tokens)
