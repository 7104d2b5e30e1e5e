"""Source kinds: one row per ``SourceKind`` (``schemas/mix_recipe.py``) — what a folder yields, how records are read
and adapted into documents, and which named filter chain ``filters: default`` gives the kind.

Adding a kind is one :class:`SourceKindRow` in :data:`SOURCE_KINDS` plus its name in the schema's ``SourceKind``
``Literal`` (the schema may not import ``pipelines/``; ``tests/test_sources.py`` checks the two name the same kinds).
``sources.py`` reads the rows: file discovery, the reader, the HTML extractor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers.base import BaseReader

from shardsmith.schemas.mix_recipe import SourceSpec
from . import record_adapters as adapt
from .block_source import adapt_block, block_input_files, build_block_reader
from .readers import SourceHFReader, SourceWarcReader, TextFileReader, TextLinesReader

JSON = (".jsonl", ".json", ".ndjson")
PARQUET = (".parquet",)
CSV = (".csv",)
TXT = (".txt",)
WARC = (".warc", ".arc", ".wet")


def _hf_hub_reader(source: SourceSpec, limit: int, work_dir: str | None = None) -> BaseReader:
    """A hub dataset, streamed (no local files): ``dataset``, ``config``, ``split``, ``text_field``/``id_field``."""
    options: dict[str, Any] = {"split": source.split}
    if source.config:
        options["name"] = source.config
    return SourceHFReader(
        source.dataset, dataset_options=options, streaming=True, limit=limit,
        text_key=source.text_field or "text", id_key=source.id_field or "id",
        source_name=source.name, source_kind=source.kind,
    )  # fmt: skip


def _generic_fields(reader: BaseReader, source: SourceSpec) -> None:
    """kind generic: the text/id fields are the source's ``text_field``/``id_field``; an id field that is named
    must be present in every record."""
    reader.text_key = source.text_field or "text"
    reader.id_key = source.id_field or "id"
    reader.id_required = source.id_field is not None


@dataclass(frozen=True)
class SourceKindRow:
    """One source kind.

    ``suffixes``: the file suffixes taken from a folder (optionally compressed; explicit files and globs are taken
    whatever their suffix).  ``adapter``: record -> ``{text, id, metadata}`` (``record_adapters.py``).  ``reader``:
    the datatrove reader class for the kind's files; None: chosen by file format (JSON Lines, parquet, csv).
    ``multi_format``: the files may be any of json/parquet/csv (told by suffix or the source's ``format``; one
    format per source); otherwise JSON.  ``configure``: sets the source's options on the built reader.
    ``default_chain``: the named filter chain ``filters: default`` resolves to (``none``: not filtered).
    ``extract_html``: the records are HTML (WARC); the trafilatura step follows the reader.  ``own_reader``: kinds
    that are not read from files by record (``hf_hub``: a hub stream; ``block``: a built block's ``.ds`` files),
    called as ``own_reader(source, limit, work_dir)``; ``own_files``: their input files (None: ``[]``, one stream).
    """

    name: str
    suffixes: tuple[str, ...] = ()
    adapter: Callable | None = None
    reader: type[BaseReader] | None = None
    multi_format: bool = False
    configure: Callable[[BaseReader, SourceSpec], None] | None = None
    default_chain: str = "web"
    extract_html: bool = False
    own_reader: Callable[..., BaseReader | PipelineStep] | None = None
    own_files: Callable[[SourceSpec], list[str]] | None = None


SOURCE_KINDS: dict[str, SourceKindRow] = {
    row.name: row
    for row in (
        SourceKindRow("fineweb", PARQUET + CSV + JSON, adapt.adapt_fineweb, multi_format=True),
        SourceKindRow("c4", JSON, adapt.adapt_text_record),
        SourceKindRow("dolma", JSON, adapt.adapt_text_record),
        SourceKindRow("dclm", JSON, adapt.adapt_text_record),
        SourceKindRow("wikipedia", JSON, adapt.adapt_text_record, default_chain="encyclopedia"),
        SourceKindRow("wikipedia_lines", TXT, adapt.adapt_wikipedia_lines, TextLinesReader,
                      default_chain="encyclopedia"),
        SourceKindRow("wikipedia_zh", JSON, adapt.adapt_wikipedia_zh, default_chain="encyclopedia"),
        SourceKindRow("news_folder", TXT, adapt.adapt_news_file, TextFileReader, default_chain="news"),
        SourceKindRow("news_jsonl", JSON, adapt.adapt_news_jsonl, default_chain="news"),
        SourceKindRow("skypile", JSON, adapt.adapt_text_record),
        SourceKindRow("wanjuan", JSON, adapt.adapt_wanjuan),
        SourceKindRow("baidu_baike", JSON, adapt.adapt_baidu_baike, default_chain="encyclopedia"),
        SourceKindRow("zhihu", PARQUET + JSON, adapt.adapt_zhihu, multi_format=True),
        SourceKindRow("wudao", JSON, adapt.adapt_wudao),
        SourceKindRow("warc", WARC, adapt.adapt_warc, SourceWarcReader, extract_html=True),
        SourceKindRow("generic", PARQUET + CSV + JSON, adapt.adapt_generic, multi_format=True,
                      configure=_generic_fields),
        SourceKindRow("hf_hub", own_reader=_hf_hub_reader),
        # a built block's conversations passed the block's own filters; the web chains' line rules are written for
        # scraped pages
        SourceKindRow("block", (".ds",), adapt_block, default_chain="none", own_reader=build_block_reader,
                      own_files=block_input_files),
    )
}  # fmt: skip
