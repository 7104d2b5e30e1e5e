"""Benchmark decontamination as a block step, in every block kind (``builders/kinds.py`` adds it after dedup and a
kind's own middle steps, before rendering): each conversation (a preference pair: both sides) is checked against the
n-gram index of ``pipelines/decontam.py``; ``action: drop`` drops it with reason ``contaminated_<benchmark>`` and the
item in the detail, ``flag`` keeps it and records it. The manifest's ``decontamination`` lists the benchmarks, the
conversations checked and the hits per source and benchmark (also when nothing was checked, and why).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from shardsmith.pipelines.decontam import base_report, ensure_index, index_folder, resolve_benchmarks
from shardsmith.schemas.decontam import DecontamHit, DecontamSpec

from .block import BlockStep, Item, SourceBooks, Verdict

EXAMPLES_PER_SOURCE = 20


class DecontamStep(BlockStep):
    """Resolves the benchmarks and builds (or reuses) the index when constructed, before any source is filtered."""

    name = "decontam"
    timing = "decontam"

    def __init__(self, spec: DecontamSpec | None, out: Path, base: Path):
        self.plan = resolve_benchmarks(spec, base)
        checked = self.plan.status == "checked"
        self.index = ensure_index(self.plan, index_folder(self.plan.spec, out, base)) if checked else None
        self.report = base_report(self.plan, self.index)

    def applies(self, books: SourceBooks) -> bool:
        return self.index is not None

    def decide_all(self, items: list[Item], books: SourceBooks) -> list[Verdict]:
        hits: Counter = Counter()
        verdicts: list[Verdict] = []
        for it in items:
            hit, conv = next(((h, c) for c in it.convs() if (h := self.index.match(c.text(sep="\n")))), (None, None))
            verdicts.append(None if hit is None or self.plan.spec.action == "flag"
                            else (f"contaminated_{hit.benchmark}", hit.detail()))
            if hit is None:
                continue
            hits[hit.benchmark] += 1
            if hits.total() <= EXAMPLES_PER_SOURCE:
                self.report.examples.append(DecontamHit(source=books.name, id=conv.id, benchmark=hit.benchmark,
                                                        item=hit.item, ngram=hit.ngram, overlap=round(hit.overlap, 3)))
        self.report.checked[books.name] = len(items)
        self.report.hits[books.name] = dict(sorted(hits.items()))
        return verdicts

    def manifest_fields(self) -> dict[str, Any]:
        return {"decontamination": self.report.model_dump(mode="json")}
