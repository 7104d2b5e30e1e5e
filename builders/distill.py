"""Distillation blocks (FF_3.13 stage 4): a question pool mixed by source, answered by a teacher.

Two parts the block pipeline strings together:

- :func:`plan_pool` draws the questions: each source gives ``share * total`` of them (shares normalized, counts
  rounded by largest remainder so they add up to ``total`` exactly), the first of each source in an order shuffled
  by ``seed`` (so a build reads only the head of that order); each question
  is the conversation up to its last user turn (any answer it came with is dropped: the teacher answers).
- a teacher (:data:`TEACHERS`, built by :func:`make_teacher`) answers them: ``file`` reads outputs someone already
  generated, ``hf`` runs a local HF model through ``transformers`` generation, batched, with an append-only cache
  that makes a rerun generate only what is missing. Both return, per question in order, the answered
  :class:`Conversation` (``metadata["teacher"]`` names the teacher) or a :class:`Drop` with step ``teacher``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from shardsmith.builders.block import BlockStep, BuildError, Item, SourceBooks, Verdict, VisitMore, largest_remainder
from shardsmith.builders.templates import RenderError, chat_prompt, render
from shardsmith.pipelines.tokenizers import sha256_file
from shardsmith.schemas.block_recipe import TemplateDef
from shardsmith.schemas.distill import FileTeacherSpec, HfTeacherSpec, PoolSpec
from shardsmith.schemas.records import Conversation, Drop, Message

STEP = "teacher"
NO_OUTPUT = "no_teacher_output"
EMPTY_OUTPUT = "empty_teacher_output"
TOO_LONG = "too_long_for_teacher"


# --------------------------------------------------------------------------------------------------------------
# the question pool


class PoolError(ValueError):
    """The pool cannot be drawn as asked (a source short of questions, a share for a source that is not there...)."""


@dataclass(frozen=True)
class SourceCount:
    """One source's part of the pool, for the manifest: ``target`` from the shares, ``taken`` what it gave."""

    source: str
    share: float  # normalized share (all shares sum to 1)
    target: int
    available: int
    taken: int

    @property
    def shortfall(self) -> int:
        return self.target - self.taken

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "shortfall": self.shortfall}


def share_counts(shares: dict[str, float], total: int) -> dict[str, int]:
    """``total`` split by ``shares`` (normalized by their sum) with largest-remainder rounding: the counts sum to
    ``total`` exactly; ties in the remainder go to the source listed first."""
    if not shares or any(not v > 0 for v in shares.values()):
        raise PoolError(f"shares must be positive: {shares}")
    return largest_remainder(total, shares)


def plan_counts(available: dict[str, int], shares: dict[str, float], total: int,
                on_short: str = "fail") -> list[SourceCount]:
    """Per source (in ``shares`` order): its target count and what it can give. ``on_short="fail"`` raises
    :class:`PoolError` naming every short source and its shortfall; ``"take_all"`` takes all such a source has (the
    pool is then smaller than ``total``; the shortfall is in the returned counts, nothing moves to other sources)."""
    unknown = [k for k in shares if k not in available]
    unshared = [k for k in available if k not in shares]
    if unknown or unshared:
        raise PoolError("pool " + "; ".join(
            ([f"shares name sources with no questions: {', '.join(unknown)}"] if unknown else [])
            + ([f"sources without a share: {', '.join(unshared)}"] if unshared else [])))
    if on_short not in ("fail", "take_all"):
        raise PoolError(f"on_short must be fail or take_all, not {on_short!r}")
    targets = share_counts(shares, total)
    norm = sum(shares.values())
    counts = [SourceCount(k, shares[k] / norm, t, available[k], min(t, available[k])) for k, t in targets.items()]
    short = [c for c in counts if c.shortfall]
    if short and on_short == "fail":
        raise PoolError("pool short: " + "; ".join(
            f"source '{c.source}' has {c.available} questions, needs {c.target} (short by {c.shortfall})"
            for c in short))
    return counts


def as_question(conv: Conversation) -> Conversation:
    """The conversation up to and including its last user turn (trailing assistant answers dropped)."""
    msgs = list(conv.messages)
    while msgs and msgs[-1].role == "assistant":
        msgs.pop()
    if not msgs or msgs[-1].role != "user":
        raise PoolError(f"pool source '{conv.source}' record '{conv.id}': no user turn to ask the teacher")
    return conv.model_copy(update={"messages": msgs})


def pool_order(n: int, seed: int, source: str) -> list[int]:
    """A pooled source's seeded order: ``random.Random(f"{seed}:{source}")`` shuffling ``range(n)`` — the order a
    distill block reads the source in (``block.VisitOrder``, over its raw records)."""
    order = list(range(n))
    random.Random(pool_seed(seed, source)).shuffle(order)
    return order


def pool_seed(seed: int, source: str) -> str:
    return f"{seed}:{source}"


def plan_pool(pools: dict[str, list[Conversation]], shares: dict[str, float], total: int, seed: int,
              on_short: str = "fail") -> list[Conversation]:
    """The question pool: per source (in ``shares`` order) ``plan_counts``'s ``taken`` records, the first ones in
    the source's seeded order (:func:`pool_order`: ``seed`` and the source name fix which), each cut to a question by
    :func:`as_question`. Question ids must be unique across the pool (the teachers key outputs by id).
    ``plan_counts({k: len(v) ...}, shares, total, on_short)`` gives the same counts for the manifest."""
    return pool_of_ordered({k: [v[i] for i in pool_order(len(v), seed, k)] for k, v in pools.items()}, shares,
                           total, on_short)


def pool_of_ordered(ordered: dict[str, list[Conversation]], shares: dict[str, float], total: int,
                    on_short: str = "fail") -> list[Conversation]:
    """:func:`plan_pool` over sources already in their seeded order: each gives its first ``taken`` records."""
    counts = plan_counts({k: len(v) for k, v in ordered.items()}, shares, total, on_short)
    pool = [as_question(q) for c in counts for q in ordered[c.source][: c.taken]]
    _check_unique_ids(pool)
    return pool


def _check_unique_ids(pool: list[Conversation]) -> None:
    seen: dict[str, str] = {}
    for q in pool:
        if q.id in seen:
            raise PoolError(f"question id '{q.id}' occurs twice in the pool (sources '{seen[q.id]}' and "
                            f"'{q.source}'); teachers key outputs by id")
        seen[q.id] = q.source


# --------------------------------------------------------------------------------------------------------------
# teachers: shared pieces


class TeacherError(ValueError):
    """A teacher that cannot run (unreadable outputs file, malformed line, missing model, foreign cache)."""


class Teacher(Protocol):
    kind: str
    name: str

    def answer(self, questions: list[Conversation]) -> list[Conversation | Drop]: ...

    @property
    def info(self) -> dict[str, Any]: ...


def answered(question: Conversation, output: str | None, teacher: str) -> Conversation | Drop:
    """The question with the teacher's output as the assistant turn, or an ``empty_teacher_output`` drop."""
    if output is None or not output.strip():
        return teacher_drop(question, EMPTY_OUTPUT, f"teacher '{teacher}' returned nothing")
    return question.model_copy(update={
        "messages": [*question.messages, Message(role="assistant", content=output)],
        "metadata": {**question.metadata, "teacher": teacher},
    })


def teacher_drop(question: Conversation, reason: str, detail: str) -> Drop:
    return Drop(source=question.source, id=question.id, reason=reason, step=STEP, detail=detail,
                record=question.model_dump(mode="json"))


def _resolve(path: str, base: str | os.PathLike | None) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or base is None else Path(base) / p


# --------------------------------------------------------------------------------------------------------------
# teacher `file`: outputs generated elsewhere


def read_teacher_file(path: Path) -> dict[str, dict[str, Any]]:
    """id -> row of a teacher-outputs JSONL. Each line: an object with ``id`` (string or integer) and ``output``
    (string, or null for an empty answer); ``model`` / ``settings`` optional. Errors name the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise TeacherError(f"{path}: cannot read teacher outputs: {err.strerror or err}") from None
    rows: dict[str, dict[str, Any]] = {}
    where: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = _teacher_row(path, n, line)
        key = str(row["id"])
        if key in rows:
            raise TeacherError(f"{path}:{n}: id '{key}' already given on line {where[key]}")
        rows[key], where[key] = row, n
    return rows


def _teacher_row(path: Path, n: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise TeacherError(f"{path}:{n}: not JSON ({err.msg})") from None
    if not isinstance(row, dict):
        raise TeacherError(f"{path}:{n}: expected an object with id and output")
    if not isinstance(row.get("id"), (str, int)) or isinstance(row.get("id"), bool):
        raise TeacherError(f"{path}:{n}: field 'id' missing or not a string/integer")
    if "output" not in row or not (row["output"] is None or isinstance(row["output"], str)):
        raise TeacherError(f"{path}:{n}: field 'output' missing or not a string (null for no answer)")
    return row


class FileTeacher:
    """Answers from a JSONL of teacher outputs keyed by question id: a question without a row is dropped as
    ``no_teacher_output``, one whose output is empty / whitespace / null as ``empty_teacher_output``. Outputs are
    used verbatim."""

    kind = "file"

    def __init__(self, spec: FileTeacherSpec, base: str | os.PathLike | None = None):
        self.path = _resolve(spec.path, base)
        self.rows = read_teacher_file(self.path)
        self.name = spec.name or self.path.stem

    def answer(self, questions: list[Conversation]) -> list[Conversation | Drop]:
        out: list[Conversation | Drop] = []
        for q in questions:
            row = self.rows.get(q.id)
            if row is None:
                out.append(teacher_drop(q, NO_OUTPUT, f"no row with id '{q.id}' in {self.path}"))
            else:
                out.append(answered(q, row["output"], self.name))
        return out

    @property
    def info(self) -> dict[str, Any]:
        models: dict[str, int] = {}
        settings: list[Any] = []
        for row in self.rows.values():
            if row.get("model") is not None:
                models[str(row["model"])] = models.get(str(row["model"]), 0) + 1
            if row.get("settings") is not None and row["settings"] not in settings:
                settings.append(row["settings"])
        return {"kind": self.kind, "name": self.name, "path": str(self.path), "sha256": sha256_file(self.path),
                "rows": len(self.rows), "models": models, "settings": settings}


# --------------------------------------------------------------------------------------------------------------
# teacher `hf`: a local model through transformers generation


def prompt_text(question: Conversation, tpl: TemplateDef, system: str | None = None) -> str:
    """What the teacher reads: ``chat_prompt`` of the question's user turn (its own system message first, else
    ``system``, else the template's default). Earlier turns of a multi-turn question are rendered by the template
    before it (the rendered conversation with an empty answer, minus the assistant piece's end marker)."""
    msgs = list(question.messages)
    if msgs and msgs[0].role == "system":
        system = msgs.pop(0).content
    if sum(m.role == "user" for m in msgs) <= 1:
        return chat_prompt(msgs[-1].content, tpl, system)
    head = [Message(role="system", content=system)] if system is not None else []
    conv = question.model_copy(update={"messages": head + msgs + [Message(role="assistant", content="")]})
    tail = tpl.assistant.split("{content}")[1]
    text = render(conv, tpl).text
    return text[: len(text) - len(tail)] if tail else text


class HfTeacher:
    """A causal LM answering with ``transformers`` ``generate``: prompts rendered by the block's template
    (:func:`prompt_text`), left-padded batches of ``batch_size``, greedy or sampled, a tqdm bar.

    Resumable: outputs go to ``cache`` (JSONL: a header line with the settings' fingerprint, then one ``{"id",
    "output"}`` per question), appended and flushed batch by batch; a rerun reads it and generates only the ids not
    in it, so a killed run loses at most one batch (a half-written last line is cut off). A cache written with other
    settings (model, weights, template, sampling) is refused, naming what differs. The model loads only when
    something is left to generate.

    An output is the generated text up to the first stop token (EOS, or the template's end marker when that is one
    token), decoded without special tokens, stripped; empty -> ``empty_teacher_output``."""

    kind = "hf"

    def __init__(self, spec: HfTeacherSpec, template: TemplateDef, cache: str | os.PathLike,
                 base: str | os.PathLike | None = None, progress: bool = True):
        self.spec, self.template, self.cache, self.progress = spec, template, Path(cache), progress
        self.model_ref = str(_resolve(spec.path, base).resolve()) if spec.path else spec.hub_id
        if spec.path and not Path(self.model_ref, "config.json").is_file():
            raise TeacherError(f"hf teacher path {self.model_ref}: no config.json (a local HF model folder is needed; "
                               f"use hub_id for a hub model)")
        self.name = spec.name or (Path(self.model_ref).name if spec.path else spec.hub_id)
        self.stats = {"questions": 0, "from_cache": 0, "generated": 0, "batches": 0}
        self._loaded: tuple[Any, Any, Any] | None = None

    # ---- manifest ---------------------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """What decides the outputs: a cache written under another fingerprint is not reused."""
        s = self.spec
        fp = {"model": self.model_ref, "weights": self._weights_id(), "template": self.template.model_dump(),
              "system": s.system, "do_sample": s.do_sample, "max_new_tokens": s.max_new_tokens,
              "dtype": self._dtype_name()}
        if s.do_sample:
            fp.update(temperature=s.temperature, top_p=s.top_p, seed=s.seed, batch_size=s.batch_size)
        return fp

    @property
    def info(self) -> dict[str, Any]:
        import torch
        import transformers

        s = self.spec
        return {"kind": self.kind, "name": self.name, "path": s.path and self.model_ref, "hub_id": s.hub_id,
                "weights": self._weights_id(), "template": self.template.name, "system": s.system,
                "do_sample": s.do_sample, "temperature": s.temperature if s.do_sample else None,
                "top_p": s.top_p if s.do_sample else None, "seed": s.seed if s.do_sample else None,
                "max_new_tokens": s.max_new_tokens, "batch_size": s.batch_size, "dtype": self._dtype_name(),
                "device": self._device_name(), "transformers": transformers.__version__, "torch": torch.__version__,
                "cache": str(self.cache), **self.stats}

    def _weights_id(self) -> str | None:
        """The export's ``weights.sha256`` (this project's exports), else a digest of config + weight file sizes."""
        if not self.spec.path:
            return None
        folder = Path(self.model_ref)
        if (folder / "weights.sha256").is_file():
            return (folder / "weights.sha256").read_text().strip()
        h = hashlib.sha256((folder / "config.json").read_bytes())
        for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
            h.update(f"{f.name}:{f.stat().st_size}".encode())
        return "files:" + h.hexdigest()

    def _device_name(self) -> str:
        import torch

        return self.spec.device if self.spec.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")

    def _dtype_name(self) -> str:
        if self.spec.dtype != "auto":
            return self.spec.dtype
        return "bf16" if self._device_name() == "cuda" else "fp32"

    # ---- answering --------------------------------------------------------------------------------------------
    def answer(self, questions: list[Conversation]) -> list[Conversation | Drop]:
        """Per question in order: answered, or a drop (empty output; a question the template cannot render, with
        the renderer's reason, e.g. ``too_many_turns``)."""
        _check_unique_ids(questions)
        outputs = self._read_cache()
        unrendered: dict[str, Drop] = {}
        prompts: dict[str, str] = {}
        for q in questions:
            if q.id in outputs:
                continue
            try:
                prompts[q.id] = prompt_text(q, self.template, self.spec.system)
            except RenderError as err:
                unrendered[q.id] = teacher_drop(q, err.reason, str(err))
        if prompts:
            unrendered.update(self._too_long(questions, prompts))
        todo = [q for q in questions if q.id in prompts and q.id not in unrendered]
        self.stats["questions"] += len(questions)
        self.stats["from_cache"] += len(questions) - len(todo) - len(unrendered)
        if todo:
            outputs.update(self._generate_into_cache(todo, prompts))
        return [unrendered.get(q.id) or answered(q, outputs[q.id], self.name) for q in questions]

    def _too_long(self, questions: list[Conversation], prompts: dict[str, str]) -> dict[str, Drop]:
        """Questions whose prompt + ``max_new_tokens`` do not fit the teacher's context (positions it has no
        embedding for): ``too_long_for_teacher`` drops, never a crash or a silent truncation."""
        tok, model, _ = self._load()
        context = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
        if context is None:
            return {}
        room = context - self.spec.max_new_tokens
        drops = {}
        for q in questions:
            if q.id in prompts:
                n = len(tok(prompts[q.id])["input_ids"])
                if n > room:
                    drops[q.id] = teacher_drop(q, TOO_LONG, f"prompt {n} + {self.spec.max_new_tokens} new tokens > "
                                               f"the teacher's context {context}")
        return drops

    def _generate_into_cache(self, todo: list[Conversation], prompts: dict[str, str]) -> dict[str, str]:
        from tqdm.auto import tqdm

        new: dict[str, str] = {}
        bs = self.spec.batch_size
        with open(self.cache, "a", encoding="utf-8") as f, \
                tqdm(total=len(todo), desc=f"teacher {self.name}", unit="q", disable=not self.progress) as bar:
            for i in range(0, len(todo), bs):
                batch = todo[i:i + bs]
                texts = self.generate([prompts[q.id] for q in batch], [q.id for q in batch])
                f.write("".join(json.dumps({"id": q.id, "output": t}, ensure_ascii=False) + "\n"
                                for q, t in zip(batch, texts)))
                f.flush()
                os.fsync(f.fileno())
                new.update((q.id, t) for q, t in zip(batch, texts))
                bar.update(len(batch))
        return new

    def generate(self, prompts: list[str], ids: list[str] | None = None) -> list[str]:
        """One left-padded batch through ``model.generate``; the texts as :class:`HfTeacher` defines outputs."""
        import torch

        tok, model, device = self._load()
        s = self.spec
        enc = tok(prompts, return_tensors="pt", padding=True).to(device)
        kw: dict[str, Any] = dict(max_new_tokens=s.max_new_tokens, do_sample=s.do_sample,
                                  pad_token_id=tok.pad_token_id, eos_token_id=self._stop_ids)
        if s.do_sample:
            kw.update(temperature=s.temperature, top_p=s.top_p, top_k=None)
            torch.manual_seed(_batch_seed(s.seed, ids or prompts))
        with torch.inference_mode():
            out = model.generate(**enc, **kw)
        self.stats["generated"] += len(prompts)
        self.stats["batches"] += 1
        return [self._text(row.tolist()) for row in out[:, enc["input_ids"].shape[1]:]]

    def _text(self, new_ids: list[int]) -> str:
        tok = self._load()[0]
        stop = next((i for i, t in enumerate(new_ids) if t in self._stop_ids), len(new_ids))
        return tok.decode(new_ids[:stop], skip_special_tokens=True).strip()

    def _load(self):
        """(tokenizer, model, device), loaded once: local folders with ``local_files_only`` (never the hub)."""
        if self._loaded is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            local = dict(local_files_only=True) if self.spec.path else {}
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self._dtype_name()]
            try:
                tok = AutoTokenizer.from_pretrained(self.model_ref, **local)
                model = AutoModelForCausalLM.from_pretrained(self.model_ref, dtype=dtype, **local)
            except OSError as err:  # transformers' message does not say which model
                where = "teacher.path" if self.spec.path else "teacher.hub_id"
                raise TeacherError(f"{where} {self.model_ref}: cannot load the model ({err})") from None
            tok.padding_side = "left"
            device = torch.device(self._device_name())
            model.to(device).eval()
            self._stop_ids = _stop_ids(tok, model, self.template)
            if tok.pad_token_id is None:
                tok.pad_token_id = self._stop_ids[0]
            self._loaded = (tok, model, device)
        return self._loaded

    # ---- cache ------------------------------------------------------------------------------------------------
    def _read_cache(self) -> dict[str, str]:
        """id -> output of the cache; creates it (header line) when absent; cuts a half-written last line."""
        fp = self.fingerprint()
        if not self.cache.is_file():
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache.with_name(f".{self.cache.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps({"teacher_cache": 1, "fingerprint": fp}, ensure_ascii=False) + "\n")
            os.replace(tmp, self.cache)
            return {}
        data = self.cache.read_bytes()
        if not data.endswith(b"\n"):  # killed mid-line: keep the complete lines only
            data = data[: data.rfind(b"\n") + 1]
            with open(self.cache, "r+b") as f:
                f.truncate(len(data))
        lines = data.decode("utf-8").splitlines()
        header = json.loads(lines[0]) if lines else {}
        if header.get("fingerprint") != fp:
            raise TeacherError(f"{self.cache}: written with other teacher settings ("
                               f"{_differing(header.get('fingerprint') or {}, fp)}); delete it or use another cache")
        return dict(_cache_row(self.cache, n, line) for n, line in enumerate(lines[1:], 2) if line.strip())


def _cache_row(path: Path, n: int, line: str) -> tuple[str, str]:
    try:
        row = json.loads(line)
        return row["id"], row["output"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise TeacherError(f"{path}:{n}: not a cache row with id and output; delete the cache to start over") from None


def _differing(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return "differs in: " + ", ".join(keys) if keys else "no header"


def _stop_ids(tok, model, tpl: TemplateDef) -> list[int]:
    """EOS ids (generation config, tokenizer) plus the template's end marker (as written or stripped) when that
    is a single token."""
    ids: list[int] = []
    for e in (model.generation_config.eos_token_id, tok.eos_token_id):
        ids += e if isinstance(e, list) else [e] if e is not None else []
    tail = tpl.assistant.split("{content}")[1]
    for marker in dict.fromkeys((tail, tail.strip())):  # t1b's "\n<|end|>": the <|end|> token
        enc = tok.encode(marker, add_special_tokens=False) if marker else []
        if len(enc) == 1:
            ids.append(enc[0])
    if not ids:
        raise TeacherError(f"teacher tokenizer {tok.name_or_path}: no EOS token to stop generation")
    return list(dict.fromkeys(ids))


def _batch_seed(seed: int, ids: list[str]) -> int:
    """A sampling seed per batch from the recipe's seed and the batch's question ids (same batch, same draws)."""
    h = hashlib.sha256(json.dumps([seed, ids]).encode()).digest()
    return int.from_bytes(h[:8], "little") % (2**63)


# --------------------------------------------------------------------------------------------------------------
# registry

TEACHERS: dict[str, type] = {"file": FileTeacher, "hf": HfTeacher}


def make_teacher(spec: FileTeacherSpec | HfTeacherSpec, *, template: TemplateDef | None = None,
                 cache: str | os.PathLike | None = None, base: str | os.PathLike | None = None,
                 progress: bool = True) -> Teacher:
    """The teacher for ``spec`` (``base``: the recipe's folder, for relative paths). ``hf`` needs the block's
    ``template`` and a ``cache`` file (next to the build, e.g. ``OUT.teacher-cache.jsonl``)."""
    if spec.kind == "file":
        return FileTeacher(spec, base)
    if template is None or cache is None:
        raise TeacherError("an hf teacher needs the block's template and a cache path")
    return HfTeacher(spec, template, cache, base, progress)


# --------------------------------------------------------------------------------------------------------------
# the distill block's steps: pool, then teacher (between dedup and render; see builders/kinds.py)


class PoolStep(BlockStep):
    """Draw the question pool over all sources by ``pool.shares`` (exact counts): each source's first survivors in
    its seeded reading order (:func:`pool_order`; the build reads a pooled source in that order and judges only a
    prefix of it, ``block.VisitOrder``). Records outside the pool leave as ``not_in_pool`` (not an error: the pool
    is a sample), records inside lose their answers. A source whose judged prefix falls short while records remain
    unread is read further (``VisitMore``)."""

    name, timing = "pool", "pool"
    keeps_records = False

    def __init__(self, spec: PoolSpec):
        self.spec = spec
        self.chosen: set[tuple[str, str]] = set()
        self.counts: list[SourceCount] = []

    def prepare(self, items: dict[str, list[Item]], books: dict[str, SourceBooks]) -> None:
        pools = {name: [it.conv for it in lst] for name, lst in items.items()}
        shares = self.spec.shares
        try:
            self.counts = plan_counts({k: len(v) for k, v in pools.items()}, shares, self.spec.total, "take_all")
            unread = {c.source: (c.target, c.available) for c in self.counts
                      if c.shortfall and books[c.source].unvisited}
            if unread:
                raise VisitMore(unread)
            self.counts = plan_counts({k: len(v) for k, v in pools.items()}, shares, self.spec.total,
                                      self.spec.on_short)
            pool = pool_of_ordered(pools, shares, self.spec.total, self.spec.on_short)
        except PoolError as err:
            raise BuildError(str(err)) from None
        self.chosen = {(q.source, q.id) for q in pool}

    def decide(self, item: Item, books: SourceBooks) -> Verdict:
        if (item.conv.source, item.conv.id) not in self.chosen:
            return "not_in_pool", f"pool.shares give source '{books.name}' a fixed number of questions"
        item.conv = as_question(item.conv)
        return None

    def manifest_fields(self) -> dict[str, Any]:
        return {"distill_pool": {"spec": self.spec.model_dump(mode="json"), "sources": [c.as_dict() for c in self.counts]}}


def pool_targets(spec: PoolSpec) -> dict[str, int]:
    """How many questions each pooled source gives (``share_counts``), to size what the build reads of it."""
    try:
        return share_counts(spec.shares, spec.total)
    except PoolError as err:
        raise BuildError(str(err)) from None


class TeacherStep(BlockStep):
    """The teacher answers each pooled question; no output or an empty one is a counted drop, or with
    ``on_error: fail`` stops the build naming the question (a prompt too long for the teacher stays a drop)."""

    name, timing = "teacher", "teacher"

    def __init__(self, teacher: Teacher, fail_on_silence: bool = False):
        self.teacher = teacher
        self.fail_on_silence = fail_on_silence

    def decide_all(self, items: list[Item], books: SourceBooks) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for it, out in zip(items, self.teacher.answer([it.conv for it in items]), strict=True):
            if isinstance(out, Drop):
                if self.fail_on_silence and out.reason in (NO_OUTPUT, EMPTY_OUTPUT):
                    raise BuildError(f"source {books.name}: question '{out.id}': {out.detail} ({out.reason}; "
                                     "on_error: fail)")
                verdicts.append((out.reason, out.detail))
            else:
                it.conv = out
                verdicts.append(None)
        return verdicts

    def manifest_fields(self) -> dict[str, Any]:
        return {"teacher": self.teacher.info}
