"""datatrove reader steps that shardsmith needs and datatrove 0.10.1 lacks or makes too lenient.

Every reader here is a datatrove ``BaseDiskReader`` subclass (``JsonlReader``, ``CsvReader``, ``ParquetReader``,
``WarcReader`` where one fits) sharing one mixin, :class:`SourceReaderMixin`, which:

- reads an explicit, sorted list of files (relative to one folder, the reader's ``data_folder``) and gives task
  ``rank`` the files ``files[rank::world_size]``, as datatrove's own ``DataFolder.get_shard`` does;
- turns every record into a ``Document`` through a datatrove-style ``adapter(self, data, path, id_in_file)``;
- keeps documents whose text is empty or whitespace (datatrove's base reader drops them silently; here the
  filters drop them later and count them) and counts them as ``empty_text`` in the reader's stats;
- forces ``metadata["source"]`` (the source name) and ``metadata["kind"]``, and gives records without an id of
  their own the id ``"{source}/{relative file path}/{index}"`` (index: 0-based line for line formats, 0-based
  record/row index otherwise);
- raises :class:`SourceError` naming the file and the 1-based line (or record/row) for a malformed line, a record
  missing its text field (with the fields it has), or a file that cannot be read. datatrove's JsonlReader only
  logs a warning and skips such lines.

``limit`` is datatrove's: per task (rank).
"""

from __future__ import annotations

import csv
import sys
import zlib
from typing import Iterable, Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.extractors.base import ExtractorSandbox
from datatrove.pipeline.readers import CSVReader as CsvReader
from datatrove.pipeline.readers import HuggingFaceDatasetReader, JsonlReader, ParquetReader, WarcReader
from datatrove.pipeline.readers.base import BaseDiskReader
from datatrove.utils.logging import logger
from datatrove.utils.typeshelper import StatHints

__all__ = [
    "SourceError",
    "SourceFileNotFoundError",
    "RecordError",
    "SourceReaderMixin",
    "StrictJsonReader",
    "StrictCsvReader",
    "StrictParquetReader",
    "TextLinesReader",
    "TextFileReader",
    "SourceWarcReader",
    "SourceHFReader",
    "CheckedTrafilatura",
]

_BOM = b"\xef\xbb\xbf"
# errors that mean "this file cannot be read" (bad gzip, truncated stream, permissions, ...)
_IO_ERRORS = (OSError, EOFError, zlib.error)


class SourceError(ValueError):
    """A source that cannot be read: the message names the file and, where it applies, the line or record."""


class SourceFileNotFoundError(SourceError, FileNotFoundError):
    """A source path that matches no file, or a file that cannot be opened."""


class RecordError(Exception):
    """Raised by an adapter for an unusable record; the reader re-raises it as SourceError with file and line."""


def missing_field(data: dict, field: str) -> RecordError:
    return RecordError(f"missing field '{field}' (fields found: {sorted(map(str, data))})")


class SourceReaderMixin:
    """Shared behaviour of shardsmith's readers; put it first in the bases, before the datatrove reader class."""

    source_name: str = "source"
    source_kind: str = "generic"
    files: list[str]

    def _init_source(self, source_name: str, source_kind: str, files: Iterable[str]) -> None:
        self.source_name = source_name
        self.source_kind = source_kind
        self.files = sorted(files)

    # -- sharding -------------------------------------------------------------------------------------------------
    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        shard = self.files[rank::world_size]
        if not shard:
            logger.warning(f"source '{self.source_name}': no input files for rank {rank} of {world_size}")
        self._log_limit_scope(rank, world_size)
        for doc in self.read_files_shard(shard):
            self.update_doc_stats(doc)
            yield doc

    # -- records -> documents -------------------------------------------------------------------------------------
    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int | str) -> Document:
        parsed = self.adapter(data, source_file, id_in_file)
        text = parsed.get("text")
        if text is None:
            text = ""
        if not text.strip():
            self.stat_update("empty_text")
        doc_id = parsed.get("id")
        if doc_id is None or doc_id == "":
            doc_id = f"{self.source_name}/{source_file}/{id_in_file}"
        metadata = dict(self.default_metadata or {})
        metadata.update(parsed.get("metadata") or {})
        metadata["source"] = self.source_name
        metadata["kind"] = self.source_kind
        if getattr(self, "add_file_path", True):
            metadata.setdefault("file_path", self.data_folder.resolve_paths(source_file))
        return Document(text=text, id=str(doc_id), metadata=metadata)

    def _path(self, filepath: str) -> str:
        return self.data_folder.resolve_paths(filepath)

    def _unreadable(self, filepath: str, err: BaseException, where: str = "") -> SourceError:
        return SourceError(
            f"source '{self.source_name}': cannot read {self._path(filepath)}{where}: {type(err).__name__}: {err}"
        )


def _split_lines(f) -> Iterator[bytes]:
    """Binary lines (without the newline), BOM stripped from the first one."""
    first = True
    for raw in f:
        if first:
            first = False
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
        yield raw.rstrip(b"\r\n")


class StrictJsonReader(SourceReaderMixin, JsonlReader):
    """JSON Lines, or a JSON array of objects (detected from the first non-blank character), any compression.

    Blank lines are skipped (their line numbers still count). A malformed line, a line that is not a JSON object or
    an adapter's RecordError raises SourceError naming the file and the 1-based line number.
    """

    name = "🐿 Jsonl (strict)"

    def __init__(self, data_folder, *, files: list[str], source_name: str, source_kind: str, **kwargs):
        super().__init__(data_folder, **kwargs)
        self._init_source(source_name, source_kind, files)

    def read_file(self, filepath: str) -> DocumentsPipeline:
        import orjson

        path = self._path(filepath)
        lineno = 0
        try:
            with self.data_folder.open(filepath, "rb", compression=self.compression) as f:
                lines = _split_lines(f)
                head: list[bytes] = []
                for line in lines:  # find the first non-blank line to tell JSON Lines from a JSON array
                    head.append(line)
                    if line.strip():
                        break
                if head and head[-1].lstrip().startswith(b"["):
                    yield from self._read_array(filepath, b"\n".join(head) + b"\n" + f.read())
                    return
                for lineno, line in enumerate(_chain(head, lines), 1):
                    if not line.strip():
                        continue
                    with self.track_time():
                        try:
                            record = orjson.loads(line)
                        except orjson.JSONDecodeError as e:
                            raise SourceError(
                                f"source '{self.source_name}': {path}, line {lineno}: not valid JSON ({e}); "
                                f"expected one JSON object per line or a JSON array: {_snippet(line)}"
                            ) from None
                        if not isinstance(record, dict):
                            raise SourceError(
                                f"source '{self.source_name}': {path}, line {lineno}: expected a JSON object, "
                                f"got {type(record).__name__}: {_snippet(line)}"
                            )
                        try:
                            document = self.get_document_from_dict(record, filepath, lineno - 1)
                        except RecordError as e:
                            raise SourceError(f"source '{self.source_name}': {path}, line {lineno}: {e}") from None
                    yield document
        except _IO_ERRORS as e:
            raise self._unreadable(filepath, e, f" (after line {lineno})" if lineno else "") from e

    def _read_array(self, filepath: str, blob: bytes) -> DocumentsPipeline:
        import orjson

        path = self._path(filepath)
        try:
            records = orjson.loads(blob)
        except orjson.JSONDecodeError as e:
            raise SourceError(
                f"source '{self.source_name}': {path}, line {e.lineno} column {e.colno}: not valid JSON ({e.msg})"
            ) from None
        if not isinstance(records, list):
            raise SourceError(f"source '{self.source_name}': {path}: expected a JSON array of objects")
        del blob
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise SourceError(
                    f"source '{self.source_name}': {path}, record {i + 1} of the JSON array: expected a JSON "
                    f"object, got {type(record).__name__}"
                )
            with self.track_time():
                try:
                    document = self.get_document_from_dict(record, filepath, i)
                except RecordError as e:
                    raise SourceError(
                        f"source '{self.source_name}': {path}, record {i + 1} of the JSON array: {e}"
                    ) from None
            yield document


def _chain(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from head
    yield from rest


def _snippet(line: bytes, n: int = 80) -> str:
    text = line.decode("utf-8", errors="replace")
    return repr(text[:n] + ("..." if len(text) > n else ""))


class StrictCsvReader(SourceReaderMixin, CsvReader):
    """CSV with a header row (UTF-8, quoted multi-line fields allowed, no field size limit).

    A row with more or fewer fields than the header, or a csv parse error, raises SourceError naming the file,
    the 1-based data row and its line.
    """

    name = "🔢 Csv (strict)"

    def __init__(self, data_folder, *, files: list[str], source_name: str, source_kind: str, **kwargs):
        super().__init__(data_folder, **kwargs)
        self._init_source(source_name, source_kind, files)
        self.add_file_path = True

    def read_file(self, filepath: str) -> DocumentsPipeline:
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # the default 128 KiB is smaller than long web pages
        path = self._path(filepath)
        row = 0
        try:
            with self.data_folder.open(
                filepath, "rt", compression=self.compression, encoding="utf-8-sig", newline=""
            ) as f:
                reader = csv.DictReader(f)
                try:
                    for row, record in enumerate(reader, 1):
                        where = f"{path}, row {row} (line {reader.line_num})"
                        if None in record:
                            raise SourceError(
                                f"source '{self.source_name}': {where}: {len(reader.fieldnames) + len(record[None])}"
                                f" fields, the header has {len(reader.fieldnames)}"
                            )
                        if None in record.values():
                            raise SourceError(
                                f"source '{self.source_name}': {where}: "
                                f"{sum(v is not None for v in record.values())} fields, the header has "
                                f"{len(reader.fieldnames)}"
                            )
                        with self.track_time():
                            try:
                                document = self.get_document_from_dict(record, filepath, row - 1)
                            except RecordError as e:
                                raise SourceError(f"source '{self.source_name}': {where}: {e}") from None
                        yield document
                except csv.Error as e:
                    raise SourceError(
                        f"source '{self.source_name}': {path}, line {reader.line_num}: malformed CSV ({e})"
                    ) from None
        except UnicodeDecodeError as e:
            raise SourceError(
                f"source '{self.source_name}': {path}, after data row {row}: not UTF-8 ({e})"
            ) from None
        except _IO_ERRORS as e:
            raise self._unreadable(filepath, e) from e


class StrictParquetReader(SourceReaderMixin, ParquetReader):
    """Parquet, all columns; an adapter's RecordError raises SourceError naming the file and the 1-based row."""

    name = "📒 Parquet (strict)"

    def __init__(self, data_folder, *, files: list[str], source_name: str, source_kind: str, **kwargs):
        super().__init__(data_folder, **kwargs)
        self._init_source(source_name, source_kind, files)
        self.add_file_path = True

    def read_file(self, filepath: str) -> DocumentsPipeline:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self._path(filepath)
        row = 0
        try:
            with self.data_folder.open(filepath, "rb") as f, pq.ParquetFile(f) as pqf:
                for batch in pqf.iter_batches(batch_size=self.batch_size):
                    documents = []
                    with self.track_time("batch"):
                        for record in batch.to_pylist():
                            try:
                                documents.append(self.get_document_from_dict(record, filepath, row))
                            except RecordError as e:
                                raise SourceError(
                                    f"source '{self.source_name}': {path}, row {row + 1}: {e}"
                                ) from None
                            row += 1
                    yield from documents
        except (pa.ArrowException, *_IO_ERRORS) as e:
            raise self._unreadable(filepath, e, f" (after row {row})" if row else "") from e


class _PlainTextReader(SourceReaderMixin, BaseDiskReader):
    """Base of the readers of plain (optionally compressed) text files."""

    def __init__(self, data_folder, *, files: list[str], source_name: str, source_kind: str, compression="infer",
                 **kwargs):
        super().__init__(data_folder, **kwargs)
        self.compression = compression
        self._init_source(source_name, source_kind, files)


class TextLinesReader(_PlainTextReader):
    """Plain text, one document per non-blank line (UTF-8, any compression); ``data = {"text": line}``."""

    name = "📜 Text lines"

    def read_file(self, filepath: str) -> DocumentsPipeline:
        path = self._path(filepath)
        lineno = 0
        try:
            with self.data_folder.open(filepath, "rb", compression=self.compression) as f:
                for lineno, raw in enumerate(_split_lines(f), 1):
                    if not raw.strip():
                        continue
                    with self.track_time():
                        try:
                            line = raw.decode("utf-8")
                        except UnicodeDecodeError as e:
                            raise SourceError(
                                f"source '{self.source_name}': {path}, line {lineno}: not UTF-8 ({e})"
                            ) from None
                        try:
                            document = self.get_document_from_dict({"text": line}, filepath, lineno - 1)
                        except RecordError as e:
                            raise SourceError(f"source '{self.source_name}': {path}, line {lineno}: {e}") from None
                    yield document
        except _IO_ERRORS as e:
            raise self._unreadable(filepath, e, f" (after line {lineno})" if lineno else "") from e


class TextFileReader(_PlainTextReader):
    """One document per file (UTF-8); ``data = {"content": whole file, "path": absolute path}``, index 0."""

    name = "📄 Text files"

    def read_file(self, filepath: str) -> DocumentsPipeline:
        path = self._path(filepath)
        try:
            with self.data_folder.open(filepath, "rb", compression=self.compression) as f:
                raw = f.read()
        except _IO_ERRORS as e:
            raise self._unreadable(filepath, e) from e
        if raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise SourceError(
                f"source '{self.source_name}': {path}, line {line}: not UTF-8 ({e}); re-encode the file as UTF-8"
            ) from None
        with self.track_time():
            try:
                document = self.get_document_from_dict({"content": content, "path": path}, filepath, 0)
            except RecordError as e:
                raise SourceError(f"source '{self.source_name}': {path}: {e}") from None
        yield document


class SourceWarcReader(SourceReaderMixin, WarcReader):
    """datatrove's WarcReader (HTML responses / WET conversions; text = raw HTML, for an extractor to clean).

    Records that are not HTML responses are skipped and counted as ``warc_records_skipped``.
    """

    name = "🕷 Warc (source)"

    def __init__(self, data_folder, *, files: list[str], source_name: str, source_kind: str, **kwargs):
        super().__init__(data_folder, **kwargs)
        self._init_source(source_name, source_kind, files)
        self.add_file_path = True

    def read_file(self, filepath: str) -> DocumentsPipeline:
        from warcio.archiveiterator import ArchiveIterator
        from warcio.exceptions import ArchiveLoadFailed

        ri = -1
        try:
            with self.data_folder.open(filepath, "rb", compression=self.compression) as f:
                for ri, record in enumerate(ArchiveIterator(f)):
                    with self.track_time():
                        extracted = process_warc_record(record)
                        if not extracted:
                            self.stat_update("warc_records_skipped")
                            continue
                        try:
                            document = self.get_document_from_dict(extracted, filepath, ri)
                        except RecordError as e:
                            raise SourceError(
                                f"source '{self.source_name}': {self._path(filepath)}, WARC record {ri + 1}: {e}"
                            ) from None
                    yield document
        except (ArchiveLoadFailed, *_IO_ERRORS) as e:
            raise self._unreadable(filepath, e, f" (after WARC record {ri + 1})" if ri >= 0 else "") from e


_HTML_TYPES = ("text/html", "application/xhtml+xml")


def process_warc_record(record) -> dict | None:
    """datatrove's ``process_record``, but for records without ``WARC-Identified-Payload-Type`` (wget, older
    crawls) the HTTP ``Content-Type`` header is trusted before libmagic sniffing, which calls some HTML pages
    ``application/javascript`` (2 of the 37 responses in the dolma wget sample)."""
    from datatrove.pipeline.readers.warc import process_record

    if record.rec_type == "response" and record.rec_headers.get("WARC-Identified-Payload-Type") is None:
        declared = (record.http_headers.get_header("Content-Type") or "") if record.http_headers else ""
        if declared.split(";")[0].strip().lower() in _HTML_TYPES:
            record.rec_headers.add_header("WARC-Identified-Payload-Type", "text/html")
    return process_record(record)


class SourceHFReader(HuggingFaceDatasetReader):
    """datatrove's HuggingFaceDatasetReader with shardsmith's metadata, strict text field and a clear error when
    the dataset cannot be loaded (offline, unknown name, wrong config/split)."""

    name = "🤗 HuggingFace (source)"

    def __init__(self, dataset: str, *, source_name: str, source_kind: str = "hf_hub", **kwargs):
        super().__init__(dataset, **kwargs)
        self.source_name = source_name
        self.source_kind = source_kind

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int | str) -> Document:
        if self.text_key not in data:
            raise SourceError(
                f"source '{self.source_name}': dataset '{self.dataset}', row {id_in_file}: "
                f"missing field '{self.text_key}' (fields found: {sorted(map(str, data))})"
            )
        text = data.pop(self.text_key)
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise SourceError(
                f"source '{self.source_name}': dataset '{self.dataset}', row {id_in_file}: field "
                f"'{self.text_key}' is {type(text).__name__}, expected a string"
            )
        if not text.strip():
            self.stat_update("empty_text")
        own_id = data.pop(self.id_key, None)
        metadata = dict(self.default_metadata or {})
        metadata.update(rename_reserved(data))
        metadata["source"] = self.source_name
        metadata["kind"] = self.source_kind
        metadata.setdefault("dataset", self.dataset)
        doc_id = own_id if own_id not in (None, "") else f"{self.source_name}/{id_in_file}"
        return Document(text=text, id=str(doc_id), metadata=metadata)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        try:
            yield from super().run(data, rank, world_size)
        except SourceError:
            raise
        except Exception as e:
            options = ", ".join(f"{k}={v!r}" for k, v in self.dataset_options.items())
            raise SourceError(
                f"source '{self.source_name}': cannot stream Hugging Face dataset '{self.dataset}' ({options}): "
                f"{type(e).__name__}: {e}. kind 'hf_hub' needs network access to the Hub (is HF_HUB_OFFLINE set?) "
                f"and an existing dataset/config/split; for local copies use kind 'generic' with paths."
            ) from e


def rename_reserved(data: dict) -> dict:
    """A record's own ``source``/``kind`` fields move to ``record_source``/``record_kind`` (ours take the names)."""
    out = {}
    for key, value in data.items():
        out[f"record_{key}" if key in ("source", "kind") else key] = value
    return out


# -- WARC extraction ---------------------------------------------------------------------------------------------


def check_trafilatura() -> None:
    """Fail loudly where datatrove fails silently: without ``lxml_html_clean`` trafilatura cannot be imported,
    the extractor's worker process dies at start-up and every record is reported as a timeout."""
    try:
        import lxml_html_clean  # noqa: F401
        import trafilatura
    except ImportError as e:
        raise SourceError(
            f"WARC text extraction needs trafilatura and lxml_html_clean ({type(e).__name__}: {e}); "
            f"install them with `pip install trafilatura lxml_html_clean`. Without them datatrove drops every "
            f"record as an extraction timeout."
        ) from e
    paragraph = "<p>The river valley was settled by farmers who grew wheat and barley along its banks.</p>"
    probe = trafilatura.extract(
        f"<html><head><title>Probe</title></head><body><article>{paragraph * 6}</article></body></html>",
        favor_precision=False,
    )
    if not probe:
        raise SourceError("trafilatura is installed but extracted nothing from a trivial page; check its version")


class CheckedTrafilatura(Trafilatura):
    """datatrove's Trafilatura extractor that checks its dependencies before the first record and counts every
    drop by reason: ``dropped_timeout``, ``dropped_broken_process``, ``dropped_clean_error``, ``dropped_empty``
    (besides datatrove's ``total``/``extracted``/``forwarded``/``dropped``).

    If the first ``fail_after`` records all fail (timeout/crash/error, not just empty output), extraction is broken
    rather than the pages being bad, and the step raises SourceError instead of silently dropping everything.
    """

    name = "⛏ Trafilatura (checked)"

    def __init__(self, *, timeout: float = 5.0, fail_after: int = 50, source_name: str | None = None, **kwargs):
        super().__init__(timeout=timeout, **kwargs)
        self.fail_after = fail_after
        self.source_name = source_name

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        check_trafilatura()  # imports trafilatura here, so the forked extraction worker has it already
        failures_before_first_success = 0
        succeeded = False
        with ExtractorSandbox(timeout=self.timeout, warmup_text="") as extractor:
            for doc in data:
                self.stat_update(StatHints.total)
                reason = None
                with self.track_time():
                    try:
                        doc.text = extractor.process_document(doc.text, self.extract) or ""
                        self.stat_update("extracted")
                    except TimeoutError:
                        reason = "timeout"
                    except EOFError:
                        reason = "broken_process"
                    except Exception as e:  # an error inside trafilatura for this page
                        reason = "clean_error"
                        if not self._warned_error:
                            self._warned_error = True
                            logger.warning(f"extraction error on {doc.id}: {type(e).__name__}: {e} (shown once)")
                if reason is None and not doc.text.strip():
                    reason = "empty"
                if reason is not None:
                    self.stat_update(StatHints.dropped, f"dropped_{reason}")
                    if reason != "empty" and not succeeded:
                        failures_before_first_success += 1
                        if failures_before_first_success >= self.fail_after:
                            raise SourceError(
                                f"source '{self.source_name}': text extraction failed on the first "
                                f"{failures_before_first_success} records ({reason}); the extractor is broken, "
                                f"not the pages (timeout={self.timeout}s)"
                            )
                    continue
                succeeded = True
                self.stat_update(StatHints.forwarded)
                self.update_doc_stats(doc)
                yield doc

