"""The SFT and preference block builder: import -> (pair checks) -> structure -> length (chars) -> language -> dedup
-> render -> length (tokens) -> sample -> split -> tokenize (datatrove, with loss masks) -> manifest.

A preference block runs the same steps on pairs: each filter judges both ``prompt + chosen`` and ``prompt +
rejected`` and keeps the pair only if both pass; a kept pair is written as two adjacent documents, chosen first
(``manifest.pair_layout``), and the split holds whole pairs.

Output (the shard contract of ``schemas/manifest.py``)::

    DIR/train/train_00000_unshuffled.ds(.index,.loss)     documents in a seeded random order
    DIR/validation/validation_00000_unshuffled.ds(...)
    DIR/tokenizer/                                        the resolved tokenizer incl. the template's special tokens
    DIR/rejected/<source>.jsonl.gz                        every dropped record with step, reason, detail
    DIR/reports/language_disagreements.jsonl              language decisions that contradict the declared language
    DIR/manifest.json                                     written last

Everything is built in ``DIR.parent/.DIR.building-<pid>`` and renamed onto ``DIR`` at the end (an existing ``DIR`` is
moved aside first and removed after), so a crash never leaves a folder that looks complete.

Shuffle: documents are shuffled here with the recipe seed and handed to datatrove with ``shuffle=False``, so the
order on disk is known and tokens can be attributed to sources.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import random
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shardsmith.pipelines.shards import new_manifest
from shardsmith.schemas.block_recipe import Filters, PreferenceBlockRecipe, SftBlockRecipe, SftSource
from shardsmith.schemas.common import TokenizerSpec
from shardsmith.schemas.manifest import PAIR_LAYOUT, ShardManifest, SourceInfo, StepCount
from shardsmith.schemas.records import Conversation, Drop, Message, PreferencePair

from . import importers, self_cognition
from .dedup import Deduper
from .filters import LanguageJudge, check_chars, check_structure, normalize_label
from .templates import Rendered, RenderError, render, resolve_template, template_info

log = logging.getLogger("shardsmith.builders.sft")
MAX_REPORTED_DISAGREEMENTS = 200


class BuildError(ValueError):
    pass


@dataclass
class SourceState:
    name: str
    declared: str | None
    read: int = 0
    steps: list[StepCount] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    trimmed: Counter = field(default_factory=Counter)  # conversations the structure step trimmed and passed on
    drops: list[Drop] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def step(self, name: str, before: int, kept: int, reasons: Counter) -> None:
        self.steps.append(StepCount(step=name, read=before, kept=kept, dropped=before - kept, reasons=dict(reasons)))


@dataclass
class Item:
    conv: Conversation  # SFT: the conversation; preference: prompt + chosen
    rendered: Rendered | None = None
    n_tokens: int | None = None
    copy: int = 0
    rejected: Conversation | None = None  # preference: prompt + rejected
    rendered_rejected: Rendered | None = None

    def convs(self) -> list[Conversation]:
        return [self.conv] if self.rejected is None else [self.conv, self.rejected]

    def documents(self) -> list[tuple[Conversation, Rendered]]:
        docs = [(self.conv, self.rendered)]
        return docs if self.rejected is None else docs + [(self.rejected, self.rendered_rejected)]


def _drop(state: SourceState, conv: Conversation, step: str, reason: str, detail: str | None, keep_record: bool) -> None:
    state.dropped[reason] += 1
    state.drops.append(
        Drop(source=conv.source, id=conv.id, reason=reason, step=step, detail=detail,
             record=conv.model_dump(mode="json") if keep_record else None)
    )


def _source_filters(block: Filters, src: SftSource | None):
    """Effective (structure, language or None, length) for a source."""
    structure, language, length = block.structure, block.language, block.length
    if src is None:  # self-cognition: its rows are chosen by SelfCognition.languages, not the block's filter
        language = None
    else:
        o = src.filters
        structure = o.structure or structure
        length = o.length or length
        if o.language == "none":
            language = None
        elif o.language is not None:
            language = o.language
    return structure, language, length


def _read_source(src: SftSource, base: Path, state: SourceState, pairs: bool = False) -> list[Item]:
    from .pairs import PAIR_SHAPESET

    out: list[Item] = []
    kw = {"source": src.name, "shape": src.shape, "options": src.options, "id_field": src.id_field,
          "label_field": src.label_field, "shapes": PAIR_SHAPESET if pairs else importers.SFT_SHAPES}
    streams = []
    if src.hf:
        streams.append((f"hf:{src.hf['dataset']}", importers.iter_hf(src.hf["dataset"], src.hf.get("config"),
                                                                     src.hf.get("split", "train"))))
    for p in importers.expand_paths(src.paths, base):
        state.paths.append(str(p))
        streams.append((str(p), importers.iter_raw(p)))
    n = 0
    for where, stream in streams:
        id_prefix = Path(where).name if not where.startswith("hf:") else where
        for item in importers.import_records(stream, where=where, id_prefix=id_prefix, **kw):
            if src.limit is not None and n >= src.limit:
                break
            n += 1
            if isinstance(item, Drop):
                state.read += 1
                state.dropped[item.reason] += 1
                state.drops.append(item)
                continue
            state.read += 1
            if isinstance(item, PreferencePair):
                if src.system and not (item.prompt and item.prompt[0].role == "system"):
                    item = item.model_copy(update={"prompt": [Message(role="system", content=src.system)] + item.prompt})
                out.append(Item(item.conversation("chosen"), rejected=item.conversation("rejected")))
                continue
            if src.system and not (item.messages and item.messages[0].role == "system"):
                item = item.model_copy(update={"messages": [Message(role="system", content=src.system)] + item.messages})
            out.append(Item(item))
        if src.limit is not None and n >= src.limit:
            break
    return out


def _pair_check(it: Item, spec) -> tuple[str, str] | None:
    """(reason, detail) when a preference pair is unusable as a pair, else None."""
    from .dedup import normalize_text

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

    def tick(name: str, t0: float) -> float:
        t1 = time.perf_counter()
        tm[name] = tm.get(name, 0.0) + (t1 - t0)
        return t1

    out = Path(out_dir).resolve()
    base = Path(base_dir) if base_dir else Path.cwd()
    pairs = isinstance(recipe, PreferenceBlockRecipe)
    rng = random.Random(recipe.seed)
    tpl = resolve_template(recipe.template, base)

    # --- tokenizer: the recipe's, plus the template's markers as special tokens (one id each) -------------------------
    from shardsmith.pipelines.tokenizers import resolve_tokenizer

    t0 = time.perf_counter()
    specials = list(dict.fromkeys(list(recipe.tokenizer.add_special_tokens) + list(tpl.special_tokens)))
    spec = TokenizerSpec(name=recipe.tokenizer.name, eos_token=recipe.tokenizer.eos_token, add_special_tokens=specials,
                         train=recipe.tokenizer.train)
    if spec.train is not None:
        raise BuildError("an SFT block cannot train its tokenizer; point tokenizer.name at the pretraining tokenizer")
    tok = resolve_tokenizer(spec)
    tk = tok.load()
    special_ids = {}
    for s in tpl.special_tokens:
        ids = tk.encode(s, add_special_tokens=False).ids
        if len(ids) != 1:
            raise BuildError(f"template '{tpl.name}': marker {s!r} encodes to {len(ids)} ids {ids}, expected one")
        special_ids[s] = ids[0]
    eos = tok.eos_token
    t0 = tick("tokenizer_resolve", t0)

    # --- import + structure + char length, per source ----------------------------------------------------------------
    states: dict[str, SourceState] = {}
    items: dict[str, list[Item]] = {}
    srcs: dict[str, SftSource | None] = {}
    for src in recipe.sources:
        st = states[src.name] = SourceState(src.name, src.language)
        srcs[src.name] = src
        read = _read_source(src, base, st, pairs)
        st.step("import", st.read, len(read), Counter({k: v for k, v in st.dropped.items()}))
        if pairs:
            kept, reasons = [], Counter()
            for it in read:
                hit = _pair_check(it, recipe.pairs)
                if hit:
                    reasons[hit[0]] += 1
                    _drop(st, it.conv, "pair", hit[0], hit[1], recipe.write_rejected)
                else:
                    kept.append(it)
            st.step("pair", len(read), len(kept), reasons)
            read = kept
        items[src.name] = read
    if recipe.self_cognition:
        sc = recipe.self_cognition
        st = states[sc.source_name] = SourceState(sc.source_name, None)
        srcs[sc.source_name] = None
        convs = self_cognition.generate(sc, base)
        st.read = len(convs)
        st.step("import", st.read, len(convs), Counter())
        items[sc.source_name] = [Item(c, copy=int(c.id.rsplit("#", 1)[1]) if "#" in c.id else 0) for c in convs]
    t0 = tick("import", t0)

    keep_rec = recipe.write_rejected
    for name, lst in items.items():
        st = states[name]
        structure, _, length = _source_filters(recipe.filters, srcs[name])
        kept, reasons = [], Counter()
        for it in lst:
            checked = [check_structure(c, structure) for c in it.convs()]
            bad = next((c for c in checked if c[0] is None), None)
            if bad is not None:
                reasons[bad[1]] += 1
                _drop(st, it.conv, "structure", bad[1], bad[2], keep_rec)
                continue
            it.conv = checked[0].conv
            st.trimmed.update(checked[0].trimmed)  # a pair's sides share the prompt: counted once
            if it.rejected is not None:
                it.rejected = checked[1].conv
            kept.append(it)
        st.step("structure", len(lst), len(kept), reasons)
        lst2, reasons = [], Counter()
        for it in kept:
            reason, detail = next((r for r in (check_chars(c, length) for c in it.convs()) if r[0]), (None, None))
            if reason:
                reasons[reason] += 1
                _drop(st, it.conv, "length_chars", reason, detail, keep_rec)
                continue
            lst2.append(it)
        st.step("length_chars", len(kept), len(lst2), reasons)
        items[name] = lst2
    t0 = tick("structure_length", t0)

    # --- language --------------------------------------------------------------------------------------------------
    lang_report: dict[str, Any] = {"sources": {}, "disagreements": []}
    confusion = Counter()  # (declared positive?, kept?) over sources with a declared language
    agreement = Counter()
    label_examples: list[dict] = []
    disagreements: list[dict] = []
    for name, lst in items.items():
        st = states[name]
        _, lang_spec, _ = _source_filters(recipe.filters, srcs[name])
        if lang_spec is None:
            continue
        judge = LanguageJudge(lang_spec)
        decisions = judge.judge([it.conv for it in lst])
        if pairs:  # a pair stays only if its rejected side passes too (a chosen/rejected language switch is noise)
            other = judge.judge([it.rejected for it in lst])
            decisions = [d if not d.keep or o.keep else
                         dataclasses.replace(o, detail=f"rejected answer: {o.detail}") for d, o in zip(decisions, other)]
        kept, reasons = [], Counter()
        per_lang = Counter()
        for it, d in zip(lst, decisions):
            it.conv = it.conv.model_copy(update={"lang": d.lang})
            per_lang[d.lang] += 1
            if st.declared:
                positive = normalize_label(st.declared) in set(lang_spec.keep)
                confusion[(positive, d.keep)] += 1
                if positive != d.keep:
                    disagreements.append({
                        "source": name, "id": it.conv.id, "declared": st.declared, "decided": d.lang,
                        "kept": d.keep, "share": round(d.share, 3), "by": d.by,
                        "turns": [{"role": r, "lang": lg, "score": round(s, 3), "chars": n} for r, lg, s, n in d.turns],
                        "user": it.conv.text("user")[:300], "assistant": it.conv.text("assistant")[:300],
                    })
            if it.conv.label_lang is not None and d.fasttext_lang is not None and lang_spec.report_agreement:
                lab = normalize_label(it.conv.label_lang)
                same = lab == d.fasttext_lang
                agreement["agree" if same else "disagree"] += 1
                if not same and len(label_examples) < 50:
                    label_examples.append({"source": name, "id": it.conv.id, "label": it.conv.label_lang,
                                           "fasttext": d.fasttext_lang, "text": it.conv.text("user")[:200]})
            if d.keep:
                kept.append(it)
            else:
                reasons[d.reason] += 1
                _drop(st, it.conv, "language", d.reason, d.detail, keep_rec)
        st.step("language", len(lst), len(kept), reasons)
        lang_report["sources"][name] = {"declared": st.declared, "by": lang_spec.by, "detected": dict(per_lang),
                                        "kept": len(kept), "dropped": len(lst) - len(kept)}
        items[name] = kept
    if confusion:
        tp, fp = confusion[(True, True)], confusion[(False, True)]
        fn, tn = confusion[(True, False)], confusion[(False, False)]
        lang_report["vs_declared"] = {
            "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "note": "truth = the source's declared language; a Chinese set's English/code rows count as 'fn' here "
                    "even when dropping them is right: read the disagreements",
        }
    if agreement:
        lang_report["label_vs_fasttext"] = {**agreement, "examples": label_examples}
    lang_report["disagreements_total"] = len(disagreements)
    lang_report["disagreements"] = disagreements[:MAX_REPORTED_DISAGREEMENTS]
    t0 = tick("language", t0)

    # --- dedup (global, first occurrence in source order wins) -------------------------------------------------------
    if recipe.filters.dedup is not None:
        dd = Deduper(recipe.filters.dedup, seed=recipe.seed)
        scope = recipe.filters.dedup.scope
        for name, lst in items.items():
            st = states[name]
            kept, reasons = [], Counter()
            for it in lst:
                key_conv = it.conv if it.rejected is None else it.conv.model_copy(
                    update={"messages": it.conv.messages + it.rejected.messages[-1:]})  # the pair: prompt+both
                hit = None if it.copy else dd.check(key_conv, scope_key=name if scope == "source" else "")
                if hit:
                    reasons[hit[0]] += 1
                    _drop(st, it.conv, "dedup", hit[0], hit[1], keep_rec)
                    continue
                kept.append(it)
            st.step("dedup", len(lst), len(kept), reasons)
            items[name] = kept
    t0 = tick("dedup", t0)

    # --- render + token length ---------------------------------------------------------------------------------------
    for name, lst in items.items():
        st = states[name]
        _, _, length = _source_filters(recipe.filters, srcs[name])
        kept, reasons = [], Counter()
        for it in lst:
            try:
                it.rendered = render(it.conv, tpl, eos)
                if recipe.loss == "all":  # the whole document carries loss, prompt and template text included
                    it.rendered = dataclasses.replace(it.rendered, no_loss=[],
                                                      loss=[(0, len(it.rendered.doc_text))])
                if it.rejected is not None:
                    it.rendered_rejected = render(it.rejected, tpl, eos)
            except RenderError as err:
                reasons[err.reason] += 1
                _drop(st, it.conv, "render", err.reason, str(err), keep_rec)
                continue
            kept.append(it)
        st.step("render", len(lst), len(kept), reasons)
        t0 = tick("render", t0)
        if length.max_tokens:
            docs = [d for it in kept for d in it.documents()]
            texts = [r.doc_text if length.count_tokens_of == "rendered" else "".join(m.content for m in c.messages)
                     for c, r in docs]
            counts = [len(e.ids) + (1 if length.count_tokens_of == "rendered" else 0)
                      for e in tk.encode_batch(texts, add_special_tokens=False)] if texts else []
            if pairs:  # a pair is as long as its longer side
                counts = [max(a, b) for a, b in zip(counts[0::2], counts[1::2])]
            kept2, reasons = [], Counter()
            for it, n in zip(kept, counts):
                it.n_tokens = n
                if n > length.max_tokens:
                    reasons["too_long_tokens"] += 1
                    _drop(st, it.conv, "length_tokens", "too_long_tokens", f"{n} > {length.max_tokens} tokens", keep_rec)
                    continue
                kept2.append(it)
            st.step("length_tokens", len(kept), len(kept2), reasons)
            kept = kept2
            t0 = tick("length_tokens", t0)
        items[name] = kept

    # --- per-source sampling caps --------------------------------------------------------------------------------
    for name, lst in items.items():
        src = srcs[name]
        if src is None or (src.sample is None and src.sample_rate is None):
            continue
        st = states[name]
        target = len(lst)
        if src.sample_rate is not None:
            target = int(round(len(lst) * src.sample_rate))
        if src.sample is not None:
            target = min(target, src.sample)
        chosen = sorted(random.Random(f"{recipe.seed}:{name}").sample(range(len(lst)), target))
        chosen_set = set(chosen)
        for i, it in enumerate(lst):
            if i not in chosen_set:
                _drop(st, it.conv, "sample", "sampled_out", f"sampling cap {target} of {len(lst)}", False)
        st.step("sample", len(lst), target, Counter({"sampled_out": len(lst) - target}) if target < len(lst) else Counter())
        items[name] = [lst[i] for i in chosen]

    # --- languages of kept conversations (fastText for those no language filter judged) ----------------------------
    undecided = [it for lst in items.values() for it in lst if it.conv.lang is None]
    if undecided:
        from shardsmith.pipelines.lid import detect_language

        from .filters import fix_cjk_label

        preds = detect_language([it.conv.text("user", "assistant", sep=" ") for it in undecided])
        for it, (lg, score) in zip(undecided, preds):
            lg = fix_cjk_label(lg, it.conv.text("user", "assistant")) if lg and score >= 0.3 else "unknown"
            it.conv = it.conv.model_copy(update={"lang": lg})
    t0 = tick("language_kept", t0)

    # --- counts must add up ----------------------------------------------------------------------------------------
    counts: dict[str, Any] = {}
    for name, st in states.items():
        kept = len(items[name])
        dropped = sum(st.dropped.values())
        if st.read != kept + dropped:
            raise BuildError(f"internal: source {name}: read {st.read} != kept {kept} + dropped {dropped}")
        counts[name] = {"read": st.read, "kept": kept, "dropped": dict(sorted(st.dropped.items()))}
        if st.trimmed:
            counts[name]["trimmed"] = dict(sorted(st.trimmed.items()))
    total_kept = sum(len(v) for v in items.values())
    if total_kept == 0:
        raise BuildError("no conversation survived the filters: " + json.dumps(counts, ensure_ascii=False))

    # --- split (seeded, by conversation) and order ------------------------------------------------------------------
    all_items = [it for lst in items.values() for it in lst]
    order = list(range(len(all_items)))
    rng.shuffle(order)
    frac = recipe.validation.fraction
    n_val = int(round(len(order) * frac)) if frac > 0 else 0
    if frac > 0 and len(order) >= 2:
        n_val = max(n_val, min(recipe.validation.min_documents, len(order) - 1))
    splits = {"validation": [all_items[i] for i in order[:n_val]], "train": [all_items[i] for i in order[n_val:]]}

    # --- write into a temp folder ------------------------------------------------------------------------------------
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.building-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    try:
        tok.copy_to(tmp / "tokenizer")
        per_source_tokens: Counter = Counter()
        per_source_docs: Counter = Counter()
        per_source_loss: Counter = Counter()
        for split, lst in splits.items():
            folder = tmp / split
            folder.mkdir()
            if not lst:
                continue
            docs = [d for it in lst for d in it.documents()]
            _tokenize_split(docs, folder, tok, recipe, tmp / ".work" / split)
            _attribute(folder, split, docs, tok.token_size, per_source_tokens, per_source_docs, per_source_loss)
        t0 = tick("tokenize", t0)

        if recipe.write_rejected:
            rej = tmp / "rejected"
            rej.mkdir()
            for name, st in states.items():
                if st.drops:
                    with gzip.open(rej / f"{name}.jsonl.gz", "wt", encoding="utf-8") as f:
                        for d in st.drops:
                            f.write(d.model_dump_json(exclude_none=True) + "\n")
        reports = tmp / "reports"
        reports.mkdir()
        with open(reports / "language_disagreements.jsonl", "w", encoding="utf-8") as f:
            for d in disagreements:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")

        # --- manifest ----------------------------------------------------------------------------------------------
        languages = Counter(it.conv.lang or "unknown" for it in all_items)
        total_tokens = sum(per_source_tokens.values()) or 1
        sources = []
        for name, st in states.items():
            src = srcs[name]
            sources.append(SourceInfo(
                name=name,
                kind="sft" if src is None else f"sft:{src.shape}",
                weight_requested=1.0,
                share_requested=round(len(items[name]) / total_kept, 6),
                share_realized=round(per_source_tokens[name] / total_tokens, 6),
                documents=per_source_docs[name],
                tokens=per_source_tokens[name],
                epochs=1.0,
                documents_available=len(items[name]),
                tokens_available=per_source_tokens[name],
                paths=st.paths,
                declared_language=st.declared,
                loss_tokens=per_source_loss[name],
            ))
        extra = {}
        if pairs:
            extra = {"pair_layout": PAIR_LAYOUT, "pairs": {s: len(v) for s, v in splits.items()},
                     "pair_filter": recipe.pairs.model_dump(mode="json")}
        manifest = new_manifest(
            "preference" if pairs else "sft",
            recipe.name,
            recipe.seed,
            tok,
            loss_masks=True,
            sources=sources,
            filters={name: st.steps for name, st in states.items()},
            template={**template_info(tpl, eos, special_ids),
                      **({"loss": "every token (loss: all)"} if recipe.loss == "all" else {})},
            counts=counts,
            languages=dict(languages.most_common()),
            recipe=recipe_dict if recipe_dict is not None else recipe.model_dump(mode="json"),
            language_report=lang_report,
            split_rule={"by": "pair" if pairs else "conversation", "seed": recipe.seed, "validation_fraction": frac},
            **extra,
        )
        from shardsmith.pipelines.shards import finalize

        finalize(tmp, manifest)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tick("write", t0)
    tm["total"] = time.perf_counter() - t_all
    tm["conversations_read"] = sum(st.read for st in states.values())
    tm["conversations_kept"] = total_kept
    return out


def _tokenize_split(docs_in: list[tuple[Conversation, Rendered]], folder: Path, tok, recipe: SftBlockRecipe,
                    logdir: Path) -> None:
    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from shardsmith.pipelines.shards import tokenizer_step

    docs = [
        Document(
            text=r.doc_text,
            id=f"{c.source}/{c.id}",
            metadata={"no_loss_ranges": list(r.no_loss), "source": c.source},
        )
        for c, r in docs_in
    ]

    def reader(data=None, rank: int = 0, world_size: int = 1):
        yield from docs

    # one file per split: datatrove caps file sizes only when it shuffles, and a block keeps its order (pairs adjacent)
    step = tokenizer_step(folder, tok.tokenizer_json, tok.eos_token, seed=recipe.seed, loss_masks=True,
                          save_filename=folder.name, shuffle=False)
    logdir.mkdir(parents=True, exist_ok=True)
    LocalPipelineExecutor(pipeline=[reader, step], tasks=1, workers=1, logging_dir=str(logdir),
                          skip_completed=False).run()


def _attribute(folder: Path, split: str, lst: list[tuple[Conversation, Rendered]], token_size: int, tokens: Counter,
               docs: Counter, loss: Counter) -> None:
    """Map documents on disk (written in our order) back to sources; check the count matches."""
    from shardsmith.pipelines.shards import split_files

    files = split_files(folder.parent, split, token_size)
    i = 0
    for f in files:
        ends = np.asarray(f.doc_ends, dtype=np.int64)
        starts = np.concatenate([[0], ends[:-1]]) if len(ends) else ends
        lmask = f.loss
        csum = np.concatenate([[0], np.cumsum(np.asarray(lmask, dtype=np.int64))]) if lmask is not None else None
        for s, e in zip(starts, ends):
            if i >= len(lst):
                raise BuildError(f"{f.path}: more documents on disk than were written")
            src = lst[i][0].source
            tokens[src] += int(e - s)
            docs[src] += 1
            if csum is not None:
                loss[src] += int(csum[e] - csum[s])
            i += 1
    if i != len(lst):
        raise BuildError(f"{folder}: {i} documents on disk, {len(lst)} written")


def _swap_in(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def inspect_documents(shard_dir: str | os.PathLike, split: str = "train", limit: int | None = None) -> list[dict]:
    """Decode documents of a built set: the full text, and the text of each run of loss-carrying tokens.

    ``loss_text`` joins the decoded loss runs with '' — for a correct build it equals the assistant replies, each
    followed by its end marker, then the EOS.
    """
    from shardsmith.pipelines.shards import split_files
    from tokenizers import Tokenizer

    man = ShardManifest.load(shard_dir)
    tk = Tokenizer.from_file(str(Path(shard_dir) / man.tokenizer.path / "tokenizer.json"))
    out = []
    for f in split_files(shard_dir, split, man.token_size):
        for ids, loss in f.documents():
            ids = [int(x) for x in ids]
            runs, cur = [], []
            for t, m in zip(ids, loss if loss is not None else [1] * len(ids)):
                if m:
                    cur.append(t)
                elif cur:
                    runs.append(cur)
                    cur = []
            if cur:
                runs.append(cur)
            out.append({
                "ids": ids,
                "loss": [int(x) for x in loss] if loss is not None else None,
                "text": tk.decode(ids, skip_special_tokens=False),
                "loss_runs": [tk.decode(r, skip_special_tokens=False) for r in runs],
                "no_loss_text": tk.decode([t for t, m in zip(ids, loss) if not m], skip_special_tokens=False)
                if loss is not None else "",
            })
            if limit is not None and len(out) >= limit:
                return out
    return out
