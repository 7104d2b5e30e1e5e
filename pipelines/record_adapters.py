"""Record adapters: one function per source kind mapping a record to ``{text, id, metadata}``.

datatrove's adapter signature ``(reader, data, path, id_in_file) -> dict``; the reader sets ``metadata["source"]``
and ``metadata["kind"]``.  Contracts (ids, metadata, strictness) are stated in ``sources.py``; each kind's row in
``source_kinds.py`` names its adapter.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from .readers import RecordError, missing_field, rename_reserved



def _text(data: dict, field: str) -> str:
    if field not in data:
        raise missing_field(data, field)
    value = data[field]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"field '{field}' is {type(value).__name__}, expected a string")
    return value


def _opt_str(data: dict, field: str) -> str:
    value = data.get(field)
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _rest(data: dict, *used: str) -> dict:
    """The record's other fields as metadata; a nested ``metadata`` object (dict or JSON string) is merged in."""
    out: dict[str, Any] = {}
    nested = data.get("metadata")
    if isinstance(nested, str):
        try:
            nested = orjson.loads(nested)
        except orjson.JSONDecodeError:
            pass
    if isinstance(nested, dict):
        out.update(rename_reserved(nested))
    elif nested is not None:
        out["metadata"] = nested
    out.update(rename_reserved({k: v for k, v in data.items() if k not in used and k != "metadata"}))
    return out


def _join(title: str, body: str) -> str:
    """title + blank line + body, without repeating a title the body already starts with."""
    title, body = title.strip(), body.strip()
    if not title:
        return body
    if not body:
        return title
    if body.startswith(title):
        return body
    return f"{title}\n\n{body}"


def _own_id(data: dict, field: str) -> str | None:
    value = data.get(field)
    return None if value is None or value == "" else str(value)


def _as_number(value: Any, kind: type) -> Any:
    if isinstance(value, str):
        try:
            return kind(float(value)) if kind is int else kind(value)
        except ValueError:
            return value
    return value


_FINEWEB_NUMBERS = {"language_score": float, "score": float, "int_score": int, "token_count": int}


def adapt_fineweb(self, data: dict, path: str, idx: int) -> dict:
    text = _text(data, "text")
    metadata = _rest(data, "text", "id")
    for key, kind in _FINEWEB_NUMBERS.items():  # csv exports carry numbers as strings
        if key in metadata:
            metadata[key] = _as_number(metadata[key], kind)
    return {"text": text, "id": _own_id(data, "id"), "metadata": metadata}


def adapt_text_record(self, data: dict, path: str, idx: int) -> dict:
    """c4, dolma, dclm, wikipedia, skypile: ``text`` + optional ``id`` + everything else as metadata."""
    return {"text": _text(data, "text"), "id": _own_id(data, "id"), "metadata": _rest(data, "text", "id")}


def adapt_wikipedia_lines(self, data: dict, path: str, idx: int) -> dict:
    return {"text": data["text"], "id": None, "metadata": {}}


def adapt_wikipedia_zh(self, data: dict, path: str, idx: int) -> dict:
    return {"text": _text(data, "completion"), "id": _own_id(data, "id"), "metadata": _rest(data, "completion", "id")}


def adapt_news_file(self, data: dict, path: str, idx: int) -> dict:
    """Headline line, then the body: text = headline + blank line + body; category = the parent folder's name."""
    content = data["content"].replace("\r\n", "\n").replace("\r", "\n")
    headline, _, body = content.strip().partition("\n")
    headline, body = headline.strip(), body.strip()
    text = f"{headline}\n\n{body}" if body else headline
    category = os.path.basename(os.path.dirname(data["path"]))
    return {"text": text, "id": None, "metadata": {"title": headline, "category": category}}


def adapt_news_jsonl(self, data: dict, path: str, idx: int) -> dict:
    body = _text(data, "text")
    title = _opt_str(data, "title")
    text = _join(title, body) if title else body
    return {"text": text, "id": _own_id(data, "id"), "metadata": _rest(data, "text", "id")}


def adapt_wanjuan(self, data: dict, path: str, idx: int) -> dict:
    return {"text": _text(data, "content"), "id": _own_id(data, "id"), "metadata": _rest(data, "content", "id")}


def adapt_baidu_baike(self, data: dict, path: str, idx: int) -> dict:
    """title, summary, then each section's title and content, separated by blank lines."""
    if not any(k in data for k in ("title", "summary", "sections")):
        raise RecordError(f"none of the fields 'title', 'summary', 'sections' (fields found: {sorted(data)})")
    parts = [_opt_str(data, "title").strip(), _opt_str(data, "summary").strip()]
    sections = data.get("sections") or []
    if not isinstance(sections, list):
        raise RecordError(f"field 'sections' is {type(sections).__name__}, expected a list of {{title, content}}")
    for section in sections:
        if isinstance(section, dict):
            heading, content = _opt_str(section, "title").strip(), _opt_str(section, "content").strip()
        else:
            heading, content = "", _opt_str({"c": section}, "c").strip()
        if content:
            parts.append(f"{heading}\n{content}" if heading else content)
    text = "\n\n".join(p for p in parts if p)
    return {"text": text, "id": _own_id(data, "id"), "metadata": _rest(data, "title", "summary", "sections", "id") | {
        "title": _opt_str(data, "title")}}


def adapt_zhihu(self, data: dict, path: str, idx: int) -> dict:
    """Question (INSTRUCTION) + blank line + answer (RESPONSE); METADATA's JSON (url, ids, upvotes...) kept."""
    question, answer = _text(data, "INSTRUCTION").strip(), _text(data, "RESPONSE").strip()
    text = f"{question}\n\n{answer}" if question and answer else question or answer
    metadata: dict[str, Any] = {"title": question}
    raw = data.get("METADATA")
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raw = {"zhihu_metadata": raw}
    if isinstance(raw, dict):
        for key, value in raw.items():
            if key.endswith("_id") and isinstance(value, float) and value.is_integer():
                value = int(value)  # the dataset stores ids as floats
            metadata[key] = value
    if "SOURCE" in data:
        metadata["record_source"] = data["SOURCE"]
    metadata.update(_rest(data, "INSTRUCTION", "RESPONSE", "SOURCE", "METADATA"))
    answer_id = metadata.get("answer_id")
    return {"text": text, "id": str(answer_id) if isinstance(answer_id, (int, str)) and answer_id != "" else None,
            "metadata": metadata}


def adapt_wudao(self, data: dict, path: str, idx: int) -> dict:
    content = _text(data, "content")
    title = _opt_str(data, "title")
    return {"text": _join(title, content) if title else content, "id": _own_id(data, "uniqueKey"),
            "metadata": _rest(data, "content", "uniqueKey")}


def adapt_warc(self, data: dict, path: str, idx: int) -> dict:
    return {"text": data["text"], "id": data.get("id"), "metadata": _rest(data, "text", "id")}


def adapt_generic(self, data: dict, path: str, idx: int) -> dict:
    """``text_key``/``id_key`` come from the source's ``text_field``/``id_field`` (id: ``id`` when unset)."""
    if self.id_key not in data and getattr(self, "id_required", False):
        raise missing_field(data, self.id_key)
    return {"text": _text(data, self.text_key), "id": _own_id(data, self.id_key),
            "metadata": _rest(data, self.text_key, self.id_key)}
