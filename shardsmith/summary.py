"""`shardsmith summary OUT`: one screen on what an output folder (``make demo``'s ``out/demo``) holds.

It reads only what the builders and the trainer wrote — each shard set's ``manifest.json`` and each stage's
``metrics.jsonl`` / ``stage.json`` — and prints where every output is, a data table (documents read / kept and tokens
written per source) and a training table (each stage's first -> last loss, validation loss, DPO held-out accuracy).
Given prompts, it also shows each stage's greedy completion of the same (templated) prompt side by side, through
the code path of ``shardsmith generate``.

Layout it understands (any subset; names are discovered, not fixed)::

    OUT/<set>/manifest.json            a shard set (mix, sft, preference): train/ validation/ tokenizer/ rejected/
    OUT/<runs>/<stage>/stage.json      a training run; stage order from OUT/<runs>/recipe.json
    OUT/sample/, OUT/sft_src/          the demo's raw inputs
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from shardsmith.schemas.manifest import MANIFEST_NAME, ShardManifest


@dataclass
class DataRow:
    """One source of one shard set: documents read from the raw input, kept by the filters, written, and tokens."""

    shard_set: str
    source: str
    read: int
    kept: int
    documents: int
    tokens: int


@dataclass
class StageRow:
    """One training stage, from its metrics.jsonl (``None`` where the stage logged no such value)."""

    name: str
    objective: str
    status: str
    steps: int
    first_loss: float | None
    last_loss: float | None
    first_val_loss: float | None
    last_val_loss: float | None
    val_dpo_accuracy: float | None
    folder: Path


@dataclass
class Summary:
    out: Path
    shard_sets: dict[str, ShardManifest] = field(default_factory=dict)
    data: list[DataRow] = field(default_factory=list)
    runs: Path | None = None
    stages: list[StageRow] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# reading


def _source_rows(set_name: str, m: ShardManifest) -> list[DataRow]:
    """Read / kept per source: a mix counts documents through its filter steps, a block counts records."""
    rows = []
    for s in m.sources:
        counts = (m.counts or {}).get(s.name)
        steps = m.filters.get(s.name, [])
        if counts is not None:
            read, kept = counts["read"], counts["kept"]
        elif steps:
            read, kept = steps[0].read, steps[-1].kept
        else:
            read, kept = s.documents_available, s.documents_available
        rows.append(DataRow(set_name, s.name, read, kept, s.documents, s.tokens))
    return rows


def _metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _first_last(rows: list[dict], key: str) -> tuple[float | None, float | None]:
    values = [r[key] for r in rows if r.get(key) is not None]
    return (values[0], values[-1]) if values else (None, None)


def stage_row(folder: Path) -> StageRow:
    """The training-table row of one stage folder (``OUT/runs/<stage>``)."""
    info = json.loads((folder / "stage.json").read_text(encoding="utf-8"))
    rows = _metrics(folder / "metrics.jsonl")
    first, last = _first_last(rows, "loss")
    first_val, last_val = _first_last(rows, "val_loss")
    _, acc = _first_last(rows, "val_dpo_accuracy")
    steps = info.get("steps_done", max((r["step"] for r in rows), default=0))
    return StageRow(folder.name, info.get("objective", "?"), info.get("status", "?"), steps, first, last, first_val,
                    last_val, acc, folder)


def _stage_order(runs: Path) -> list[str]:
    """Stage names in the recipe's order (recipe.json), else in the order they started."""
    names = [p.parent.name for p in runs.glob("*/stage.json")]
    recipe = runs / "recipe.json"
    if recipe.is_file():
        order = [s["name"] for s in json.loads(recipe.read_text(encoding="utf-8"))["recipe"]["stages"]]
        return [n for n in order if n in names]
    started = {n: json.loads((runs / n / "stage.json").read_text(encoding="utf-8")).get("started_at", "")
               for n in names}
    return sorted(names, key=lambda n: started[n])


_KIND_ORDER = {"mix": 0, "sft": 1, "preference": 2}  # shard sets in the order a chain uses them, then the rest


def collect(out_dir: str | os.PathLike) -> Summary:
    """Everything the summary shows, read from OUT's manifests and metrics; an OUT holding neither is an error."""
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: no such folder")
    summary = Summary(out=out)
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    sets = {p.name: ShardManifest.load(p) for p in folders if (p / MANIFEST_NAME).is_file()}
    for name, m in sorted(sets.items(), key=lambda item: (_KIND_ORDER.get(item[1].kind, 3), item[0])):
        summary.shard_sets[name] = m
        summary.data.extend(_source_rows(name, m))
    runs = next((p for p in folders if p.name not in sets and any(p.glob("*/stage.json"))), None)
    if runs is not None:
        summary.runs = runs
        summary.stages = [stage_row(runs / n) for n in _stage_order(runs)]
    if not summary.shard_sets and summary.runs is None:
        raise FileNotFoundError(f"{out}: holds no shard set (*/{MANIFEST_NAME}) and no training run (*/*/stage.json)")
    return summary


# ---------------------------------------------------------------------------------------------------------------
# completions: the code path of `shardsmith generate`


def complete(model_dir: str | os.PathLike, prompts: list[str], template: str | None = None,
             max_new_tokens: int = 40) -> list[tuple[str, str]]:
    """(prompt as the model saw it, greedy completion) for each prompt; ``template`` wraps each as one user turn."""
    from shardsmith.trainer.runner import generate

    if template:
        from shardsmith.builders.templates import chat_prompt, resolve_template

        tpl = resolve_template(template)
        prompts = [chat_prompt(p, tpl) for p in prompts]
    return list(zip(prompts, generate(str(model_dir), prompts, max_new_tokens=max_new_tokens)))


def stage_completions(summary: Summary, prompts: list[str], template: str | None,
                      max_new_tokens: int) -> dict[str, list[tuple[str, str]]]:
    """Per finished stage (its exported ``hf/final``), the completions of the same prompts."""
    return {s.name: complete(s.folder / "hf" / "final", prompts, template, max_new_tokens)
            for s in summary.stages if (s.folder / "hf" / "final").is_dir()}


# ---------------------------------------------------------------------------------------------------------------
# rendering


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def _arrow(a: float | None, b: float | None) -> str:
    return "-" if a is None else f"{_num(a)} -> {_num(b)}"


def _where(summary: Summary) -> list[str]:
    out = summary.out
    lines = [f"outputs (under {out}/):"]

    def add(label: str, path: Path, note: str = "") -> None:
        if path.exists():
            lines.append(f"  {label:<18} {path.relative_to(out)}{'/' if path.is_dir() else ''}  {note}".rstrip())

    add("raw sample corpus", out / "sample")
    add("raw SFT/pref data", out / "sft_src")
    for name, m in summary.shard_sets.items():
        what = {"mix": "pretraining mix", "sft": "SFT block", "preference": "preference block"}.get(m.kind, m.kind)
        tokens = sum(v.tokens for v in m.splits.values())
        add(what, out / name, f"shards: {'/ '.join(m.splits)}/ ({tokens:,} tokens), manifest.json, tokenizer/")
        add("  rejected docs", out / name / "rejected", "every dropped document, with its step and reason")
        add("  mix chart", out / name / "mix.png")
    if summary.runs is not None:
        add("training runs", summary.runs, "recipe.json")
        for s in summary.stages:
            add(f"  {s.name}", s.folder, "metrics.jsonl, stage.json, ckpt/")
            add("    model", s.folder / "hf" / "final", "HF format: shardsmith generate / AutoModelForCausalLM")
            add("    loss plot", s.folder / "loss.png")
    return lines


def _data_table(rows: list[DataRow]) -> list[str]:
    lines = [f"{'set':<8} {'source':<18} {'read':>8} {'kept':>8} {'written':>8} {'tokens':>10}"]
    for r in rows:
        lines.append(f"{r.shard_set:<8} {r.source:<18} {r.read:>8,} {r.kept:>8,} {r.documents:>8,} {r.tokens:>10,}")
    return lines


def _stage_table(stages: list[StageRow]) -> list[str]:
    lines = [f"{'stage':<10} {'objective':<9} {'steps':>6}  {'loss first -> last':<20} {'val loss first -> last':<24}"
             f" {'DPO held-out acc':>16}"]
    for s in stages:
        status = "" if s.status == "done" else f"  ({s.status})"
        lines.append(f"{s.name:<10} {s.objective:<9} {s.steps:>6}  {_arrow(s.first_loss, s.last_loss):<20} "
                     f"{_arrow(s.first_val_loss, s.last_val_loss):<24} {_num(s.val_dpo_accuracy):>16}{status}")
    return lines


def _completion_lines(completions: dict[str, list[tuple[str, str]]], template: str | None) -> list[str]:
    if not completions:
        return []
    stages = list(completions)
    lines = [f"greedy completions of the same prompt{f' (as one {template} user turn)' if template else ''}:"]
    for i, (shown, _) in enumerate(completions[stages[0]]):
        lines.append(f"  prompt {shown!r}")
        for name in stages:
            lines.append(f"    {name:<9} {completions[name][i][1]!r}")
    return lines


def render(summary: Summary, completions: dict[str, list[tuple[str, str]]] | None = None,
           template: str | None = None) -> str:
    parts = [_where(summary)]
    if summary.data:
        parts.append(["data (documents; a preference block counts pairs as read/kept, two documents each):",
                      *_data_table(summary.data)])
    if summary.stages:
        parts.append(["training (val = held-out rows; DPO loss and accuracy are per pair):",
                      *_stage_table(summary.stages)])
    parts.append(_completion_lines(completions or {}, template))
    return "\n\n".join("\n".join(p) for p in parts if p)
