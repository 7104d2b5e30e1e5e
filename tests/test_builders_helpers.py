"""Helpers for the builders tests: write conversations and recipes, build, decode."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from shardsmith.builders.build import build


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def build_recipe(tmp: Path, recipe: dict, name: str = "recipe.yaml", overrides: list[str] | None = None) -> Path:
    rp = tmp / name
    rp.write_text(yaml.safe_dump(recipe, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return build(str(rp), str(tmp / (rp.stem + "_out")), overrides)


def load_manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))
