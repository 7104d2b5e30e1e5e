"""The steps every conversation block shares: pair checks, structure, length, language, dedup, render, token length,
sampling. Each decides; :class:`~shardsmith.builders.block.BlockStep` keeps the books (see ``builders/block.py``).

A preference item is a pair: a filter judges both ``prompt + chosen`` and ``prompt + rejected`` and keeps the pair
only if both pass.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from typing import Any

from shardsmith.schemas.block_recipe import DedupFilter, PairFilter, TemplateDef
from shardsmith.schemas.records import Conversation

from .block import BlockStep, BuildError, Item, SourceBooks, Verdict, VisitMore, held_out_per_source
from .dedup import Deduper, conversation_key, normalize_text
from .encode import DocEncoder
from .filters import (LanguageJudge, check_chars, check_structure, detect_language, normalize_label,
                      start_detect_language)
from .forked import ForkedMap, forked_map, parts_for
from .templates import RenderError, render

MAX_REPORTED_DISAGREEMENTS = 200


def pair_check(it: Item, spec: PairFilter) -> Verdict:
    """(reason, detail) when a preference pair is unusable as a pair, else None."""
    a, b = it.conv.messages[-1].content, it.rejected.messages[-1].content
    if spec.drop_identical and normalize_text(a) == normalize_text(b):
        same = " ".join(a.split()) == " ".join(b.split())
        return "identical_pair", ("chosen and rejected are the same text" if same else
                                  "chosen and rejected differ only in case, punctuation or width")
    if spec.min_score_gap is not None:
        kc, kr = spec.score_fields
        sc, sr = it.conv.metadata.get(kc), it.conv.metadata.get(kr)
        if sc is None or sr is None:
            return "no_scores", f"min_score_gap needs {kc} and {kr}"
        if sc - sr < spec.min_score_gap:
            return "small_score_gap", f"{kc} {sc} - {kr} {sr} < {spec.min_score_gap}"
    return None


class PairStep(BlockStep):
    name, timing = "pair", "import"

    def __init__(self, spec: PairFilter):
        self.spec = spec

    def decide(self, item: Item, books: SourceBooks) -> Verdict:
        return pair_check(item, self.spec)


class StructureStep(BlockStep):
    """Turn order, empty or truncated turns; a conversation the rule trims (not drops) passes on trimmed."""

    name, timing = "structure", "structure_length"

    def decide(self, item: Item, books: SourceBooks) -> Verdict:
        checked = [check_structure(c, books.structure) for c in item.convs()]
        bad = next((c for c in checked if c[0] is None), None)
        if bad is not None:
            return bad[1], bad[2]
        item.conv = checked[0].conv
        books.trimmed.update(checked[0].trimmed)  # a pair's sides share the prompt: counted once
        if item.rejected is not None:
            item.rejected = checked[1].conv
        return None


class CharLengthStep(BlockStep):
    name, timing = "length_chars", "structure_length"

    def decide(self, item: Item, books: SourceBooks) -> Verdict:
        return next((r for r in (check_chars(c, books.length) for c in item.convs()) if r[0]), None)


class LanguageStep(BlockStep):
    """fastText (or the dataset's label) per conversation; also the report: agreement with the declared language
    and with the dataset's label, and the disagreements to read (``reports/language_disagreements.jsonl``)."""

    name, timing = "language", "language"

    def __init__(self):
        self.confusion = Counter()  # (declared positive?, kept?) over sources with a declared language
        self.agreement = Counter()
        self.label_examples: list[dict] = []
        self.disagreements: list[dict] = []
        self.sources: dict[str, dict] = {}
        self._predicted: dict[str, tuple[str, float]] = {}
        self._started: tuple[list[str], ForkedMap] | None = None

    def applies(self, books: SourceBooks) -> bool:
        return books.language is not None

    def start(self, items: dict[str, list[Item]], books: dict[str, SourceBooks]) -> None:
        """Start ``prepare``'s fastText now, in forked children, on the items as read (the build loads its tokenizer
        and runs the steps before this one meanwhile); ``prepare`` takes the predictions of the items still there."""
        texts = self._texts(items, books)
        if texts:
            self._started = (texts, start_detect_language(texts))

    def prepare(self, items: dict[str, list[Item]], books: dict[str, SourceBooks]) -> None:
        """The predictions ``start`` began, else fastText now over every distinct turn of every judged source in one
        call, which spreads a large batch over the cores (``filters.detect_language``); the sources' judges then
        read the predictions (``_detect`` predicts a turn neither saw: one changed since the start)."""
        if self._started is not None:
            started, children = self._started
            self._started = None
            self._predicted.update(zip(started, children.result()))
            return
        texts = self._texts(items, books)
        if texts:
            self._predicted.update(zip(texts, detect_language(texts)))

    def close(self) -> None:
        if self._started is not None:
            self._started[1].close()
            self._started = None

    def _texts(self, items: dict[str, list[Item]], books: dict[str, SourceBooks]) -> list[str]:
        """Every distinct turn text fastText judges, over the judged sources."""
        texts: dict[str, None] = {}
        for name, lst in items.items():
            judge = LanguageJudge(books[name].language) if self.applies(books[name]) else None
            if judge is not None and judge.needs_fasttext():
                texts.update(dict.fromkeys(judge.turn_texts([c for it in lst for c in it.convs()])[0]))
        return list(texts)

    def _detect(self, texts: list[str]) -> list[tuple[str, float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._predicted]  # a source ``prepare`` did not see
        if missing:
            self._predicted.update(zip(missing, detect_language(missing)))
        return [self._predicted[t] for t in texts]

    def decide_all(self, items: list[Item], books: SourceBooks) -> list[Verdict]:
        spec = books.language
        judge = LanguageJudge(spec, detect=self._detect)
        decisions = judge.judge([it.conv for it in items])
        if any(it.rejected is not None for it in items):  # a pair stays only if its rejected side passes too
            other = judge.judge([it.rejected for it in items])
            decisions = [d if not d.keep or o.keep else
                         dataclasses.replace(o, detail=f"rejected answer: {o.detail}") for d, o in zip(decisions, other)]
        per_lang = Counter()
        for it, d in zip(items, decisions):
            it.conv = it.conv.model_copy(update={"lang": d.lang})
            per_lang[d.lang] += 1
            self._note(it.conv, d, books)
        kept = sum(d.keep for d in decisions)
        self.sources[books.name] = {"declared": books.declared, "by": spec.by, "detected": dict(per_lang),
                                    "kept": kept, "dropped": len(items) - kept}
        return [None if d.keep else (d.reason, d.detail) for d in decisions]

    def _note(self, conv: Conversation, d, books: SourceBooks) -> None:
        spec = books.language
        if books.declared:
            positive = normalize_label(books.declared) in set(spec.keep)
            self.confusion[(positive, d.keep)] += 1
            if positive != d.keep:
                self.disagreements.append({
                    "source": books.name, "id": conv.id, "declared": books.declared, "decided": d.lang,
                    "kept": d.keep, "share": round(d.share, 3), "by": d.by,
                    "turns": [{"role": r, "lang": lg, "score": round(s, 3), "chars": n} for r, lg, s, n in d.turns],
                    "user": conv.text("user")[:300], "assistant": conv.text("assistant")[:300],
                })
        if conv.label_lang is not None and d.fasttext_lang is not None and spec.report_agreement:
            same = normalize_label(conv.label_lang) == d.fasttext_lang
            self.agreement["agree" if same else "disagree"] += 1
            if not same and len(self.label_examples) < 50:
                self.label_examples.append({"source": books.name, "id": conv.id, "label": conv.label_lang,
                                            "fasttext": d.fasttext_lang, "text": conv.text("user")[:200]})

    def report(self) -> dict[str, Any]:
        """The manifest's ``language_report``."""
        out: dict[str, Any] = {"sources": self.sources, "disagreements": []}
        if self.confusion:
            tp, fp = self.confusion[(True, True)], self.confusion[(False, True)]
            fn, tn = self.confusion[(True, False)], self.confusion[(False, False)]
            out["vs_declared"] = {
                "tp": tp, "fp": fp, "fn": fn, "tn": tn,
                "precision": round(tp / (tp + fp), 4) if tp + fp else None,
                "recall": round(tp / (tp + fn), 4) if tp + fn else None,
                "note": "truth = the source's declared language; a Chinese set's English/code rows count as 'fn' "
                        "here even when dropping them is right: read the disagreements",
            }
        if self.agreement:
            out["label_vs_fasttext"] = {**self.agreement, "examples": self.label_examples}
        out["disagreements_total"] = len(self.disagreements)
        out["disagreements"] = self.disagreements[:MAX_REPORTED_DISAGREEMENTS]
        return out


class DedupStep(BlockStep):
    """Exact / near duplicates, first occurrence in source order wins (across sources, or per source)."""

    name, timing = "dedup", "dedup"

    CHARS_PER_PART = 1_000_000  # ~40 ms of normalising and hashing

    def __init__(self, spec: DedupFilter, seed: int):
        self.deduper = Deduper(spec, seed=seed)
        self.scope = spec.scope
        self._keys: dict[int, str] = {}  # id(item) -> exact key, computed up front

    def prepare(self, items: dict[str, list[Item]], books: dict[str, SourceBooks]) -> None:
        """The exact keys of every source's items at once, spread over the cores when there are many (forked
        children; a key is a short string to send back). ``decide`` still judges in source order."""
        if not self.deduper.spec.exact:
            return
        todo = [it for name, lst in items.items() if self.applies(books[name]) for it in lst if not it.copy]
        chars = sum(len(m.content) for it in todo for m in it.conv.messages)
        keys = forked_map(_exact_keys, todo, parts_for(chars, self.CHARS_PER_PART),
                          weight=lambda it: sum(len(m.content) for m in it.conv.messages))
        self._keys = dict(zip(map(id, todo), keys))

    def decide(self, item: Item, books: SourceBooks) -> Verdict:
        if item.copy:
            return None
        scope = books.name if self.scope == "source" else ""
        return self.deduper.check(_key_conv(item), scope_key=scope, key=self._keys.get(id(item)))


def _key_conv(item: Item) -> Conversation:
    """What dedup compares: the conversation, or for a pair the prompt and both answers."""
    if item.rejected is None:
        return item.conv
    return item.conv.model_copy(update={"messages": item.conv.messages + item.rejected.messages[-1:]})


def _exact_keys(items: list[Item]) -> list[str]:
    return [conversation_key(_key_conv(it)) for it in items]


class RenderStep(BlockStep):
    """Template the conversation into text with loss ranges; ``loss: all`` puts loss on every character."""

    name, timing = "render", "render"

    def __init__(self, template: TemplateDef, eos: str | None, loss_on_all: bool = False):
        self.template, self.eos, self.loss_on_all = template, eos, loss_on_all

    def decide(self, item: Item, books: SourceBooks) -> Verdict:
        try:
            item.rendered = render(item.conv, self.template, self.eos)
            if self.loss_on_all:
                item.rendered = dataclasses.replace(item.rendered, no_loss=[], loss=[(0, len(item.rendered.doc_text))])
            if item.rejected is not None:
                item.rendered_rejected = render(item.rejected, self.template, self.eos)
        except RenderError as err:
            return err.reason, str(err)
        return None


class TokenLengthStep(BlockStep):
    """Tokens with the block's tokenizer (batched): of the turns' content (Steel) or of the rendered document
    (+1 for EOS); a pair is as long as its longer side.

    A text whose byte bound (:func:`~shardsmith.builders.encode.byte_bound`) is within the limit cannot be too long
    and is not tokenized here (the writer tokenizes what is kept). A rendered document that is tokenized keeps its
    encoding (``Item.encoded``): the writer writes it as is instead of tokenizing it again."""

    name, timing = "length_tokens", "length_tokens"

    def __init__(self, encoder: DocEncoder):
        self.encoder = encoder
        self._counted: set[int] = set()  # id() of the items ``prepare`` measured

    def applies(self, books: SourceBooks) -> bool:
        return bool(books.length.max_tokens)

    def prepare(self, items: dict[str, list[Item]], books: dict[str, SourceBooks]) -> None:
        """Tokenize what every source needs counted in one batched call per mode (a call per source would wait
        for each source's first batch in turn)."""
        self._count({name: lst for name, lst in items.items() if self.applies(books[name])}, books)

    def _count(self, items: dict[str, list[Item]], books: dict[str, SourceBooks]) -> None:
        unsure: dict[bool, list[Item]] = {True: [], False: []}
        rendered_items: list[Item] = []
        for name, lst in items.items():
            length = books[name].length
            rendered = length.count_tokens_of == "rendered"
            unsure[rendered] += self._unsure(lst, rendered, length.max_tokens)
            rendered_items += lst if rendered else []
            self._counted.update(map(id, lst))
        if _chars(unsure[True]) * 2 > _chars(rendered_items):  # most of the text: encode it all in one pass (the
            unsure[True] = rendered_items  # writer reuses every encoding) rather than the rest again in the writer
        self._encode(unsure[True])
        self._count_content(unsure[False])

    def _unsure(self, items: list[Item], rendered: bool, limit: int) -> list[Item]:
        """The items whose byte bound does not prove them short enough (all of them without a bound)."""
        bound = self.encoder.bound
        return [it for it in items if bound is None or any(bound(t) + rendered > limit for t in _texts(it, rendered))]

    def decide_all(self, items: list[Item], books: SourceBooks) -> list[Verdict]:
        self._count({books.name: [it for it in items if id(it) not in self._counted]}, {books.name: books})
        length = books.length
        out: list[Verdict] = []
        for it in items:
            n = it.n_tokens
            out.append(("too_long_tokens", f"{n} > {length.max_tokens} tokens") if n and n > length.max_tokens else None)
        return out

    def _encode(self, items: list[Item]) -> None:
        if not items:
            return
        encoded = self.encoder.encode([d for it in items for d in it.documents()])
        i = 0
        for it in items:
            k = len(it.documents())
            it.encoded, i = encoded[i: i + k], i + k
            it.n_tokens = max(e.n_ids for e in it.encoded)

    def _count_content(self, items: list[Item]) -> None:
        if not items:
            return
        texts = [t for it in items for t in _texts(it, False)]
        counts = iter(len(e.ids) for e in self.encoder.tokenizer.encode_batch(texts, add_special_tokens=False))
        for it in items:
            it.n_tokens = max(next(counts) for _ in it.documents())


def _chars(items: list[Item]) -> int:
    return sum(len(r.doc_text) for it in items for _, r in it.documents())


def _texts(item: Item, rendered: bool) -> list[str]:
    """What the token-length filter counts, per document of the item."""
    return [r.doc_text if rendered else "".join(m.content for m in c.messages) for c, r in item.documents()]


def seeded_subset(n: int, k: int, seed: str, drop: tuple[str, str]) -> list[Verdict]:
    """Keep ``k`` of ``n`` rows drawn by ``random.Random(seed).sample`` (the same seed and rows: the same draw), the
    rest get the ``drop`` verdict: the chooser of ``sample``/``sample_rate``."""
    chosen = set(random.Random(seed).sample(range(n), k))
    return [None if i in chosen else drop for i in range(n)]


class SampleStep(BlockStep):
    """Per-source caps after filtering (``sample``: at most N; ``sample_rate``: a share), seeded by source name."""

    name, timing = "sample", "sample"
    keeps_records = False

    def __init__(self, seed: int):
        self.seed = seed

    def applies(self, books: SourceBooks) -> bool:
        src = books.src
        return src is not None and (src.sample is not None or src.sample_rate is not None)

    def decide_all(self, items: list[Item], books: SourceBooks) -> list[Verdict]:
        src, n = books.src, len(items)
        target = int(round(n * src.sample_rate)) if src.sample_rate is not None else n
        if src.sample is not None:
            target = min(target, src.sample)
        return seeded_subset(n, target, f"{self.seed}:{books.name}", ("sampled_out", f"sampling cap {target} of {n}"))


class CountStep(BlockStep):
    """Sources with an exact ``count``: keep exactly that many (plus their share of ``validation.count``): the first
    survivors in the source's seeded reading order (``block.VisitOrder``), the rest leave as ``over_count``. When a
    source has fewer and some of its records were never visited, the build visits more (``VisitMore``); when it
    has fewer after all, the build fails naming every short source and by how much."""

    name, timing = "count", "sample"
    keeps_records = False

    def __init__(self, recipe):
        self.held_out = held_out_per_source(recipe) or {}
        self.short: list[str] = []
        self.visit_more: dict[str, tuple[int, int]] = {}

    def applies(self, books: SourceBooks) -> bool:
        return books.src is not None and books.src.count is not None

    def decide_all(self, items: list[Item], books: SourceBooks) -> list[Verdict]:
        count, extra = books.src.count, self.held_out.get(books.name, 0)
        target = count + extra
        if len(items) < target:
            if books.unvisited:
                self.visit_more[books.name] = (target, len(items))
            asked = f"{count} + {extra} held out" if extra else f"{count}"
            self.short.append(f"{books.name}: {len(items)} rows after filtering, {asked} asked, short by "
                              f"{target - len(items)}")
            return [None] * len(items)
        drop = ("over_count", f"count {target} of {len(items)}")
        return [None] * target + [drop] * (len(items) - target)

    def close(self) -> None:
        if self.visit_more:
            raise VisitMore(self.visit_more)
        if self.short:
            raise BuildError("exact counts not met: " + "; ".join(self.short))


def count_target(recipe, src) -> int | None:
    """The rows a source with ``count`` keeps (its count + its held-out share), else None."""
    if src.count is None:
        return None
    return src.count + (held_out_per_source(recipe) or {}).get(src.name, 0)
