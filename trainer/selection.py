"""Champion selection over a stage's benchmark sweep, paired statistics between candidates, the sweep table and plot.

Reads only the files ``shardsmith eval`` writes per scored checkpoint (``results.json``: per benchmark its primary
metric, metrics, domains and subjects; ``items.jsonl``: per item its benchmark, id, subject, gold and the option each
prompt form chose) — the trainer never imports evaluation/ (it imports builders/).

A metric reference is ``BENCH[/GROUP][@METRIC]``: ``mmlu`` (the benchmark's primary metric over all its items),
``mmlu/stem`` (a macro-domain, else a subject), ``hellaswag@acc_text`` (another metric than the primary).

Paired statistics, written here because they are a few lines and the exact binomial tail needs no library: on the
items two checkpoints both scored, the exact McNemar test (two-sided binomial test of the discordant pairs at 1/2,
as ``scipy.stats.binomtest``) and a paired bootstrap of the accuracy difference (items resampled with replacement,
fixed seed). A lead is "within noise" when p >= alpha or the bootstrap interval holds 0.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


class SelectionError(ValueError):
    """A sweep cannot be judged (a metric the results lack, a missing results file); one line."""


@dataclass(frozen=True)
class Scored:
    """One scored checkpoint: its step, the ``hf/<tag>`` folder it was exported to, and its ``eval/step-N`` folder."""

    step: int
    tag: str
    folder: Path


@dataclass(frozen=True)
class MetricRef:
    bench: str
    group: str | None
    metric: str | None

    @classmethod
    def parse(cls, ref: str) -> MetricRef:
        head, _, metric = ref.partition("@")
        bench, _, group = head.partition("/")
        return cls(bench, group or None, metric or None)


# ----------------------------------------------------------------------------------------------------------------
# reading one checkpoint's scores


def read_results(folder: Path) -> dict:
    """``results.json``'s per-benchmark entries."""
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise SelectionError(f"{path}: missing (was the checkpoint scored?)")
    return json.loads(path.read_text(encoding="utf-8"))["benchmarks"]


def read_items(folder: Path) -> list[dict]:
    """``items.jsonl``'s rows; a torn last line (an evaluation killed mid-write) is ignored."""
    path = Path(folder) / "items.jsonl"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else ():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def metric_value(results: dict, ref: str) -> float:
    """The accuracy (a fraction) that ``ref`` names in one checkpoint's results."""
    m = MetricRef.parse(ref)
    if m.bench not in results:
        raise SelectionError(f"metric '{ref}': the results hold no benchmark '{m.bench}' "
                             f"(scored: {', '.join(results) or 'none'})")
    entry = results[m.bench]
    metrics = entry["metrics"]
    if m.group:
        groups = {**entry.get("subjects", {}), **entry.get("domains", {})}
        if m.group not in groups:
            raise SelectionError(f"metric '{ref}': {m.bench} has no domain or subject '{m.group}' "
                                 f"(domains: {', '.join(entry.get('domains', {})) or 'none'})")
        metrics = groups[m.group]
    name = m.metric or entry["primary"]
    if name not in metrics:
        raise SelectionError(f"metric '{ref}': {m.bench} has no metric '{name}' (has: {', '.join(metrics)})")
    return metrics[name]["acc"]


def _same_number(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return a == b


def row_correct(row: dict, metric: str) -> bool:
    """Whether one ``items.jsonl`` row is right under ``metric`` (``acc_<form>``: the form's choice is the gold index;
    ``exact_match``: the generated final number equals the gold one)."""
    if metric == "exact_match":
        answer = row["chosen"].get("answer")
        return answer is not None and _same_number(answer, row["gold"])
    return row["chosen"].get(metric.removeprefix("acc_")) == row["gold"]


def item_hits(rows: list[dict], ref: str, primary: str) -> tuple[dict[str, bool], str]:
    """({item id: correct}, which items) for the items ``ref`` covers. A domain is matched on a row's ``domains``
    (the evaluator writes them for benchmarks with macro-domains); a subject on its ``subject``; rows naming neither
    (files from an older evaluator) leave all the benchmark's items in use, and the second value says so."""
    m = MetricRef.parse(ref)
    mine = [r for r in rows if r["benchmark"] == m.bench]
    scope = f"all {m.bench} items"
    if m.group:
        by_domain = [r for r in mine if m.group in (r.get("domains") or ())]
        by_subject = [r for r in mine if r.get("subject") == m.group]
        if by_domain or by_subject:
            mine, scope = by_domain or by_subject, f"{m.bench} items of {m.group}"
        else:
            scope = f"all {m.bench} items (items.jsonl rows name no domain '{m.group}')"
    metric = m.metric or primary
    return {str(r["id"]): row_correct(r, metric) for r in mine}, scope


# ----------------------------------------------------------------------------------------------------------------
# paired statistics


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: ``b`` items only the first checkpoint got right, ``c`` only the second;
    under no difference each discordant item is a fair coin, so p = P(|Binomial(b+c, 1/2) - n/2| >= |b - n/2|)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_bootstrap(diffs: list[int], samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                     level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean per-item difference (first minus second, each -1/0/1), items resampled."""
    import numpy as np

    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(samples, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_compare(hits_a: dict[str, bool], hits_b: dict[str, bool], alpha: float) -> dict:
    """First vs second checkpoint on the items both scored: discordant counts, accuracy difference (pp), exact
    McNemar p, 95 % paired-bootstrap interval (pp), and the verdict."""
    common = sorted(set(hits_a) & set(hits_b))
    only_a = sum(hits_a[i] and not hits_b[i] for i in common)
    only_b = sum(hits_b[i] and not hits_a[i] for i in common)
    diffs = [int(hits_a[i]) - int(hits_b[i]) for i in common]
    p = mcnemar_exact(only_a, only_b)
    lo, hi = paired_bootstrap(diffs)
    noise = p >= alpha or lo <= 0 <= hi
    return {"n": len(common), "first_only": only_a, "second_only": only_b,
            "diff_pp": 100 * sum(diffs) / len(common) if common else 0.0, "p_mcnemar": p,
            "ci95_pp": [100 * lo, 100 * hi], "verdict": "within noise" if noise else "significant"}


# ----------------------------------------------------------------------------------------------------------------
# guards and the champion


def judge_guards(guards, values: dict[str, float], start: dict[str, float]) -> list[dict]:
    """Each guard's drops below the start (pp, positive = worse), the metrics over ``max_drop_pp``, and its verdict."""
    out = []
    for g in guards:
        drops = {m: 100 * (start[m] - values[m]) for m in g.metrics}
        failing = [m for m, d in drops.items() if d > g.max_drop_pp + 1e-9]
        out.append({"metrics": list(g.metrics), "max_drop_pp": g.max_drop_pp, "max_failing": g.max_failing,
                    "drops_pp": drops, "failing": failing, "passed": len(failing) <= g.max_failing})
    return out


def _needed_metrics(spec) -> list[str]:
    return list(dict.fromkeys([spec.metric] + [m for g in spec.guards for m in g.metrics]))


def check_metrics(spec, folder: Path) -> None:
    """Fail early (right after the start is scored) when the rule names a metric the results do not have."""
    results = read_results(folder)
    for ref in _needed_metrics(spec):
        metric_value(results, ref)


def _candidate_rows(spec, scored: list[Scored]) -> list[dict]:
    start = scored[0]
    start_vals = {ref: metric_value(read_results(start.folder), ref) for ref in _needed_metrics(spec)}
    rows = []
    for s in scored:
        vals = {ref: metric_value(read_results(s.folder), ref) for ref in _needed_metrics(spec)}
        guards = judge_guards(spec.guards, vals, start_vals)
        eligible = s.step != start.step or spec.include_start
        rows.append({"step": s.step, "tag": s.tag, "value_pp": 100 * vals[spec.metric],
                     "metrics_pp": {k: 100 * v for k, v in vals.items()}, "guards": guards,
                     "passed": all(g["passed"] for g in guards), "eligible": eligible})
    return rows


def _rank(rows: list[dict], mode: str) -> list[dict]:
    """Passing, eligible candidates best first; ties go to the earlier step (fewer updates away from the start)."""
    sign = -1 if mode == "max" else 1
    return sorted((r for r in rows if r["passed"] and r["eligible"]), key=lambda r: (sign * r["value_pp"], r["step"]))


def _hits_of(spec, scored: Scored) -> tuple[dict[str, bool], str]:
    bench = MetricRef.parse(spec.metric).bench
    primary = read_results(scored.folder)[bench]["primary"]
    return item_hits(read_items(scored.folder), spec.metric, primary)


def _compare(spec, champion: Scored, other: Scored, against: str) -> dict:
    hits_c, scope = _hits_of(spec, champion)
    hits_o, _ = _hits_of(spec, other)
    return {"against": against, "step": other.step, "tag": other.tag, "items": scope,
            **paired_compare(hits_c, hits_o, spec.alpha)}


def select_champion(spec, scored: list[Scored]) -> dict:
    """The selection report: every candidate with its metric values and guard verdicts, the champion and why, and
    paired comparisons of the champion with the runner-up and with the start. ``scored[0]`` is the start (step 0)."""
    if not scored:
        raise SelectionError("no scored checkpoints to select from")
    rows = _candidate_rows(spec, scored)
    ranked = _rank(rows, spec.mode)
    by_step = {s.step: s for s in scored}
    if ranked:
        best = ranked[0]
        among = (f"{len(ranked)} of {sum(r['eligible'] for r in rows)} candidates passing the guards" if spec.guards
                 else f"{len(ranked)} candidates")
        word = "highest" if spec.mode == "max" else "lowest"
        reason = f"{word} {spec.metric} ({best['value_pp']:.2f}) among {among}"
    else:
        best = rows[0] if spec.fallback == "start" else rows[-1]
        reason = f"no candidate passed the guards: handing on the {spec.fallback} ({best['tag']})"
    rejected = [r for r in rows if r["eligible"] and not r["passed"] and
                (r["value_pp"] > best["value_pp"] if spec.mode == "max" else r["value_pp"] < best["value_pp"])]
    if rejected:
        reason += "; rejected by a guard despite a better metric: " + ", ".join(
            f"{r['tag']} ({r['value_pp']:.2f}; failing {', '.join(f for g in r['guards'] for f in g['failing'])})"
            for r in rejected)
    champion = by_step[best["step"]]
    comparisons = []
    if len(ranked) > 1 and ranked[0] is best:
        comparisons.append(_compare(spec, champion, by_step[ranked[1]["step"]], "runner-up"))
    if champion.step != scored[0].step:
        comparisons.append(_compare(spec, champion, scored[0], "start"))
    for c in comparisons:
        reason += (f"; lead over the {c['against']} ({c['tag']}) {c['diff_pp']:+.2f} pp is {c['verdict']} "
                   f"(McNemar p={c['p_mcnemar']:.3g}, n={c['n']})")
    return {"metric": spec.metric, "mode": spec.mode, "alpha": spec.alpha, "candidates": rows,
            "champion": {"step": best["step"], "tag": best["tag"], "value_pp": best["value_pp"], "reason": reason},
            "comparisons": comparisons}


# ----------------------------------------------------------------------------------------------------------------
# the sweep table and plot


def sweep_columns(scored: list[Scored]) -> list[str]:
    """Every benchmark's primary metric, then its domains, as metric references (the table's and plot's columns)."""
    cols: list[str] = []
    for s in scored:
        for bench, entry in read_results(s.folder).items():
            for ref in [bench] + [f"{bench}/{d}" for d in entry.get("domains", {})]:
                if ref not in cols:
                    cols.append(ref)
    return cols


def sweep_values(scored: list[Scored]) -> tuple[list[str], dict[int, dict[str, float]]]:
    """(columns, {step: {column: accuracy in pp}})."""
    cols = sweep_columns(scored)
    values = {}
    for s in scored:
        res = read_results(s.folder)
        values[s.step] = {c: 100 * metric_value(res, c) for c in cols if _has(res, c)}
    return cols, values


def _has(results: dict, ref: str) -> bool:
    try:
        metric_value(results, ref)
        return True
    except SelectionError:
        return False


def sweep_markdown(title: str, scored: list[Scored], report: dict | None) -> str:
    """Step x benchmark/domain accuracy (%), the champion's row marked with ★ and each candidate's guard verdict."""
    cols, values = sweep_values(scored)
    cand = {r["step"]: r for r in (report or {}).get("candidates", [])}
    champ = (report or {}).get("champion", {}).get("step")
    head = ["step", "checkpoint", *cols] + (["guards"] if report else [])
    lines = [f"# {title}: benchmark sweep", "", "| " + " | ".join(head) + " |",
             "|---:|---|" + "---:|" * len(cols) + ("---|" if report else "")]
    for s in scored:
        mark = " ★" if s.step == champ else ""
        cells = [f"{s.step}{mark}", s.tag] + [f"{values[s.step][c]:.2f}" if c in values[s.step] else "" for c in cols]
        if report:
            cells.append(_guard_cell(cand.get(s.step), s.step == scored[0].step))
        lines.append("| " + " | ".join(cells) + " |")
    if report:
        lines += ["", f"Champion: **{report['champion']['tag']}** (step {champ}) by {report['metric']} "
                      f"({report['mode']}). {report['champion']['reason']}."]
        for c in report["comparisons"]:
            lines.append(f"- vs {c['against']} {c['tag']}: {c['diff_pp']:+.2f} pp on {c['n']} paired items "
                         f"({c['first_only']} only champion right, {c['second_only']} only {c['tag']} right), "
                         f"McNemar p = {c['p_mcnemar']:.4g}, bootstrap 95 % CI [{c['ci95_pp'][0]:+.2f}, "
                         f"{c['ci95_pp'][1]:+.2f}] pp: **{c['verdict']}** ({c['items']})")
    return "\n".join(lines) + "\n"


def _guard_cell(row: dict | None, is_start: bool) -> str:
    if row is None or is_start:
        return "start (baseline)"
    failing = [f"{m} -{g['drops_pp'][m]:.2f}pp" for g in row["guards"] for m in g["failing"]]
    if row["passed"]:
        return "pass" + (f" ({'; '.join(failing)})" if failing else "")
    return "FAIL: " + "; ".join(failing)


def plot_sweep(title: str, scored: list[Scored], report: dict | None, png: Path) -> None:
    """Accuracy per step: each benchmark's primary metric solid, its domains dashed; the champion a vertical line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # plotting is a convenience; never fail a run on it
        return
    cols, values = sweep_values(scored)
    steps = [s.step for s in scored]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for c in cols:
        pts = [(st, values[st][c]) for st in steps if c in values[st]]
        ax.plot(*zip(*pts), "o-" if "/" not in c else "o--", label=c, lw=1.5 if "/" not in c else 0.8, ms=3)
    if report:
        ax.axvline(report["champion"]["step"], color="k", ls=":", lw=1,
                   label=f"champion {report['champion']['tag']}")
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{title}: benchmark sweep")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    tmp = png.with_name(".tmp-" + png.name)
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, png)


def write_sweep(title: str, scored: list[Scored], report: dict | None, folder: Path) -> None:
    """``sweep.md``, ``sweep.png`` and (with a rule) ``selection.json`` into the stage's ``eval/`` folder."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".sweep.md.tmp-{os.getpid()}"
    tmp.write_text(sweep_markdown(title, scored, report), encoding="utf-8")
    os.replace(tmp, folder / "sweep.md")
    if report is not None:
        tmp = folder / f".selection.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
        os.replace(tmp, folder / "selection.json")
    plot_sweep(title, scored, report, folder / "sweep.png")
