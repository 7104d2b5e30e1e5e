"""``evaluate()``: score benchmarks on a model folder into ``OUT/items.jsonl`` and ``OUT/results.json``.

Resumable: ``items.jsonl`` is appended a chunk of items at a time and fsync'd; a re-run with the same settings skips
the items it holds (a torn last line of a killed run is cut off) and ``results.json`` is always computed from it.
``OUT/run.json`` records the settings; a re-run with other settings is refused instead of mixing two runs' items.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import format_bench, truth_list
from .benchmarks import EvalError, EvalItem, get_benchmark, load_items
from .domains import subject_to_domain

CHUNK_ITEMS = 64
GSM8K_STOP = ("Question:", "\n\n")
_ANSWER_NUMBER = re.compile(r"####\s*(-?[\d,]*\.?\d+)")


# ----------------------------------------------------------------------------------------------------------------
# the items file


def read_item_rows(path: Path) -> list[dict]:
    """The rows of ``items.jsonl``; a torn last line (a run killed mid-write) is cut off the file."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    good = data[:data.rfind(b"\n") + 1]
    if len(good) != len(data):
        with open(path, "r+b") as f:
            f.truncate(len(good))
    rows = []
    for n, line in enumerate(good.decode("utf-8").splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise EvalError(f"{path}: line {n}: not JSON ({err.msg}); remove the line or the file") from None
    return rows


def append_rows(path: Path, rows: list[dict]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _check_settings(out: Path, settings: dict) -> None:
    run_file = out / "run.json"
    if run_file.is_file():
        old = json.loads(run_file.read_text(encoding="utf-8"))
        diff = [k for k in ("model", "shots", "split", "limit") if old.get(k) != settings.get(k)]
        if diff:
            raise EvalError(f"{out} holds a run with other settings ({', '.join(f'{k}={old.get(k)!r}' for k in diff)}"
                            "); use another --out")
        settings = {**settings, "benchmarks": sorted(set(old.get("benchmarks", [])) | set(settings["benchmarks"]))}
    write_json(run_file, settings)


# ----------------------------------------------------------------------------------------------------------------
# scoring


def score_choice_items(lm, items: list[EvalItem], progress=None) -> list[dict]:
    """One row per item: log-likelihood of every option in every form, the option each form chooses (raw and
    length-normalised for the ``text`` form), the gold index."""
    pairs, where = [], []
    for i, item in enumerate(items):
        for form_name, form in item.forms.items():
            for cont in form.continuations:
                pairs.append((form.context, cont))
                where.append((i, form_name))
    lls = lm.loglikelihoods(pairs, progress)
    per_item: list[dict[str, list[float]]] = [defaultdict(list) for _ in items]
    for (i, form_name), ll in zip(where, lls):
        per_item[i][form_name].append(ll)
    return [choice_row(item, dict(ll)) for item, ll in zip(items, per_item)]


def row_head(item: EvalItem) -> dict:
    """What every items.jsonl row starts with: benchmark, id, subject, the macro-domains the item counts in (its
    partition domain, then overlapping groups such as CMMLU's China specific; only for benchmarks with domains, so a
    reader such as the trainer's champion selection can pair items per domain without the tables) and gold."""
    head = {"benchmark": item.bench, "id": item.id, "subject": item.subject}
    bench = get_benchmark(item.bench)
    if bench.domains:
        domain = subject_to_domain(bench.domains).get(item.subject, "unmapped")
        extra = [g for g, subjects in (bench.extra_domains or {}).items() if item.subject in subjects]
        head["domains"] = [domain, *extra]
    return {**head, "gold": item.gold}


def choice_row(item: EvalItem, ll: dict[str, list[float]]) -> dict:
    chosen = {}
    for form_name, values in ll.items():
        chosen[form_name] = int(np.argmax(values))
        if form_name == "text":
            lengths = np.array([float(len(o)) for o in item.forms[form_name].options])
            chosen["text_norm"] = int(np.argmax(np.array(values) / lengths))
    return {**row_head(item), "chosen": chosen, "loglikelihood": ll}


def final_number(text: str) -> str | None:
    """The number after the last ``####`` of a generation, thousands commas removed (GSM8K's answer key form)."""
    found = _ANSWER_NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


def _same_number(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


def _truth_chosen(gold: dict, text: str) -> dict:
    verdict = truth_list.truth_match(text, gold["accepted"], gold["rejected"])
    return {"matched": verdict.matched, "vetoed_by": verdict.vetoed_by}


@dataclass(frozen=True)
class Generation:
    """How a generated benchmark kind is scored: where generation stops, what an items.jsonl row records as
    ``chosen`` (from the item's gold and the generated text), and the metrics a row counts for (from the row, so
    results.json is always recomputed from items.jsonl)."""

    stop: tuple[str, ...]
    chosen: Callable[[object, str], dict]
    hits: Callable[[dict], dict[str, bool]]


GENERATIONS: dict[str, Generation] = {
    "gsm8k": Generation(GSM8K_STOP, lambda gold, text: {"answer": final_number(text)},
                        lambda row: {"exact_match": row["chosen"]["answer"] is not None
                                     and _same_number(row["chosen"]["answer"], row["gold"])}),
    "truth_list": Generation(truth_list.STOP, _truth_chosen,
                             lambda row: {"truth_match": row["chosen"]["matched"] is not None
                                          and row["chosen"]["vetoed_by"] is None}),
    "surgical": Generation(format_bench.STOP, lambda gold, text: format_bench.form_verdict(text, gold),
                           format_bench.form_hits),
}


def score_generation_items(lm, items: list[EvalItem], max_new_tokens: int, progress=None) -> list[dict]:
    """Greedy generations of one benchmark's items (a chunk never mixes benchmarks), scored by its
    :data:`GENERATIONS` row; ``chat`` items go through the model's chat template."""
    gen = GENERATIONS[get_benchmark(items[0].bench).kind]
    prompts = [lm.chat_prompt(it.prompt) if it.chat else it.prompt for it in items]
    texts = lm.generate(prompts, max_new_tokens=max_new_tokens, stop=gen.stop, progress=progress)
    return [{**row_head(it), "chosen": gen.chosen(it.gold, t), "generated": t} for it, t in zip(items, texts)]


# ----------------------------------------------------------------------------------------------------------------
# results


def _correct(row: dict) -> dict[str, bool]:
    gen = GENERATIONS.get(get_benchmark(row["benchmark"]).kind)
    if gen is not None:
        return gen.hits(row)
    return {f"acc_{form}": chosen == row["gold"] for form, chosen in row["chosen"].items()}


def accuracy(hits: list[bool]) -> dict:
    """Mean, n and standard error of the mean with the sample standard deviation (lm-eval's ``mean_stderr``)."""
    n = len(hits)
    acc = sum(hits) / n
    stderr = math.sqrt(acc * (1 - acc) * n / (n - 1) / n) if n > 1 else float("nan")
    return {"acc": acc, "n": n, "stderr": stderr}


def _metrics(rows: list[dict]) -> dict[str, dict]:
    hits: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        for metric, ok in _correct(row).items():
            hits[metric].append(ok)
    return {metric: accuracy(h) for metric, h in hits.items()}


def summarise(rows: list[dict], benches: list[str]) -> dict:
    """results.json: per benchmark its metrics, and per macro-domain (where the benchmark has a map) and subject."""
    out = {}
    for name in benches:
        bench = get_benchmark(name)
        mine = [r for r in rows if r["benchmark"] == name]
        if not mine:
            continue
        entry = {"primary": bench.primary, "metrics": _metrics(mine)}
        subjects = defaultdict(list)
        for r in mine:
            if r.get("subject"):
                subjects[r["subject"]].append(r)
        if len(subjects) > 1:
            entry[bench.group_label] = {s: _metrics(rs) for s, rs in sorted(subjects.items())}
        if bench.domains:
            entry["domains"] = _domain_metrics(bench, mine)
        out[name] = entry
    return out


def _domain_metrics(bench, rows: list[dict]) -> dict[str, dict]:
    """Metrics per domain of the partition (``unmapped`` for a subject outside it), then per overlapping extra group
    (CMMLU's China specific) that holds any of the rows."""
    to_domain = subject_to_domain(bench.domains)
    domains = defaultdict(list)
    for r in rows:
        domains[to_domain.get(r.get("subject"), "unmapped")].append(r)
    out = {d: _metrics(rs) for d, rs in sorted(domains.items())}
    for group, subjects in (bench.extra_domains or {}).items():
        members = [r for r in rows if r.get("subject") in subjects]
        if members:
            out[group] = _metrics(members)
    return out


def markdown_table(results: dict) -> str:
    """Headline metric per benchmark, then its domains, as a markdown table."""
    lines = ["| benchmark | metric | accuracy | ± stderr | n |", "|---|---|---:|---:|---:|"]
    for name, entry in results.items():
        metric = entry["primary"]
        groups = [(name, entry["metrics"])] + [(f"{name} / {d}", m) for d, m in entry.get("domains", {}).items()]
        for label, metrics in groups:
            m = metrics[metric]
            lines.append(f"| {label} | {metric} | {100 * m['acc']:.2f} | {100 * m['stderr']:.2f} | {m['n']} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# the entry point


def evaluate(model_dir: str | os.PathLike, benches: list[str], shots: int, out_dir: str | os.PathLike, *,
             split: str | None = None, data: str | os.PathLike | None = None, limit: int | None = None,
             batch_size: int = 32, device: str | None = None, dtype: str = "float32", max_new_tokens: int = 256,
             progress: bool = True, lm=None, chunk_items: int = CHUNK_ITEMS) -> dict:
    """Score ``benches`` on the HF model folder ``model_dir``; returns the results dict also written to
    ``out_dir/results.json`` (items in ``out_dir/items.jsonl``). ``lm``: an already loaded :class:`CausalLM` (the
    benchmark script reuses one); else the model is loaded only if some item is still unscored. ``chunk_items``: items
    scored between two appends (and fsyncs) of ``items.jsonl``: what a killed run loses at most."""
    from tqdm.auto import tqdm

    for name in benches:
        get_benchmark(name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, {"model": str(Path(model_dir).resolve()), "benchmarks": list(benches), "shots": shots,
                          "split": split, "limit": limit})
    items_path = out / "items.jsonl"
    done = {(r["benchmark"], r["id"]) for r in read_item_rows(items_path)}
    for name in benches:
        items = load_items(name, data=data, split=split, shots=shots, limit=limit)
        todo = [it for it in items if (name, it.id) not in done]
        if not todo:
            continue
        lm = lm or _load(model_dir, batch_size, device, dtype)
        with tqdm(total=len(items), initial=len(items) - len(todo), desc=name, unit="item",
                  disable=not progress) as bar:
            for start in range(0, len(todo), chunk_items):
                chunk = todo[start:start + chunk_items]
                rows = (score_generation_items(lm, chunk, max_new_tokens) if chunk[0].prompt is not None
                        else score_choice_items(lm, chunk))
                append_rows(items_path, rows)
                bar.update(len(chunk))
    results = {"model": str(model_dir), "shots": shots, "split": split,
               "benchmarks": summarise(read_item_rows(items_path), benches)}
    write_json(out / "results.json", results)
    return results


def _load(model_dir, batch_size, device, dtype):
    from .lm import CausalLM

    return CausalLM(model_dir, batch_size=batch_size, device=device, dtype=dtype)
