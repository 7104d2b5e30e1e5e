"""Load a YAML recipe: ``${ENV}`` interpolation, ``--set a.b=c`` overrides, pydantic validation.

Every error names the recipe file and the field path, and is raised before any work starts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the field."""


def _expand(text: str, where: str, source: str) -> str:
    """Expand ``${NAME}`` and ``${NAME:-default}``; a default may itself hold ``${...}``."""
    out, i = [], 0
    while i < len(text):
        start = text.find("${", i)
        if start < 0:
            out.append(text[i:])
            break
        out.append(text[i:start])
        depth, j = 0, start
        while j < len(text):  # find the matching brace, allowing nested ${...} in the default
            if text.startswith("${", j):
                depth += 1
                j += 2
                continue
            if text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if depth:
            raise RecipeError(f"{source}: field '{where}': unclosed '${{' in {text!r}")
        body = text[start + 2 : j]
        name, sep, default = body.partition(":-")
        if not _ENV_NAME.fullmatch(name):
            raise RecipeError(f"{source}: field '{where}': '${{{body}}}' is not a valid variable reference")
        if name in os.environ:
            out.append(os.environ[name])
        elif sep:
            out.append(_expand(default, where, source))
        else:
            raise RecipeError(f"{source}: field '{where}': environment variable ${{{name}}} is not set")
        i = j + 1
    return "".join(out)


def _interpolate(value: Any, where: str, source: str) -> Any:
    if isinstance(value, str):
        return _expand(value, where, source) if "${" in value else value
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else str(k), source) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]", source) for i, v in enumerate(value)]
    return value


def apply_override(data: dict, assignment: str, source: str = "--set") -> None:
    """Apply ``a.b.0.c=value`` in place; the value is parsed as YAML (numbers, lists, booleans)."""
    if "=" not in assignment:
        raise RecipeError(f"{source}: '{assignment}' is not of the form key.path=value")
    key, raw = assignment.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise RecipeError(f"{source}: '{assignment}' has an empty key")
    value = yaml.safe_load(raw) if raw.strip() else ""
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            idx = _list_key(node, part, key, source)
            if last:
                node[idx] = value
            else:
                node = node[idx]
            continue
        if not isinstance(node, dict):
            raise RecipeError(f"{source}: '{key}': '{part}' goes below a value that is not a mapping or list")
        if last:
            node[part] = value
        else:
            if node.get(part) is None:
                node[part] = [] if parts[i + 1].isdigit() else {}
            node = node[part]


def _list_key(node: list, part: str, key: str, source: str) -> int:
    """A list is addressed by index, or by the `name` of its items: sources.c4.weight=0.2."""
    if part.isdigit():
        return _index(node, part, key, source)
    named = [j for j, item in enumerate(node) if isinstance(item, dict) and item.get("name") == part]
    if not named:
        raise RecipeError(f"{source}: '{key}': no item named '{part}' in the list")
    return named[0]


def _index(node: list, part: str, key: str, source: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise RecipeError(f"{source}: '{key}': '{part}' is not an index into a list of {len(node)}")
    return int(part)


def load_recipe_dict(path: str | os.PathLike, overrides: list[str] | None = None) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RecipeError(f"{path}: cannot read recipe: {err.strerror or err}") from err
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: invalid YAML: {err}") from err
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping at the top level, got {type(data).__name__}")
    for assignment in overrides or []:
        apply_override(data, assignment, source=f"{path} (--set {assignment})")
    return _interpolate(data, "", str(path))


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid recipe ({err.error_count()} problem{'s' if err.error_count() > 1 else ''}):"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<top level>"
        lines.append(f"  field '{loc}': {e['msg']}")
    return "\n".join(lines)


def validate(model: type[M], data: dict, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise RecipeError(format_validation_error(err, source)) from None


def load_recipe(model: type[M], path: str | os.PathLike, overrides: list[str] | None = None) -> M:
    return validate(model, load_recipe_dict(path, overrides), str(path))
