"""MCQ importers and output styles: every multiple-choice shape -> :class:`McqQuestion` -> one prompt/answer pair.

Two layers, kept apart so surgical rewrites, repair blocks and the distill pool can reuse the first one:

1. **Parse** (:func:`parse_question`, :func:`import_questions`): one raw record -> ``McqQuestion`` (question, options
   ``{letter: text}`` in display order, answer letter(s), explanation, q_type, subject) or a counted drop.
2. **Render** (:func:`render`, :data:`STYLES`): ``McqQuestion`` -> (prompt, answer) in one registered style,
   optionally after a seeded option shuffle (:func:`shuffle_options`). :data:`MCQ_SHAPESET` plugs both into
   ``importers.import_records`` and returns ``[Conversation]`` (user = prompt, assistant = answer).

Shapes (``shape:``; ``auto`` detects from the first record of each file):

================  =================================================================  ===============================
shape             fields                                                             seen in
================  =================================================================  ===============================
mmlu              header-less CSV ``question,A,B,C,D,answer`` (answer a letter)      hendrycks/test data/{dev,val,test}
mmlu_indexed      CSV header ``question,choice0..choice3,answer`` (0-based index)    mcq_mmlu (a re-export)
cmmlu             CSV header ``,Question,A,B,C,D,Answer``                            haonan-li/CMMLU data/{dev,test}
ceval             CSV ``id,question,A,B,C,D,answer[,explanation]``                   ceval/ceval-exam {dev,val}
arc               question, choices {text, label}, answerKey (labels A-E or 1-4)     allenai/ai2_arc (Arrow, parquet)
hellaswag         ctx, endings, label (int or "3")                                   rowanz/hellaswag jsonl
hellaswag_olmes   OLMES request lines: doc {ind, query, choices, gold}; 4 per item   allenai/OLMo eval requests
                  + 4 unconditional ones (doc_id >= 1,000,000): one question each
truthfulqa        CSV Question, Best Answer, Incorrect Answers ('; '-separated), ...  sylinrl/TruthfulQA
wanjuan           q_type, q_main, option_a..option_e, std_ans, answer_detail, ...     OpenDataLab WanJuan 1.0 exam
================  =================================================================  ===============================

Drops (reason keys): ``missing_answer`` (no answer key), ``answer_not_in_options`` (the key names no option),
``empty_option`` (a blank option), ``malformed_row`` (wrong column count, unparseable CSV row, a field of the wrong
type), WanJuan/Steel ``omitted_answer`` (the Steel output holds 略), ``missing_explanation`` (a style that needs an
explanation), ``multiple_answers`` (a style that needs one answer). Option text is kept exactly as read (Steel's
formats are byte-exact and do not strip); only the answer key is trimmed and upper-cased.

TruthfulQA puts the best answer first (answer A) followed by its incorrect answers: set ``shuffle_options: true``.
WanJuan ``std_ans`` may name several letters (多选题); they are kept as one sorted string (``"AC"``), so
``McqQuestion.answer_text`` only works for one letter: use :func:`answer_letters`.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shardsmith.schemas.records import Conversation, Drop, McqQuestion, Message

from . import importers
from .importers import FormatRule, ImportShapeError, ShapeSet, _RecordDrop

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MCQ_SHAPES = ("mmlu", "mmlu_indexed", "cmmlu", "ceval", "arc", "hellaswag", "hellaswag_olmes", "truthfulqa", "wanjuan")
MCQ_ALIASES = {"hendrycks": "mmlu", "c_eval": "ceval", "ai2_arc": "arc", "olmes_hellaswag": "hellaswag_olmes",
               "wanjuan_exam": "wanjuan"}
MCQ_REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "mmlu": (("question", "A", "B", "C", "D", "answer"),),
    "mmlu_indexed": (("question", "choice0", "choice1", "choice2", "choice3", "answer"),),
    "cmmlu": (("Question", "A", "B", "C", "D", "Answer"),),
    "ceval": (("id", "question", "A", "B", "C", "D", "answer"),),
    "arc": (("question", "choices", "answerKey"),),
    "hellaswag": (("ctx", "endings", "label"),),
    "hellaswag_olmes": (("doc", "request_type"),),
    "truthfulqa": (("Question", "Best Answer", "Incorrect Answers"),),
    "wanjuan": (("q_main",),),  # a row without std_ans is a counted missing_answer drop, not a shape error
}
MCQ_SUFFIXES = (".csv", ".arrow", ".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")
# metadata beside the data: datasets.save_to_disk's state.json / dataset_info.json, an OLMES task's config.json
METADATA_FILES = ("state.json", "dataset_info.json", "config.json")
OLMES_UNCOND_OFFSET = 1_000_000  # OLMES metric_kwargs.uncond_docid_offset: doc ids of the unconditional requests
STEEL_OMITTED = "略"


# ----------------------------------------------------------------------------------------------------------------
# shapes


def canonical_mcq_shape(shape: str) -> str:
    shape = MCQ_ALIASES.get(shape, shape)
    if shape != "auto" and shape not in MCQ_SHAPES:
        raise ValueError(f"unknown MCQ shape '{shape}' (known: auto, {', '.join(MCQ_SHAPES)}, "
                         f"aliases {sorted(MCQ_ALIASES)})")
    return shape


def detect_mcq_shape(record: Any) -> str | None:
    """The shape a record's field names say; None when they fit no MCQ shape."""
    if not isinstance(record, dict):
        return None
    k = set(record)
    if {"doc", "request_type"} <= k:
        return "hellaswag_olmes"
    if "q_main" in k:
        return "wanjuan"
    if {"Question", "Best Answer"} <= k:
        return "truthfulqa"
    for shape in ("mmlu_indexed", "cmmlu", "ceval", "arc", "hellaswag", "mmlu"):  # ceval before its subset mmlu
        if set(MCQ_REQUIRED[shape][0]) <= k:
            return shape
    return None


# ----------------------------------------------------------------------------------------------------------------
# reading files


def expand_mcq_paths(paths: Iterable[str], base: str | os.PathLike | None = None) -> list[Path]:
    """Like ``importers.expand_paths`` with the MCQ suffixes: a folder yields its .csv/.arrow/.json(l)(.gz)/.parquet
    files, sorted, minus the metadata files beside them (:data:`METADATA_FILES`)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(os.path.expanduser(raw))
        if not p.is_absolute() and base is not None:
            p = Path(base) / p
        if not p.is_dir():
            out += importers.expand_paths([str(p)])
            continue
        hits = sorted(h for h in p.rglob("*") if h.is_file() and h.name.endswith(MCQ_SUFFIXES)
                      and h.name not in METADATA_FILES)
        if not hits:
            raise FileNotFoundError(f"{raw}: the folder holds no {'/'.join(MCQ_SUFFIXES)} file")
        out += hits
    return out


def iter_mcq_file(path: str | os.PathLike, shape: str = "auto",
                  lazy: bool = False) -> Iterator[tuple[int, dict | _RecordDrop | importers.RawLine]]:
    """(record index, record or ``_RecordDrop``) for one MCQ file, in place of ``importers.iter_raw``.

    * ``.csv``: one dict per row keyed by the header, plus ``_file`` (the file stem, for the subject). MMLU files have
      no header: the first row counts as a header only when it names a ``question`` column and an ``answer`` /
      ``best answer`` column and is not an MMLU row (six fields ending in a letter A-D); ``shape: mmlu`` forces
      header-less, any other CSV shape forces a header. A row with the wrong number of fields or that the csv module
      cannot parse is a ``malformed_row`` drop naming the line.
    * ``.arrow`` (a ``datasets.save_to_disk`` shard, IPC stream or file) and ``.parquet``: one dict per row.
    * JSON / JSON lines (``.gz`` too): ``importers.iter_raw``; OLMES request files keep the first request of each
      question (the other three choices and the unconditional copies repeat the same ``doc``). ``lazy``: JSON lines
      stay unparsed (``importers.RawLine``) where their text alone shows whether they are a first request
      (:func:`olmes_extra`).
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".csv"):
        yield from _iter_csv(path, canonical_mcq_shape(shape))
    elif name.endswith(".arrow"):
        yield from _iter_arrow(path)
    else:
        yield from _first_request_per_doc(importers.iter_raw(path, lazy))


def is_csv_header(row: list[str]) -> bool:
    """Whether a first CSV row is a header (see :func:`iter_mcq_file`); MMLU's header-less rows are not."""
    cells = [c.strip().lower() for c in row]
    if len(cells) == 6 and cells[-1].upper() in ("A", "B", "C", "D"):
        return False
    return "question" in cells and ("answer" in cells or "best answer" in cells)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ImportShapeError(f"{path}: not UTF-8 (byte {err.start}: {raw[err.start:err.start + 4]!r}); "
                               "re-encode the file") from None


def _iter_csv(path: Path, shape: str) -> Iterator[tuple[int, dict | _RecordDrop]]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), strict=True)
    columns: list[str] | None = None
    i = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield i, _RecordDrop("malformed_row", f"line {reader.line_num}: unparseable CSV ({err})")
            i += 1
            continue
        if not any(c.strip() for c in row):
            continue
        if columns is None:
            header = is_csv_header(row) if shape == "auto" else shape != "mmlu"
            columns = row if header else list(MCQ_REQUIRED["mmlu"][0])
            if header:
                continue
        if len(row) != len(columns):
            yield i, _RecordDrop("malformed_row", f"line {reader.line_num}: {len(row)} fields, expected "
                                                  f"{len(columns)} ({','.join(columns)})")
        else:
            yield i, {**dict(zip(columns, row)), "_file": path.stem}
        i += 1


def _iter_arrow(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with pa.memory_map(str(path)) as source:
        try:
            batches = iter(ipc.open_stream(source))  # datasets.save_to_disk writes the stream format
        except pa.ArrowInvalid:
            source.seek(0)
            batches = iter(ipc.open_file(source).read_all().to_batches())
        i = 0
        for batch in batches:
            for row in batch.to_pylist():
                yield i, row
                i += 1


def _is_extra_request(rec: Any) -> bool:
    """An OLMES request line that repeats a question already read (choice 1-3, or an unconditional request)."""
    if not (isinstance(rec, dict) and "request_type" in rec and isinstance(rec.get("doc"), dict)):
        return False
    doc_id = rec.get("doc_id", 0)
    return rec.get("idx", 0) != 0 or (isinstance(doc_id, int) and doc_id >= OLMES_UNCOND_OFFSET)


def _first_request_per_doc(records: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """The records but OLMES extra requests; a JSON line not parsed yet is parsed only when its text cannot tell."""
    for i, rec in records:
        if isinstance(rec, importers.RawLine):
            extra = olmes_extra(rec.text)
            if extra is None:
                rec = rec.load()
            elif extra:
                continue
        if not _is_extra_request(rec):
            yield i, rec


_JSON_STRING = r'"(?:[^"\\]|\\.)*"'
_OLMES_HEAD = re.compile(r'\{\s*"request_type"\s*:\s*' + _JSON_STRING + r'\s*,\s*"doc"\s*:\s*\{')
_OLMES_TAIL = re.compile(r'"idx"\s*:\s*(\d+)\s*,\s*"task_name"\s*:\s*' + _JSON_STRING
                         + r'\s*,\s*"doc_id"\s*:\s*(\d+)\s*,\s*"native_id"\s*:\s*[^,{}\[\]"]*\s*,\s*"label"\s*:\s*'
                         r'[^,{}\[\]"]*\}\s*$')


def olmes_extra(line: str) -> bool | None:
    """Whether a JSON line is an OLMES extra request (:func:`_is_extra_request`) read from its text, without parsing
    its few kilobytes of few-shot context; None when the text cannot tell (then it is parsed).

    Sound for a valid JSON object: it must open with ``{"request_type": "…", "doc": {`` and close with ``"idx": N,
    "task_name": "…", "doc_id": M, "native_id": …, "label": …}`` (OLMES's own field order). A quote inside a JSON
    string is escaped, so these key patterns cannot match inside one; the first key follows the opening brace and
    the scalar fields before the final brace hold no brace or bracket, so all of them are top-level. A line that
    matches but is not valid JSON is left out as an extra request, not counted as ``invalid_json``."""
    if not _OLMES_HEAD.match(line):
        return None
    tail = _OLMES_TAIL.match(line, max(line.rfind('"idx"'), 0))
    if tail is None:
        return None
    return int(tail[1]) != 0 or int(tail[2]) >= OLMES_UNCOND_OFFSET


# ----------------------------------------------------------------------------------------------------------------
# parsing: one function per shape -> McqQuestion fields (question, options, answer [, explanation, q_type, subject])


def _text(value: Any, field: str) -> str:
    """``importers._text`` (text, numbers, None -> ""), a field of another type being a ``malformed_row`` drop."""
    try:
        return importers._text(value, field)
    except TypeError as err:
        raise _RecordDrop("malformed_row", str(err)) from None


def _subject(r: dict) -> str | None:
    stem = r.get("_file")
    return re.sub(r"_(dev|val|test)$", "", stem) if stem else None


def _lettered(texts: list[Any], field: str) -> dict[str, str]:
    if len(texts) > len(LETTERS):
        raise _RecordDrop("malformed_row", f"field '{field}' holds {len(texts)} options, at most {len(LETTERS)}")
    return {LETTERS[j]: _text(t, f"{field}[{j}]") for j, t in enumerate(texts)}


def _letter_key(value: Any, field: str) -> str:
    key = _text(value, field).strip().upper()
    if not key:
        raise _RecordDrop("missing_answer", f"field '{field}' is empty")
    return key


def _index_key(value: Any, field: str, n: int) -> str:
    """A 0-based answer index (int or digit string) -> its letter."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _RecordDrop("missing_answer", f"field '{field}' is empty")
    try:
        idx = int(str(value).strip())
    except ValueError:
        raise _RecordDrop("answer_not_in_options", f"field '{field}' = {value!r} is not an option index") from None
    if not 0 <= idx < n:
        raise _RecordDrop("answer_not_in_options", f"field '{field}' = {idx} is not an index of the {n} options")
    return LETTERS[idx]


def _abcd(r: dict, q: str, answer: str, explanation: str | None = None) -> dict:
    fields = {"question": _text(r.get(q), q), "options": {L: _text(r.get(L), L) for L in "ABCD"},
              "answer": _letter_key(r.get(answer), answer), "subject": _subject(r)}
    if explanation and r.get(explanation):
        fields["explanation"] = _text(r[explanation], explanation)
    return fields


def _mmlu(r: dict) -> dict:
    return _abcd(r, "question", "answer")


def _mmlu_indexed(r: dict) -> dict:
    options = {LETTERS[j]: _text(r.get(f"choice{j}"), f"choice{j}") for j in range(4)}
    return {"question": _text(r.get("question"), "question"), "options": options,
            "answer": _index_key(r.get("answer"), "answer", 4), "subject": _subject(r)}


def _cmmlu(r: dict) -> dict:
    return _abcd(r, "Question", "Answer")


def _ceval(r: dict) -> dict:
    fields = _abcd(r, "question", "answer", explanation="explanation")
    if fields["subject"]:  # C-Eval ids restart at 0 in every subject file
        fields["id"] = f"{r['_file']}:{r['id']}"
    return fields


def _arc(r: dict) -> dict:
    choices = r.get("choices")
    if not isinstance(choices, dict) or not isinstance(choices.get("text"), list) \
            or not isinstance(choices.get("label"), list) or len(choices["text"]) != len(choices["label"]):
        raise _RecordDrop("malformed_row", "field 'choices' must be {text: [...], label: [...]} of equal length")
    labels = [_text(x, "choices.label").strip().upper() for x in choices["label"]]
    key = _letter_key(r.get("answerKey"), "answerKey")
    if key not in labels:
        raise _RecordDrop("answer_not_in_options", f"answerKey '{key}' is not among the labels {labels}")
    options = _lettered(choices["text"], "choices.text")  # labels 1-4 (some ARC rows) become A-D by position
    return {"question": _text(r.get("question"), "question"), "options": options, "answer": LETTERS[labels.index(key)]}


def _endings(r: dict, question: str, endings: str, label: str) -> dict:
    texts = r.get(endings)
    if not isinstance(texts, list):
        raise _RecordDrop("malformed_row", f"field '{endings}' must be a list of option texts")
    return {"question": _text(r.get(question), question), "options": _lettered(texts, endings),
            "answer": _index_key(r.get(label), label, len(texts))}


def _hellaswag(r: dict) -> dict:
    return _endings(r, "ctx", "endings", "label")


def _hellaswag_olmes(r: dict) -> dict:
    doc = r.get("doc")
    if not isinstance(doc, dict):
        raise _RecordDrop("malformed_row", "field 'doc' must be an object {ind, query, choices, gold}")
    return _endings(doc, "query", "choices", "gold")


def truthfulqa_lists(record: dict) -> dict[str, Any]:
    """A TruthfulQA row's lists, for builders that need more than one correct answer (repair block B, surgical).

    Returns ``{question, best_answer, correct_answers, incorrect_answers, type, category, source}``; the answer lists
    are split on ';' with blanks removed, in file order.
    """

    def split(field: str) -> list[str]:
        return [a.strip() for a in _text(record.get(field), field).split(";") if a.strip()]

    return {"question": _text(record.get("Question"), "Question"), "best_answer": _text(record.get("Best Answer"),
            "Best Answer").strip(), "correct_answers": split("Correct Answers"),
            "incorrect_answers": split("Incorrect Answers"), "type": record.get("Type"),
            "category": record.get("Category"), "source": record.get("Source")}


def _truthfulqa(r: dict) -> dict:
    lists = truthfulqa_lists(r)
    if not lists["best_answer"]:
        raise _RecordDrop("missing_answer", "field 'Best Answer' is empty")
    if not lists["incorrect_answers"]:
        raise _RecordDrop("empty_option", "field 'Incorrect Answers' holds no distractor")
    options = _lettered([lists["best_answer"], *lists["incorrect_answers"]], "answers")
    return {"question": lists["question"], "options": options, "answer": "A", "subject": lists["category"] or None}


def _wanjuan(r: dict) -> dict:
    """Options are the non-empty ``option_a..option_e`` under their own letters (Steel renders ``!= ""`` ones);
    ``std_ans`` may list several letters (``AC``, ``A,C``, ``A、C``), kept sorted without separators."""
    options = {L: _text(r.get(f"option_{L.lower()}"), f"option_{L.lower()}") for L in "ABCDE"}
    options = {L: t for L, t in options.items() if t != ""}
    key = _letter_key(r.get("std_ans"), "std_ans")
    if not re.fullmatch(r"[A-Z](?:[\s,，、;；]*[A-Z])*", key):
        raise _RecordDrop("answer_not_in_options", f"std_ans {key!r} is not option letters")
    letters = "".join(sorted(set(re.findall(r"[A-Z]", key))))
    return {"question": _text(r.get("q_main"), "q_main"), "options": options, "answer": letters,
            "explanation": _text(r.get("answer_detail"), "answer_detail"),
            "q_type": _text(r.get("q_type"), "q_type") or None, "subject": _text(r.get("major"), "major") or None}


PARSERS: dict[str, Callable[[dict], dict]] = {
    "mmlu": _mmlu, "mmlu_indexed": _mmlu_indexed, "cmmlu": _cmmlu, "ceval": _ceval, "arc": _arc,
    "hellaswag": _hellaswag, "hellaswag_olmes": _hellaswag_olmes, "truthfulqa": _truthfulqa, "wanjuan": _wanjuan,
}


def answer_letters(q: McqQuestion) -> list[str]:
    """The answer's letters (one for every shape but WanJuan 多选题)."""
    return list(q.answer)


def _check_question(fields: dict, shape: str) -> None:
    if not fields["options"]:
        raise _RecordDrop("empty_option", "the question has no options")
    blank = [L for L, t in fields["options"].items() if not t.strip()]
    if blank:
        raise _RecordDrop("empty_option", f"option {', '.join(blank)} is empty")
    missing = [a for a in fields["answer"] if a not in fields["options"]]
    if missing:
        raise _RecordDrop("answer_not_in_options", f"answer '{fields['answer']}' is not among the options "
                                                   f"{''.join(fields['options'])}")
    if len(fields["answer"]) > 1 and shape != "wanjuan":
        raise _RecordDrop("answer_not_in_options", f"answer '{fields['answer']}' is not one option letter")


def parse_question(record: dict, shape: str, *, source: str, rec_id: str) -> McqQuestion:
    """One raw record of a known shape -> McqQuestion; raises ``_RecordDrop(reason, detail)`` for bad input."""
    fields = PARSERS[shape](record)
    _check_question(fields, shape)
    fields.setdefault("id", rec_id)
    return McqQuestion(source=source, **fields)


# ----------------------------------------------------------------------------------------------------------------
# shuffling


def shuffle_options(q: McqQuestion, seed: int) -> McqQuestion:
    """The options in a seeded random order, relettered A, B, ... and the answer letter(s) remapped so the answer
    text is unchanged. Seeded by ``seed`` and the question's own text and options (not its id): the same on every
    run, and a question repeated in the source is shuffled the same way each time, so dedup still sees one text."""
    old = list(q.options)
    order = random.Random("\x00".join([str(seed), q.question, *q.options.values()])).sample(old, len(old))
    new_letter = {o: LETTERS[j] for j, o in enumerate(order)}
    options = {LETTERS[j]: q.options[o] for j, o in enumerate(order)}
    answer = "".join(sorted(new_letter[a] for a in q.answer))
    return q.model_copy(update={"options": options, "answer": answer})


# ----------------------------------------------------------------------------------------------------------------
# styles: a registry, one row per style (like LLaMA-Factory's register_template)


@dataclass(frozen=True)
class McqStyle:
    """``render(q) -> (prompt, answer)``; raises ``_RecordDrop`` when the question cannot take this style.

    ``explains``: the answer carries the dataset's explanation, whose text names option letters ("故选B"): such a
    style refuses ``shuffle_options`` (the letters would point at the old order)."""

    name: str
    render: Callable[[McqQuestion], tuple[str, str]]
    doc: str
    explains: bool = False


STYLES: dict[str, McqStyle] = {}


def register_style(name: str, render_fn: Callable[[McqQuestion], tuple[str, str]], doc: str,
                   explains: bool = False) -> McqStyle:
    if name in STYLES:
        raise ValueError(f"MCQ style '{name}' is already registered")
    STYLES[name] = McqStyle(name, render_fn, doc, explains)
    return STYLES[name]


def render(q: McqQuestion, style: str) -> tuple[str, str]:
    """(prompt, answer) of one question in a registered style."""
    if style not in STYLES:
        raise ValueError(f"unknown MCQ style '{style}' (known: {', '.join(STYLES)})")
    return STYLES[style].render(q)


def _single_answer(q: McqQuestion) -> str:
    if len(q.answer) != 1:
        raise FormatRule("multiple_answers", f"answer '{q.answer}': this style needs exactly one answer letter")
    return q.answer


def _steel_choices(q: McqQuestion) -> str:
    """Steel's ``format_example``: ``q_main + "\\n"`` then ``"{L}. {option}\\n"`` for each non-empty option A-D."""
    shown = [L for L in "ABCD" if q.options.get(L, "") != ""]
    hidden = [a for a in q.answer if a not in shown]
    if hidden:
        raise FormatRule("answer_not_in_options", f"answer '{q.answer}': the Steel formats show options A-D only")
    return q.question + "\n" + "".join(f"{L}. {q.options[L]}\n" for L in shown)


def _steel_checked(prompt: str, answer: str) -> tuple[str, str]:
    if STEEL_OMITTED in answer:  # Steel drops every output containing 略 (also 策略, 忽略 ...)
        raise FormatRule("omitted_answer", f"the output contains '{STEEL_OMITTED}'")
    return prompt, answer


def _steel(q: McqQuestion) -> tuple[str, str]:
    """Steel-LLM non-CoT (zhanshijinwat/Steel-LLM:finetune/process_wanjuanexam_data.ipynb, ``format_example``
    with ``cot=False``): instruction ``以下是一道单选题:\\n{choices}请给出答案。\\n`` (always 单选题, ASCII colon),
    output ``{std_ans}。{answer_detail}``; rows whose output contains 略 are dropped (``omitted_answer``)."""
    return _steel_checked(f"以下是一道单选题:\n{_steel_choices(q)}请给出答案。\n", f"{q.answer}。{q.explanation or ''}")


def steel_cot_is_fallback(q: McqQuestion) -> bool:
    """Steel's rule for the non-CoT fallback (empty std_ans or answer_detail under 10 characters), plus: an
    explanation that is nothing but ``故选…`` (empty once stripped) also falls back, so the CoT output never
    states the answer without an explanation before it (Steel would emit a bare ``答案为X`` there)."""
    detail = q.explanation or ""
    return not q.answer or len(detail) < 10 or not re.sub(r"故选.*", "", detail, flags=re.DOTALL).strip()


def _steel_cot(q: McqQuestion) -> tuple[str, str]:
    """Steel-LLM CoT (same notebook, ``cot=True``): output = answer_detail with ``故选.*`` (DOTALL) removed, then
    ``答案为{std_ans}`` appended with no separator; instruction ``以下是一道{q_type}:\\n{choices}请先给出解释再给出
    答案。\\n`` (q_type 单选题 when the source has none). Falls back to :func:`_steel` (see
    :func:`steel_cot_is_fallback`); outputs containing 略 are dropped."""
    if steel_cot_is_fallback(q):
        return _steel(q)
    answer = re.sub(r"故选.*", "", q.explanation or "", flags=re.DOTALL) + f"答案为{q.answer}"
    return _steel_checked(f"以下是一道{q.q_type or '单选题'}:\n{_steel_choices(q)}请先给出解释再给出答案。\n", answer)


def _cmmlu_answer(q: McqQuestion) -> tuple[str, str]:
    """CMMLU answer-only (Steel Exp 3 trains on CMMLU with the letter only): the prompt Steel scores CMMLU with
    (zhanshijinwat/Steel-LLM:eval/eval_CMMLU.py ``eval_chat`` + eval/mp_utils.py ``only_format_choice``):
    ``以下是一道单选题:\\n{question}\\n\\n{L}. {option}\\n…请给出答案。\\n`` with every ``____`` removed;
    output the letter."""
    body = q.question + "\n\n" + "".join(f"{L}. {t}\n" for L, t in q.options.items())
    return f"以下是一道单选题:\n{body.replace('____', '')}请给出答案。\n", _single_answer(q)


def _letter_list(letters: list[str]) -> str:
    return letters[0] if len(letters) == 1 else ", ".join(letters[:-1]) + " and " + letters[-1]


def _english(q: McqQuestion) -> tuple[str, str]:
    """Steel-LLM English MCQ (zhanshijinwat/Steel-LLM:finetune/process_english.ipynb, ``format_choices``):
    ``The following is a multiple-choice question. Please choose the most suitable one among A, B, C and D as the
    answer to this question.\\n\\n{question}\\n`` then ``{L}. {option}\\n`` per option; output ``{L}. {option}``.
    Steel only had four options; other counts name their own letters (``A, B and C``)."""
    letter = _single_answer(q)
    head = ("The following is a multiple-choice question. Please choose the most suitable one among "
            f"{_letter_list(list(q.options))} as the answer to this question.\n\n")
    prompt = head + q.question + "\n" + "".join(f"{L}. {t}\n" for L, t in q.options.items())
    return prompt, f"{letter}. {q.options[letter]}"


def _plain_prompt(q: McqQuestion) -> str:
    return q.question + "\n" + "\n".join(f"{L}. {t}" for L, t in q.options.items())


def _answer_letter(q: McqQuestion) -> tuple[str, str]:
    """MMLU-style letter answer (FF_3.13 repair Block A, surgical single-letter form): lm-eval-harness's MMLU prompt
    ``{question}\\nA. {a}\\nB. {b}…`` with its trailing ``Answer:`` moved into the target, output ``Answer: B``."""
    return _plain_prompt(q), f"Answer: {_single_answer(q)}"


def _letter_explanation(q: McqQuestion) -> tuple[str, str]:
    """The letter, then the explanation: prompt as ``answer_letter``, output ``Answer: B\\n{explanation}``;
    questions without an explanation are dropped (``missing_explanation``)."""
    if not (q.explanation or "").strip():
        raise FormatRule("missing_explanation", "this style needs an explanation")
    return _plain_prompt(q), f"Answer: {_single_answer(q)}\n{q.explanation}"


def _sentence_completion(q: McqQuestion) -> tuple[str, str]:
    """fgpt's HellaSwag-as-MCQ SFT rows (feljost/fgpt:src/fgpt/data/hellaswag_download.py
    ``convert_hellaswag_to_sft``): ``Complete the following sentence:\\n\\n{ctx}\\n\\n`` then ``{L}) {ending}``
    lines joined by ``\\n`` (no trailing newline); output the letter."""
    body = "\n".join(f"{L}) {t}" for L, t in q.options.items())
    return f"Complete the following sentence:\n\n{q.question}\n\n{body}", _single_answer(q)


def _answer_text(q: McqQuestion) -> tuple[str, str]:
    """A factual question answered in words (FF_3.13 repair Block B, TruthfulQA-like): the question alone, output the
    correct option's text (TruthfulQA: its best answer); bound the length with ``max_chars_assistant``."""
    return q.question, q.options[_single_answer(q)]


register_style("steel", _steel, "Steel-LLM WanJuan non-CoT: 以下是一道单选题 … 请给出答案。 -> {X}。{explanation}",
               explains=True)
register_style("steel_cot", _steel_cot, "Steel-LLM WanJuan CoT: explanation without 故选…, then 答案为{X}",
               explains=True)
register_style("cmmlu_answer", _cmmlu_answer, "Steel's CMMLU chat prompt -> the letter")
register_style("english", _english, "Steel-LLM English MCQ: The following is a multiple-choice question… -> {L}. {x}")
register_style("answer_letter", _answer_letter, "question + lettered options -> Answer: {L}")
register_style("letter_explanation", _letter_explanation, "question + lettered options -> Answer: {L}\\n{explanation}",
               explains=True)
register_style("sentence_completion", _sentence_completion, "fgpt HellaSwag: Complete the following sentence: …")
register_style("answer_text", _answer_text, "the question alone -> the correct option's text (factual answers)")


# ----------------------------------------------------------------------------------------------------------------
# the ShapeSets: importers.import_records drives both


MCQ_OPTIONS = {"style": None, "shuffle_options": False, "seed": 0}


def check_mcq_options(options: dict | None) -> dict:
    """Recipe ``options:`` of an MCQ source, defaults filled: ``style`` (required, a key of :data:`STYLES`),
    ``shuffle_options`` (bool, default false), ``seed`` (int, default 0). Raises ValueError naming the bad key."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(MCQ_OPTIONS))
    if unknown:
        raise ValueError(f"options.{unknown[0]}: not an MCQ option (known: {', '.join(MCQ_OPTIONS)})")
    out = {**MCQ_OPTIONS, **options}
    if out["style"] not in STYLES:
        raise ValueError(f"options.style: {out['style']!r} is not an MCQ style (known: {', '.join(STYLES)})")
    if not isinstance(out["shuffle_options"], bool):
        raise ValueError(f"options.shuffle_options: {out['shuffle_options']!r} is not true/false")
    if out["shuffle_options"] and STYLES[out["style"]].explains:
        raise ValueError(f"options.shuffle_options: style {out['style']!r} writes the dataset's explanation, whose "
                         "letters would point at the old option order")
    if not isinstance(out["seed"], int) or isinstance(out["seed"], bool):
        raise ValueError(f"options.seed: {out['seed']!r} is not an integer")
    return out


def convert_question(record: dict, shape: str, *, source: str, rec_id: str, options: dict | None = None,
                     label_field: str | None = None) -> list[McqQuestion]:
    """``ShapeSet.convert`` for the parse layer: [McqQuestion], or [] for a repeated OLMES request line."""
    if _is_extra_request(record):
        return []
    return [parse_question(record, shape, source=source, rec_id=rec_id)]


def question_conversation(q: McqQuestion, options: dict) -> Conversation:
    """One question -> its prompt/answer conversation in ``options`` (already checked by :func:`check_mcq_options`).

    ``metadata``: format, answer and options (after shuffling), answer_text, shuffled, subject, q_type; for
    ``steel_cot`` also ``cot`` (false when the question fell back to the non-CoT form)."""
    if options["shuffle_options"]:
        q = shuffle_options(q, options["seed"])
    prompt, answer = render(q, options["style"])
    meta = {"format": options["style"], "answer": q.answer, "options": dict(q.options),
            "answer_text": [q.options[a] for a in q.answer], "shuffled": options["shuffle_options"],
            "subject": q.subject, "q_type": q.q_type}
    if options["style"] == "steel_cot":
        meta["cot"] = not steel_cot_is_fallback(q)
    return Conversation(messages=[Message(role="user", content=prompt), Message(role="assistant", content=answer)],
                        source=q.source, id=q.id, metadata=meta)


def convert_mcq(record: dict, shape: str, *, source: str, rec_id: str, options: dict | None = None,
                label_field: str | None = None) -> list[Conversation]:
    """``ShapeSet.convert`` for MCQ sources: [Conversation] (user = prompt, assistant = answer)."""
    options = check_mcq_options(options)
    return [question_conversation(q, options)
            for q in convert_question(record, shape, source=source, rec_id=rec_id)]


MCQ_SHAPESET = ShapeSet("MCQ", MCQ_SHAPES, MCQ_REQUIRED, detect_mcq_shape, canonical_mcq_shape, convert_mcq)
QUESTION_SHAPESET = ShapeSet("MCQ", MCQ_SHAPES, MCQ_REQUIRED, detect_mcq_shape, canonical_mcq_shape,
                             convert_question)


def import_questions(path: str | os.PathLike, *, source: str, shape: str = "auto") -> Iterator[McqQuestion | Drop]:
    """Every question of one file as McqQuestion, or a Drop with its reason."""
    path = Path(path)
    yield from importers.import_records(iter_mcq_file(path, shape), where=str(path), source=source, shape=shape,
                                        id_prefix=path.name, shapes=QUESTION_SHAPESET)


def import_mcq_file(path: str | os.PathLike, *, source: str, options: dict, shape: str = "auto"
                    ) -> Iterator[Conversation | Drop]:
    """Every question of one file rendered as a Conversation in ``options['style']``, or a Drop with its reason."""
    path = Path(path)
    yield from importers.import_records(iter_mcq_file(path, shape), where=str(path), source=source, shape=shape,
                                        options=check_mcq_options(options), id_prefix=path.name, shapes=MCQ_SHAPESET)
