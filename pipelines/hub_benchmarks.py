"""Benchmarks named on the Hugging Face hub (``hf:<repo>[:<config>][@<split>]``) for decontamination.

A user may name a hub dataset in ``decontaminate.benchmarks`` or ``$SHARDSMITH_BENCHMARKS`` in place of a local
folder. Only then is the hub touched: ``datasets.load_dataset`` fetches the split once, and its rows are written as
JSON lines into a local cache (``$SHARDSMITH_CACHE`` or ``~/.cache/shardsmith``, ``benchmarks/<repo>/<config>/
<split>.jsonl``, temp name then rename). Every later build reads that file like any local benchmark file (so the
index fingerprint and the importers are the same as for ``../shared/data``) and needs no network.

Rows are written as the hub has them, with one exception the importers need: a list column ``choices`` of plain
strings with an integer ``answer`` (``cais/mmlu``'s layout) becomes ``choice0..choiceN`` (the ``mmlu_indexed``
shape). Unreachable hub (no network, unknown repo) -> one-line error saying how to point at a local copy.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HUB_PREFIX = "hf:"
ENV_CACHE = "SHARDSMITH_CACHE"
_SPEC = re.compile(r"^hf:(?P<repo>[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?)(?::(?P<config>[\w.-]+))?(?:@(?P<split>[\w.-]+))?$")


class HubBenchmarkError(ValueError):
    """A hub benchmark cannot be named or fetched (one line for the CLI)."""


@dataclass(frozen=True)
class HubBenchmark:
    """One hub split: ``repo`` (``owner/name``), ``config`` (None: the default) and ``split`` (default ``test``)."""

    repo: str
    config: str | None
    split: str

    @property
    def name(self) -> str:
        """The benchmark's name in the manifest: the repo's last part without a ``mcq_`` prefix (``cais/mmlu`` ->
        ``mmlu``), plus the config when one is named (``mmlu-all``)."""
        base = self.repo.rsplit("/", 1)[-1].lower().removeprefix("mcq_")
        return f"{base}-{self.config}" if self.config else base

    def cache_file(self, cache: Path | None = None) -> Path:
        root = cache or Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "shardsmith")
        return root / "benchmarks" / self.repo / (self.config or "default") / f"{self.split}.jsonl"


def is_hub_name(raw: str) -> bool:
    return raw.startswith(HUB_PREFIX)


def parse_hub_name(raw: str) -> HubBenchmark:
    """``hf:cais/mmlu:all@test`` -> HubBenchmark; anything else after ``hf:`` is a one-line error."""
    m = _SPEC.match(raw.strip())
    if not m:
        raise HubBenchmarkError(f"decontaminate: '{raw}' is not a hub benchmark name (hf:<owner>/<name>[:<config>]"
                                "[@<split>], e.g. hf:cais/mmlu:all@test)")
    return HubBenchmark(m["repo"], m["config"], m["split"] or "test")


def flatten_choices(row: dict[str, Any]) -> dict[str, Any]:
    """``choices: [str, ...]`` + integer ``answer`` -> ``choice0..choiceN`` (the importers' ``mmlu_indexed``);
    any other row unchanged."""
    choices, answer = row.get("choices"), row.get("answer")
    if not (isinstance(choices, list) and choices and all(isinstance(c, str) for c in choices)
            and isinstance(answer, int) and not isinstance(answer, bool)):
        return row
    out = {k: v for k, v in row.items() if k != "choices"}
    out.update({f"choice{i}": text for i, text in enumerate(choices)})
    return out


def write_rows(rows, path: Path) -> Path:
    """Rows (dicts, e.g. a ``datasets.Dataset``) -> JSON lines at ``path`` (temp name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(flatten_choices(dict(row)), ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)
    return path


def fetch_hub_benchmark(raw: str, cache: Path | None = None) -> tuple[str, Path]:
    """(benchmark name, local JSON-lines file) for a hub name; fetched once, then read from the cache offline."""
    spec = parse_hub_name(raw)
    target = spec.cache_file(cache)
    if target.is_file():
        return spec.name, target
    try:
        import datasets

        rows = datasets.load_dataset(spec.repo, spec.config, split=spec.split)
    except Exception as e:  # datasets raises many kinds (connection, missing config, offline mode): one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise HubBenchmarkError(f"decontaminate: cannot fetch hub benchmark {raw} ({type(e).__name__}: {first[:200]});"
                                f" no network? put a local copy in a folder and name that folder instead") from None
    return spec.name, write_rows(rows, target)
