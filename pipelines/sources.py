"""Sources: one ``SourceSpec`` -> a datatrove reader step yielding ``Document(text, id, metadata)``.

``build_reader(source, limit=None)`` picks the reader for ``source.kind`` and an adapter that maps the kind's
records to documents (one row per kind in ``source_kinds.py``; adapters in ``record_adapters.py``):

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
A path may be a URL on any fsspec filesystem (``s3://bucket/x/*.parquet``, ``hf://datasets/org/name/data``,
``file:///...``): it is listed and read through datatrove's ``DataFolder``, unchanged (credentials and endpoints
come from fsspec's own configuration, e.g. ``FSSPEC_S3_ENDPOINT_URL``, or the AWS / HF environment).

``block`` sources (a built block's documents, decoded; ``pipelines/block_source.py``) read ``.ds`` files, not
records: ``build_reader(source, work_dir=...)`` takes the mix's work folder, where a ``recipe`` source's block is
built first.
"""

from __future__ import annotations

import glob
import os
import posixpath
import re
from typing import Any

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers.base import BaseReader

from shardsmith.schemas.mix_recipe import SourceSpec
from .readers import (
    CheckedTrafilatura,
    SourceError,
    SourceFileNotFoundError,
    StrictCsvReader,
    StrictJsonReader,
    StrictParquetReader,
    check_trafilatura,
)
from .source_kinds import JSON, SOURCE_KINDS, SourceKindRow

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
_FORMATS_BY_SUFFIX = {**{s: "json" for s in JSON}, ".parquet": "parquet", ".csv": "csv"}
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


def is_url(path: str) -> bool:
    """A path on an fsspec filesystem (``s3://``, ``hf://``, ``file://``, ...): listed and read through datatrove's
    ``DataFolder`` (``get_datafolder``), passed to it unchanged."""
    return "://" in path


def _expand_path(source: SourceSpec, pattern: str) -> str:
    expanded = os.path.expanduser(os.path.expandvars(pattern))
    if "$" in expanded and re.search(r"\$\{?[A-Za-z_]", expanded):
        raise SourceFileNotFoundError(
            f"source '{source.name}': path '{pattern}' uses an environment variable that is not set"
        )
    return expanded


def _pattern_root(path: str) -> str:
    """The folder a pattern's files are named relative to: itself for a folder, the static prefix of a glob."""
    if is_url(path):
        return _url_root(path)
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


def _url_root(url: str) -> str:
    """``_pattern_root`` for a URL: the static prefix of a glob, else the URL if it names a folder, else its parent."""
    from datatrove.io import get_datafolder

    if _GLOB_CHARS.search(url):
        proto, rest = url.split("://", 1)
        static = []
        for part in rest.split("/"):
            if _GLOB_CHARS.search(part):
                break
            static.append(part)
        return f"{proto}://{'/'.join(static)}"
    url = url.rstrip("/")
    return url if get_datafolder(url).isdir("") else url.rsplit("/", 1)[0]


def _url_files(source: SourceSpec, pattern: str, url: str, suffixes: tuple[str, ...]) -> list[str]:
    """``list_input_files`` for one URL pattern, through datatrove's ``DataFolder`` (any fsspec filesystem): a file,
    a folder (searched recursively for the kind's suffixes; hidden and ``_`` names skipped) or a glob. Full URLs
    back; an unreachable filesystem or a missing path is a one-line ``SourceFileNotFoundError``."""
    from datatrove.io import get_datafolder

    def wanted(rel: str) -> bool:
        return _wanted(rel, suffixes) and not any(part.startswith(".") for part in rel.split("/")[:-1])

    try:
        root = _url_root(url)
        folder = get_datafolder(root)
        rest = url[len(root):].strip("/")
        if rest:  # a glob below the root, or a file in it
            hits = folder.glob(rest) if _GLOB_CHARS.search(rest) else ([rest] if folder.isfile(rest) else [])
            matched = []
            for hit in hits:
                matched += [f for f in folder.list_files(hit) if wanted(f)] if folder.isdir(hit) else [hit]
        else:  # a folder
            matched = [f for f in folder.list_files() if wanted(f)]
        for rel in matched:
            with folder.open(rel, "rb") as f:
                f.read(1)
    except Exception as err:  # noqa: BLE001 - fsspec backends raise their own (botocore, huggingface_hub) errors
        raise SourceFileNotFoundError(
            f"source '{source.name}': cannot list or read '{pattern}': {type(err).__name__}: {err}".splitlines()[0]
        ) from err
    if not matched:
        raise SourceFileNotFoundError(f"source '{source.name}': '{pattern}' matches no input files")
    return [f"{root.rstrip('/')}/{rel}" for rel in matched]


def list_input_files(source: SourceSpec) -> list[str]:
    """Absolute paths of the source's files, sorted and de-duplicated (full URLs for URL paths: ``is_url``; one
    source's paths are all local or all on one filesystem).

    Each entry of ``source.paths`` may be a file (taken whatever its suffix), a folder (searched recursively for the
    kind's suffixes, compressed or not; hidden and ``_``-prefixed names skipped) or a glob (``**`` allowed; matched
    folders are searched as above). ``$VAR``/``${VAR}`` and ``~`` are expanded. Raises
    ``SourceFileNotFoundError`` (a ``FileNotFoundError`` and a ``SourceError``) naming the pattern when it matches
    nothing, and naming the file when one cannot be opened. ``hf_hub`` sources have no files: ``[]``.
    """
    row = SOURCE_KINDS.get(source.kind)
    if row is None:
        raise SourceError(f"source '{source.name}': unknown kind '{source.kind}'")
    if row.own_reader is not None:
        return row.own_files(source) if row.own_files else []
    suffixes = row.suffixes
    files: set[str] = set()
    remote: set[str] = set()
    for pattern in source.paths:
        path = _expand_path(source, pattern)
        if is_url(path):
            remote.update(_url_files(source, pattern, path, suffixes))
            continue
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
    if files and remote:
        raise SourceError(f"source '{source.name}': paths on different filesystems ({', '.join(source.paths)}); "
                          f"split it into one source per filesystem")
    out = sorted(files)
    for path in out:
        _check_readable(source, path)
    return out or sorted(remote)


def count_input_files(source: SourceSpec) -> int:
    """Number of input files (the unit datatrove splits between tasks). ``hf_hub`` counts as 1 (one stream)."""
    row = SOURCE_KINDS.get(source.kind)
    if row is not None and row.own_reader is not None and row.own_files is None:
        return 1
    return len(list_input_files(source))


def source_root(source: SourceSpec) -> str:
    """The folder ids and shard paths are relative to: the common folder of the path patterns (not of the files
    found, so adding a file does not change the ids of the others)."""
    roots = [_pattern_root(_expand_path(source, p)) for p in source.paths]
    if not roots:
        return os.getcwd()
    protocols = {r.split("://", 1)[0] if is_url(r) else "" for r in roots}
    if len(protocols) > 1:
        raise SourceError(f"source '{source.name}': paths on different filesystems ({', '.join(source.paths)}); "
                          f"split it into one source per filesystem")
    if protocols == {""}:
        return os.path.commonpath(roots)
    proto = protocols.pop()
    return f"{proto}://" + posixpath.commonpath([r.split("://", 1)[1] for r in roots])


def relative_to_root(path: str, root: str) -> str:
    """``path`` (a file ``list_input_files`` returned) relative to ``root`` (``source_root``): local or URL."""
    if is_url(root):
        return posixpath.relpath(path.split("://", 1)[1], root.split("://", 1)[1])
    return os.path.relpath(path, root)


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
    row = _row(source)
    n = _effective_limit(source, limit)
    if row.own_reader is not None:
        return row.own_reader(source, limit=n, work_dir=work_dir)
    files = list_input_files(source)
    root = source_root(source)
    rel = [relative_to_root(f, root) for f in files]
    kwargs: dict[str, Any] = {"files": rel, "limit": n, "adapter": row.adapter, "source_name": source.name,
                              "source_kind": source.kind}
    reader = (row.reader or _FORMAT_READERS[_single_format(source, row, files)])(root, **kwargs)
    if row.configure is not None:
        row.configure(reader, source)
    return reader


_FORMAT_READERS = {"json": StrictJsonReader, "parquet": StrictParquetReader, "csv": StrictCsvReader}


def _row(source: SourceSpec) -> SourceKindRow:
    row = SOURCE_KINDS.get(source.kind)
    if row is None:
        known = ", ".join(sorted(SOURCE_KINDS))
        raise SourceError(f"source '{source.name}': unknown kind '{source.kind}' (known: {known})")
    return row


def _single_format(source: SourceSpec, row: SourceKindRow, files: list[str]) -> str:
    """The one file format of a multi-format kind's files (``json`` for the others); a mix of formats is refused."""
    if not row.multi_format:
        return "json"
    formats = sorted({file_format(source, f) for f in files})
    if len(formats) > 1:
        raise SourceError(
            f"source '{source.name}': mixes file formats ({', '.join(formats)}); split it into one source per format"
        )
    return formats[0]


def build_extractor(source: SourceSpec, *, timeout: float = 5.0) -> PipelineStep | None:
    """The HTML -> text step to put right after the reader (WARC sources), else None.

    Checks now that trafilatura and lxml_html_clean import and work (without lxml_html_clean datatrove reports
    every record as a timeout); the step counts drops by reason in its stats (``dropped_timeout``,
    ``dropped_empty``, ...).
    """
    if not _row(source).extract_html:
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
