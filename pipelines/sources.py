"""Sources: one ``SourceSpec`` -> a datatrove reader step yielding ``Document(text, id, metadata)``.

``build_reader(source, limit=None)`` picks the reader for ``source.kind`` (see ``SourceKind`` in
``schemas/mix_recipe.py``) and an adapter that maps the kind's records to documents:

- ``metadata["source"]`` is the source name and ``metadata["kind"]`` its kind; a record's own ``source``/``kind``
  fields are kept as ``record_source``/``record_kind``. Every other useful field is kept (url, dump,
  language_score, score/int_score, timestamp/date, title, ...); a nested ``metadata`` object is merged in.
- ids: the record's own id when it has one (``id``; Zhihu ``answer_id``; WuDao ``uniqueKey``; the WARC record
  id), else ``"{source}/{file path relative to the source's root}/{index}"`` (0-based line or record index;
  0 for one-document-per-file sources). Stable across runs for the same paths.
- strict: a malformed line or a record without its text field raises ``SourceError`` naming the file and the line;
  empty or whitespace text is kept (filters drop it later and count it).

``build_extractor(source)`` returns the HTML -> text step for WARC sources (None for the others), to be inserted
right after the reader. ``list_input_files``/``count_input_files`` expand the paths (files, folders, globs).

``block`` sources (a built block's documents, decoded; ``pipelines/block_source.py``) read ``.ds`` files, not
records: ``build_reader(source, work_dir=...)`` takes the mix's work folder, where a ``recipe`` source's block is
built first.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any, Callable

import orjson
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers.base import BaseReader

from shardsmith.schemas.mix_recipe import SourceSpec
from .block_source import adapt_block, block_input_files, build_block_reader
from .readers import (
    CheckedTrafilatura,
    RecordError,
    SourceError,
    SourceFileNotFoundError,
    SourceHFReader,
    SourceWarcReader,
    StrictCsvReader,
    StrictJsonReader,
    StrictParquetReader,
    TextFileReader,
    TextLinesReader,
    check_trafilatura,
    missing_field,
    rename_reserved,
)

__all__ = [
    "SourceError",
    "SourceFileNotFoundError",
    "build_reader",
    "build_extractor",
    "list_input_files",
    "count_input_files",
    "source_root",
    "iter_documents",
    "file_format",
]

# -- file discovery ------------------------------------------------------------------------------------------------

_COMPRESSIONS = (".gz", ".zst", ".zstd", ".bz2", ".xz", ".lzma")
_JSON = (".jsonl", ".json", ".ndjson")
_PARQUET = (".parquet",)
_CSV = (".csv",)
_TXT = (".txt",)
_WARC = (".warc", ".arc", ".wet")

# suffixes picked up when a path is a folder (explicit files and globs are taken whatever their suffix)
_FOLDER_SUFFIXES: dict[str, tuple[str, ...]] = {
    "fineweb": _PARQUET + _CSV + _JSON,
    "c4": _JSON,
    "dolma": _JSON,
    "dclm": _JSON,
    "wikipedia": _JSON,
    "wikipedia_lines": _TXT,
    "wikipedia_zh": _JSON,
    "news_folder": _TXT,
    "news_jsonl": _JSON,
    "skypile": _JSON,
    "wanjuan": _JSON,
    "baidu_baike": _JSON,
    "zhihu": _PARQUET + _JSON,
    "wudao": _JSON,
    "warc": _WARC,
    "generic": _PARQUET + _CSV + _JSON,
    "block": (".ds",),
}
_FORMATS_BY_SUFFIX = {**{s: "json" for s in _JSON}, ".parquet": "parquet", ".csv": "csv"}
_GLOB_CHARS = re.compile(r"[*?\[]")


def _strip_compression(name: str) -> str:
    lower = name.lower()
    for ext in _COMPRESSIONS:
        if lower.endswith(ext):
            return lower[: -len(ext)]
    return lower


def _wanted(path: str, suffixes: tuple[str, ...]) -> bool:
    name = os.path.basename(path)
    if name.startswith(".") or name.startswith("_"):  # .DS_Store, _SUCCESS, .crc ...
        return False
    return _strip_compression(name).endswith(suffixes)


def _expand_path(source: SourceSpec, pattern: str) -> str:
    if "://" in pattern:
        raise SourceError(
            f"source '{source.name}': path '{pattern}' is a URL; only local paths are supported "
            f"(use kind 'hf_hub' for Hugging Face datasets)"
        )
    expanded = os.path.expanduser(os.path.expandvars(pattern))
    if "$" in expanded and re.search(r"\$\{?[A-Za-z_]", expanded):
        raise SourceFileNotFoundError(
            f"source '{source.name}': path '{pattern}' uses an environment variable that is not set"
        )
    return expanded


def _pattern_root(path: str) -> str:
    """The folder a pattern's files are named relative to: itself for a folder, the static prefix of a glob."""
    if _GLOB_CHARS.search(path):
        parts = path.split(os.sep)
        static = []
        for part in parts:
            if _GLOB_CHARS.search(part):
                break
            static.append(part)
        root = os.sep.join(static) or (os.sep if path.startswith(os.sep) else ".")
        return os.path.abspath(root)
    path = os.path.abspath(path)
    return path if os.path.isdir(path) else os.path.dirname(path)


def _walk(folder: str, suffixes: tuple[str, ...]) -> list[str]:
    def fail(err: OSError) -> None:
        raise SourceFileNotFoundError(f"cannot list folder {err.filename}: {err.strerror}") from err

    found = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=fail, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(os.path.join(dirpath, f) for f in filenames if _wanted(f, suffixes))
    return found


def _check_readable(source: SourceSpec, path: str) -> None:
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        raise SourceFileNotFoundError(
            f"source '{source.name}': cannot read {path}: {e.strerror or e}"
        ) from e


def list_input_files(source: SourceSpec) -> list[str]:
    """Absolute paths of the source's files, sorted and de-duplicated.

    Each entry of ``source.paths`` may be a file (taken whatever its suffix), a folder (searched recursively for the
    kind's suffixes, compressed or not; hidden and ``_``-prefixed names skipped) or a glob (``**`` allowed; matched
    folders are searched as above). ``$VAR``/``${VAR}`` and ``~`` are expanded. Raises
    ``SourceFileNotFoundError`` (a ``FileNotFoundError`` and a ``SourceError``) naming the pattern when it matches
    nothing, and naming the file when one cannot be opened. ``hf_hub`` sources have no files: ``[]``.
    """
    if source.kind == "hf_hub":
        return []
    if source.kind == "block":
        return block_input_files(source)
    suffixes = _FOLDER_SUFFIXES.get(source.kind)
    if suffixes is None:
        raise SourceError(f"source '{source.name}': unknown kind '{source.kind}'")
    files: set[str] = set()
    for pattern in source.paths:
        path = _expand_path(source, pattern)
        if _GLOB_CHARS.search(path):
            matched = []
            for hit in glob.glob(path, recursive=True):
                if os.path.isdir(hit):
                    matched.extend(_walk(hit, suffixes))
                elif os.path.isfile(hit):
                    matched.append(hit)
        elif os.path.isdir(path):
            matched = _walk(path, suffixes)
        elif os.path.isfile(path):
            matched = [path]
        elif os.path.lexists(path):
            raise SourceFileNotFoundError(f"source '{source.name}': path '{pattern}' is neither a file nor a folder")
        else:
            raise SourceFileNotFoundError(f"source '{source.name}': path '{pattern}' does not exist")
        if not matched:
            what = "folder" if os.path.isdir(path) else "pattern"
            raise SourceFileNotFoundError(
                f"source '{source.name}': {what} '{pattern}' matches no input files"
                + (f" (looked for {', '.join(suffixes)}, optionally compressed)" if what == "folder" else "")
            )
        files.update(os.path.abspath(m) for m in matched)
    out = sorted(files)
    for path in out:
        _check_readable(source, path)
    return out


def count_input_files(source: SourceSpec) -> int:
    """Number of input files (the unit datatrove splits between tasks). ``hf_hub`` counts as 1 (one stream)."""
    if source.kind == "hf_hub":
        return 1
    return len(list_input_files(source))


def source_root(source: SourceSpec) -> str:
    """The folder ids and shard paths are relative to: the common folder of the path patterns (not of the files
    found, so adding a file does not change the ids of the others)."""
    roots = [_pattern_root(_expand_path(source, p)) for p in source.paths]
    return os.path.commonpath(roots) if roots else os.getcwd()


def file_format(source: SourceSpec, path: str) -> str:
    """``json`` (JSON Lines or a JSON array), ``parquet`` or ``csv`` for one file of a multi-format source."""
    if source.format:
        return "json" if source.format in ("json", "jsonl") else source.format
    name = _strip_compression(os.path.basename(path))
    for suffix, fmt in _FORMATS_BY_SUFFIX.items():
        if name.endswith(suffix):
            return fmt
    fix = "set `format` (jsonl, json, parquet or csv)" if source.kind == "generic" else "use .jsonl/.parquet/.csv"
    raise SourceError(f"source '{source.name}': cannot tell the format of {path} from its name; {fix}")


# -- record adapters (datatrove adapter signature: (reader, data, path, id_in_file) -> {text, id, metadata}) --------


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


_ADAPTERS: dict[str, Callable] = {
    "fineweb": adapt_fineweb,
    "c4": adapt_text_record,
    "dolma": adapt_text_record,
    "dclm": adapt_text_record,
    "wikipedia": adapt_text_record,
    "wikipedia_lines": adapt_wikipedia_lines,
    "wikipedia_zh": adapt_wikipedia_zh,
    "news_folder": adapt_news_file,
    "news_jsonl": adapt_news_jsonl,
    "skypile": adapt_text_record,
    "wanjuan": adapt_wanjuan,
    "baidu_baike": adapt_baidu_baike,
    "zhihu": adapt_zhihu,
    "wudao": adapt_wudao,
    "warc": adapt_warc,
    "generic": adapt_generic,
    "block": adapt_block,
}
_MULTI_FORMAT = {"fineweb", "zhihu", "generic"}


# -- readers -------------------------------------------------------------------------------------------------------


def _effective_limit(source: SourceSpec, limit: int | None) -> int:
    limits = [n for n in (limit, source.limit) if n is not None and n >= 0]
    return min(limits) if limits else -1


def build_reader(source: SourceSpec, *, limit: int | None = None, work_dir: str | None = None) -> BaseReader:
    """The datatrove reader step for ``source``. ``limit`` (and ``source.limit``; the smaller wins, -1/None: all) is
    datatrove's, per task: the mix runs a source with a limit as one task, so ``source.limit`` is the total read
    (the first N documents in file order). Files are listed (and checked readable) now; records are checked as
    they are read. ``work_dir``: where a ``block`` source with a ``recipe`` builds its block (the mix's work
    folder)."""
    kind = source.kind
    common = {"source_name": source.name, "source_kind": kind}
    n = _effective_limit(source, limit)
    if kind == "block":
        return build_block_reader(source, limit=n, work_dir=work_dir)
    if kind == "hf_hub":
        options: dict[str, Any] = {"split": source.split}
        if source.config:
            options["name"] = source.config
        return SourceHFReader(
            source.dataset, dataset_options=options, streaming=True, limit=n,
            text_key=source.text_field or "text", id_key=source.id_field or "id", **common,
        )
    if kind not in _ADAPTERS:
        known = ", ".join([*sorted(_ADAPTERS), "hf_hub"])
        raise SourceError(f"source '{source.name}': unknown kind '{kind}' (known: {known})")
    files = list_input_files(source)
    root = source_root(source)
    rel = [os.path.relpath(f, root) for f in files]
    kwargs: dict[str, Any] = {"files": rel, "limit": n, "adapter": _ADAPTERS[kind], **common}
    if kind == "generic":
        kwargs["text_key"] = source.text_field or "text"
        kwargs["id_key"] = source.id_field or "id"
    if kind == "wikipedia_lines":
        return TextLinesReader(root, **kwargs)
    if kind == "news_folder":
        return TextFileReader(root, **kwargs)
    if kind == "warc":
        return SourceWarcReader(root, **kwargs)
    fmt = "json"
    if kind in _MULTI_FORMAT:
        formats = sorted({file_format(source, f) for f in files})
        if len(formats) > 1:
            raise SourceError(
                f"source '{source.name}': mixes file formats ({', '.join(formats)}); "
                f"split it into one source per format"
            )
        fmt = formats[0]
    if fmt == "parquet":
        reader = StrictParquetReader(root, **kwargs)
    elif fmt == "csv":
        reader = StrictCsvReader(root, **kwargs)
    else:
        reader = StrictJsonReader(root, **kwargs)
    if kind == "generic":
        reader.id_required = source.id_field is not None
    return reader


def build_extractor(source: SourceSpec, *, timeout: float = 5.0) -> PipelineStep | None:
    """The HTML -> text step to put right after the reader (WARC sources), else None.

    Checks now that trafilatura and lxml_html_clean import and work (without lxml_html_clean datatrove reports
    every record as a timeout); the step counts drops by reason in its stats (``dropped_timeout``,
    ``dropped_empty``, ...).
    """
    if source.kind != "warc":
        return None
    try:
        check_trafilatura()
    except SourceError as e:
        raise SourceError(f"source '{source.name}': {e}") from e.__cause__
    return CheckedTrafilatura(timeout=timeout, source_name=source.name)


def iter_documents(
    source: SourceSpec, *, limit: int | None = None, rank: int = 0, world_size: int = 1, extract: bool = True
):
    """Read ``source`` in this process (one task's share): reader, then the extractor for WARC sources."""
    reader = build_reader(source, limit=limit)
    docs = reader.run(None, rank, world_size)
    extractor = build_extractor(source) if extract else None
    return extractor.run(docs, rank, world_size) if extractor is not None else docs
