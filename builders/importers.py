"""SFT importers: every instruction / chat shape -> :class:`Conversation`.

Shapes (``shape:`` in a block recipe; ``auto`` detects it from the first record of each file):

==============  ==========================================================  =====================================
shape           fields                                                      seen in
==============  ==========================================================  =====================================
alpaca          instruction, output [, input, system, history]              Alpaca, BELLE 2M, rasbt ch07, oasst1
                                                                            pairs, self-cognition sets, ruozhiba
dolly           instruction, context, response [, category]                 databricks-dolly-15k
firefly         kind, input, target                                         firefly-train-1.1M
zhihu           INSTRUCTION, RESPONSE [, SOURCE, METADATA]                  Zhihu-KOL
sharegpt        conversations: [{from, value}]                              ShareGPT/Vicuna, BELLE 3.5M, FastChat
infinity        conversations: [{from, value}], label, langdetect [, source] BAAI Infinity-Instruct (label kept)
messages        messages: [{role, content}]  (or conversation: [{role, ...}])   UltraChat, NuminaMath, WildChat
moss            conversation: [{human, assistant}]                          moss-003-sft
seed_tasks      instruction, instances: [{input, output}]                   Alpaca seed tasks (one row each)
pairs           question/answer, prompt/response, query/response,           plain Q/A pairs, UltraInteract_sft
                prompt/completion, instruction/response, problem/solution
==============  ==========================================================  =====================================

Aliases: ``qa`` / ``ruozhiba`` / ``belle`` (2M) -> alpaca; ``belle_multiturn`` -> sharegpt; ``openai``,
``ultrachat``, ``openhermes`` -> messages (OpenHermes 2.5 is ShareGPT-shaped and is detected as such).

Errors are loud, drops are counted: a file whose records change shape, or whose shape is unknown, raises
:class:`ImportShapeError` naming the file, the record and the fields found.  A JSON-lines record that is not
UTF-8 or not JSON, or a turn with a role we cannot map, becomes a :class:`Drop` with its reason.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shardsmith.schemas.records import Conversation, Drop, Message

SHAPES = ("alpaca", "dolly", "firefly", "zhihu", "sharegpt", "infinity", "messages", "moss", "seed_tasks", "pairs")
ALIASES = {
    "qa": "alpaca",
    "ruozhiba": "alpaca",
    "belle": "alpaca",
    "self_cognition": "alpaca",
    "belle_multiturn": "sharegpt",
    "vicuna": "sharegpt",
    "openai": "messages",
    "ultrachat": "messages",
    "openhermes": "messages",
}
USER_FROM = {"human", "user", "prompter", "question"}
ASSISTANT_FROM = {"gpt", "assistant", "chatgpt", "bing", "bard", "model", "bot", "answer"}
SYSTEM_FROM = {"system"}
PAIR_KEYS = (("question", "answer"), ("prompt", "response"), ("query", "response"), ("prompt", "completion"),
             ("instruction", "response"), ("problem", "solution"))
READ_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz", ".parquet")


class ImportShapeError(ValueError):
    """Input we refuse to guess about; the message names the file, the record and the fields found."""


class _RecordDrop(Exception):
    """A record the importer cannot use: bad input (``step`` import). ``on_error: fail`` stops on these."""

    step = "import"

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class FormatRule(_RecordDrop):
    """A well-formed record the output format leaves out by its own rule (Steel's 略 and A-D only, a CoT rationale
    that opens with the answer, a surgical form with too few answers): always a counted drop, ``step`` format."""

    step = "format"


# ----------------------------------------------------------------------------------------------------------------
# shape detection


def canonical_shape(shape: str) -> str:
    shape = ALIASES.get(shape, shape)
    if shape != "auto" and shape not in SHAPES:
        raise ValueError(f"unknown SFT shape '{shape}' (known: auto, {', '.join(SHAPES)}, aliases {sorted(ALIASES)})")
    return shape


def detect_shape(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    k = set(record)
    if "conversations" in k:
        return "infinity" if "langdetect" in k else "sharegpt"
    if "messages" in k:
        return "messages"
    if "conversation" in k:
        conv = record["conversation"]
        if isinstance(conv, list) and conv and isinstance(conv[0], dict) and "role" in conv[0]:
            return "messages"  # WildChat: conversation = [{role, content, ...}]
        return "moss"
    if {"instruction", "context", "response"} <= k:
        return "dolly"
    if {"kind", "input", "target"} <= k:
        return "firefly"
    if {"INSTRUCTION", "RESPONSE"} <= k:
        return "zhihu"
    if {"instruction", "instances"} <= k:
        return "seed_tasks"
    if {"instruction", "output"} <= k:
        return "alpaca"
    if any(set(p) <= k for p in PAIR_KEYS):
        return "pairs"
    return None


REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {  # any one tuple of fields satisfies the shape
    "alpaca": (("instruction", "output"),),
    "dolly": (("instruction", "response"),),
    "firefly": (("input", "target"),),
    "zhihu": (("INSTRUCTION", "RESPONSE"),),
    "sharegpt": (("conversations",),),
    "infinity": (("conversations", "langdetect"),),
    "messages": (("messages",), ("conversation",)),
    "moss": (("conversation",),),
    "seed_tasks": (("instruction", "instances"),),
    "pairs": PAIR_KEYS,
}


# ----------------------------------------------------------------------------------------------------------------
# conversion, one function per shape; each returns (messages as (role, content), id or None, label or None, meta)


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and all(isinstance(p, dict) and "text" in p for p in value):  # OpenAI content parts
        return "".join(str(p["text"]) for p in value)
    raise TypeError(f"field '{field}' holds {type(value).__name__}, expected text")


def _alpaca(r: dict, o: dict):
    msgs = []
    if r.get("system"):
        msgs.append(("system", _text(r["system"], "system")))
    for i, pair in enumerate(r.get("history") or []):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise TypeError(f"field 'history[{i}]' must be a [query, response] pair")
        msgs += [("user", _text(pair[0], f"history[{i}][0]")), ("assistant", _text(pair[1], f"history[{i}][1]"))]
    instruction = _text(r.get("instruction"), "instruction")
    inp = _text(r.get("input"), "input")
    if inp.strip():
        instruction = instruction + o.get("input_join", "\n") + inp if instruction.strip() else inp
    msgs += [("user", instruction), ("assistant", _text(r.get("output"), "output"))]
    return msgs, {}


def _dolly(r: dict, o: dict):
    q = _text(r.get("instruction"), "instruction")
    ctx = _text(r.get("context"), "context")
    if ctx.strip():
        q = q + o.get("context_join", "\n\n") + ctx
    meta = {"category": r["category"]} if r.get("category") else {}
    return [("user", q), ("assistant", _text(r.get("response"), "response"))], meta


def _firefly(r: dict, o: dict):
    meta = {"kind": r["kind"]} if r.get("kind") else {}
    return [("user", _text(r.get("input"), "input")), ("assistant", _text(r.get("target"), "target"))], meta


def _zhihu(r: dict, o: dict):
    meta = {k: r[k] for k in ("SOURCE", "METADATA") if k in r}
    return [("user", _text(r.get("INSTRUCTION"), "INSTRUCTION")), ("assistant", _text(r.get("RESPONSE"), "RESPONSE"))], meta


def _map_from(value: Any, where: str) -> str:
    v = str(value).strip().lower()
    if v in USER_FROM:
        return "user"
    if v in ASSISTANT_FROM:
        return "assistant"
    if v in SYSTEM_FROM:
        return "system"
    raise _RecordDrop("unsupported_role", f"{where}: role '{value}' is not system/user/assistant")


def _sharegpt(r: dict, o: dict):
    conv = r.get("conversations")
    if not isinstance(conv, list):
        raise TypeError("field 'conversations' must be a list of {from, value}")
    msgs = []
    if r.get("system"):
        msgs.append(("system", _text(r["system"], "system")))
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or "value" not in turn or ("from" not in turn and "role" not in turn):
            raise TypeError(f"field 'conversations[{i}]' must have 'from' and 'value', found {_keys(turn)}")
        role = _map_from(turn.get("from", turn.get("role")), f"conversations[{i}]")
        msgs.append((role, _text(turn["value"], f"conversations[{i}].value")))
    return msgs, {}


def _infinity(r: dict, o: dict):
    msgs, meta = _sharegpt(r, o)
    for k in ("label", "source"):
        if k in r:
            meta[k] = _jsonable(r[k])
    return msgs, meta


def _messages(r: dict, o: dict):
    conv = r.get("messages", r.get("conversation"))
    if not isinstance(conv, list):
        raise TypeError("field 'messages' must be a list of {role, content}")
    msgs = []
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise TypeError(f"field 'messages[{i}]' must have 'role' and 'content', found {_keys(turn)}")
        msgs.append((_map_from(turn["role"], f"messages[{i}]"), _text(turn["content"], f"messages[{i}].content")))
    meta = {k: _jsonable(r[k]) for k in ("prompt_id", "source", "category") if k in r}
    return msgs, meta


def _moss(r: dict, o: dict):
    conv = r.get("conversation")
    if not isinstance(conv, list):
        raise TypeError("field 'conversation' must be a list of {human, assistant}")
    msgs = []
    if r.get("system"):
        msgs.append(("system", _text(r["system"], "system")))
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or not {"human", "assistant"} <= set(turn):
            raise TypeError(f"field 'conversation[{i}]' must have 'human' and 'assistant', found {_keys(turn)}")
        msgs += [("user", _text(turn["human"], "human")), ("assistant", _text(turn["assistant"], "assistant"))]
    return msgs, {}


def _pairs(r: dict, o: dict):
    for q, a in PAIR_KEYS:
        if q in r and a in r:
            return [("user", _text(r[q], q)), ("assistant", _text(r[a], a))], {}
    raise TypeError("no question/answer field pair")


CONVERTERS: dict[str, Callable[[dict, dict], tuple[list[tuple[str, str]], dict]]] = {
    "alpaca": _alpaca,
    "dolly": _dolly,
    "firefly": _firefly,
    "zhihu": _zhihu,
    "sharegpt": _sharegpt,
    "infinity": _infinity,
    "messages": _messages,
    "moss": _moss,
    "pairs": _pairs,
}


def _keys(obj: Any) -> str:
    return ", ".join(sorted(map(str, obj))) if isinstance(obj, dict) else f"<{type(obj).__name__}>"


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except TypeError:
        return str(v)


# ----------------------------------------------------------------------------------------------------------------
# reading files


def expand_paths(paths: Iterable[str], base: str | os.PathLike | None = None,
                 suffixes: tuple[str, ...] = READ_SUFFIXES) -> list[Path]:
    """Files, folders (every file inside whose name ends in ``suffixes``, sorted) and globs; relative paths resolve
    against ``base``."""
    out: list[Path] = []
    for raw in paths:
        p = Path(os.path.expanduser(raw))
        if not p.is_absolute() and base is not None:
            p = Path(base) / p
        if any(ch in str(p) for ch in "*?["):
            hits = sorted(Path(h) for h in glob.glob(str(p), recursive=True))
            if not hits:
                raise FileNotFoundError(f"{raw}: the glob matches no file")
            out += [h for h in hits if h.is_file()]
        elif p.is_dir():
            hits = sorted(h for h in p.rglob("*") if h.is_file() and h.name.endswith(suffixes))
            if not hits:
                raise FileNotFoundError(f"{raw}: the folder holds no {'/'.join(suffixes)} file")
            out += hits
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{raw}: no such file or folder")
    return out


def iter_raw(path: Path, lazy: bool = False) -> Iterator[tuple[int, Any]]:
    """(record index, record) for json arrays, JSON lines (whatever the suffix), gzip and parquet.

    A JSON-lines record that is not UTF-8 or not JSON is yielded as a ``_RecordDrop`` instance instead of a record.
    ``lazy``: a JSON line is yielded as a :class:`RawLine`, parsed only if ``import_records`` is given it (a source
    that visits a part of its records parses only that part).
    """
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        i = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                yield i, row
                i += 1
        return
    raw = path.read_bytes()
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    head = raw.lstrip()[:1]
    if head == b"[":
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise ImportShapeError(
                f"{path}: not UTF-8 (byte {err.start}: {raw[err.start:err.start + 4]!r}); a JSON array cannot be "
                "read record by record, re-encode the file"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ImportShapeError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
        for i, rec in enumerate(data):
            yield i, rec
        return
    if head == b"{" and not name.endswith((".jsonl", ".jsonl.gz")):
        # a single JSON object holding a list (e.g. {"data": [...]}) or JSON lines named .json
        try:
            data = json.loads(raw.decode("utf-8-sig"))
            if isinstance(data, dict):
                lists = [v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
                if len(lists) == 1 and detect_shape(data) is None:
                    for i, rec in enumerate(lists[0]):
                        yield i, rec
                    return
                yield 0, data
                return
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass  # JSON lines
    for i, text in iter_text_lines(io.BytesIO(raw)):
        line = text if isinstance(text, _RecordDrop) else RawLine(i, text)
        yield i, line if lazy or isinstance(line, _RecordDrop) else line.load()


class RawLine:
    """A JSON line not parsed yet (``iter_raw(lazy=True)``); ``load()``: its record, or an ``invalid_json``
    ``_RecordDrop`` naming the line."""

    __slots__ = ("index", "text")

    def __init__(self, index: int, text: str):
        self.index, self.text = index, text

    def load(self) -> Any:
        try:
            return json.loads(self.text)
        except json.JSONDecodeError as err:
            return _RecordDrop("invalid_json", f"line {self.index + 1}: {err.msg} (column {err.colno})")


def iter_text_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, str | _RecordDrop]]:
    """(line index, decoded line without its end) for each non-blank line; a line that is not UTF-8 becomes an
    ``invalid_utf8`` ``_RecordDrop`` naming the line (one bad line never stops a file)."""
    for i, raw in enumerate(lines):
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        try:
            yield i, line.decode("utf-8")
        except UnicodeDecodeError as err:
            yield i, _RecordDrop("invalid_utf8", f"line {i + 1}: not UTF-8 at byte {err.start} of the line")


def iter_hf(dataset: str, config: str | None, split: str) -> Iterator[tuple[int, Any]]:
    """An HF hub dataset by name, streamed (needs the network or a local HF cache)."""
    import datasets

    ds = datasets.load_dataset(dataset, config, split=split, streaming=True)
    for i, rec in enumerate(ds):
        yield i, rec


# ----------------------------------------------------------------------------------------------------------------
# the importer


def convert_record(
    record: dict, shape: str, *, source: str, rec_id: str, options: dict | None = None, label_field: str | None = None
) -> list[Conversation]:
    """One raw record -> conversation(s). Raises TypeError on a malformed field, _RecordDrop on an unmappable turn."""
    options = options or {}
    if shape == "seed_tasks":
        instruction = _text(record.get("instruction"), "instruction")
        out = []
        for j, inst in enumerate(record.get("instances") or []):
            sub = {"instruction": instruction, "input": inst.get("input", ""), "output": inst.get("output", "")}
            out += convert_record(sub, "alpaca", source=source, rec_id=f"{rec_id}#{j}", options=options)
        return out
    pairs, meta = CONVERTERS[shape](record, options)
    strip = options.get("strip", True)
    messages = [Message(role=role, content=c.strip() if strip else c) for role, c in pairs]
    label = None
    lf = label_field or ("langdetect" if shape == "infinity" else None)
    if lf and record.get(lf) is not None:
        label = str(record[lf])
    return [Conversation(messages=messages, source=source, id=rec_id, label_lang=label, metadata=meta)]


@dataclass(frozen=True)
class ShapeSet:
    """One family of record shapes (SFT conversations, preference pairs): how to detect, check and convert them."""

    what: str
    shapes: tuple[str, ...]
    required: dict[str, tuple[tuple[str, ...], ...]]
    detect: Callable[[Any], str | None]
    canonical: Callable[[str], str]
    convert: Callable[..., list]


SFT_SHAPES = ShapeSet("SFT", SHAPES, REQUIRED, detect_shape, canonical_shape, convert_record)


def import_records(
    records: Iterable[tuple[int, Any]],
    *,
    where: str,
    source: str,
    shape: str = "auto",
    options: dict | None = None,
    id_field: str | None = None,
    label_field: str | None = None,
    id_prefix: str | None = None,
    shapes: ShapeSet = SFT_SHAPES,
    shape_memo: dict | None = None,
) -> Iterator[Any]:
    """Convert raw records of one file (or stream) named ``where``; the shape is fixed by the first record.

    ``shape_memo``: a dict kept across calls that convert parts of one file (``block.VisitOrder``): the shape the
    first part's first record fixed holds for the later parts too."""
    memo = {} if shape_memo is None else shape_memo
    shape = shapes.canonical(shape)
    fixed = memo.get("shape", None if shape == "auto" else shape)
    detected_at = memo.get("detected_at")
    prefix = id_prefix if id_prefix is not None else where
    for i, rec in records:
        if isinstance(rec, RawLine):
            rec = rec.load()
        if isinstance(rec, _RecordDrop):
            yield Drop(source=source, id=f"{prefix}:{i}", reason=rec.reason, step="import", detail=f"{where}: {rec.detail}")
            continue
        if not isinstance(rec, dict):
            raise ImportShapeError(f"{where}: record {i}: expected a JSON object, found {type(rec).__name__}")
        if fixed is None:
            fixed = shapes.detect(rec)
            detected_at = i
            if fixed is None:
                raise ImportShapeError(
                    f"{where}: record {i}: unknown {shapes.what} shape; fields found: {_keys(rec)}. Known shapes: "
                    + "; ".join(f"{s} ({' | '.join('+'.join(r) for r in shapes.required[s])})" for s in shapes.shapes)
                    + ". Set `shape:` on the source to force one."
                )
            memo["shape"], memo["detected_at"] = fixed, detected_at
        if not any(set(req) <= set(rec) for req in shapes.required[fixed]):
            how = f"detected from record {detected_at}" if detected_at is not None else "set in the recipe"
            raise ImportShapeError(
                f"{where}: record {i}: does not fit shape '{fixed}' ({how}), which needs "
                f"{' or '.join('+'.join(r) for r in shapes.required[fixed])}; fields found: {_keys(rec)}"
                " (mixed shapes in one file are refused: split the file or give each part its own source)"
            )
        rid = str(rec[id_field]) if id_field and rec.get(id_field) is not None else (
            str(rec["id"]) if isinstance(rec.get("id"), (str, int)) else f"{prefix}:{i}"
        )
        try:
            yield from shapes.convert(rec, fixed, source=source, rec_id=rid, options=options, label_field=label_field)
        except _RecordDrop as d:
            yield Drop(source=source, id=rid, reason=d.reason, step=d.step, detail=f"{where}: record {i}: {d.detail}",
                       record=_jsonable(rec))
        except (TypeError, ValueError) as err:
            raise ImportShapeError(f"{where}: record {i}: {err}; fields found: {_keys(rec)}") from None


def import_file(path: str | os.PathLike, *, source: str, shape: str = "auto", **kw) -> Iterator[Conversation | Drop]:
    path = Path(path)
    yield from import_records(iter_raw(path), where=str(path), source=source, shape=shape,
                              id_prefix=kw.pop("id_prefix", path.name), **kw)
