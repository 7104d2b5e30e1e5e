"""The two small datatrove steps the weighted mix needs and datatrove lacks.

datatrove has no mixer (see curation-anchors §1): it can sample at a rate, but not hit a token share exactly
or repeat documents for whole extra epochs. So the mix counts tokens per document once (``DocumentLedger``),
plans the selection outside the pipeline (``planner.py``), and replays the plan (``PlanSelector``).
"""

from __future__ import annotations

import os

from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep


class DocumentLedger(PipelineStep):
    """Terminal step: write (id, tokens, content hash) of every document to ``<folder>/<rank>.parquet``.

    Needs ``metadata["token_count"]`` from datatrove's TokensCounter earlier in the pipeline. The content hash
    lets the planner split by text, so exact duplicates under different ids cannot straddle train/validation.
    """

    name = "📒 Ledger"
    type = "📊 - STATS"

    def __init__(self, output_folder: DataFolderLike):
        super().__init__()
        self.output_folder = get_datafolder(output_folder)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        import pyarrow as pa
        import pyarrow.parquet as pq

        import hashlib

        ids, tokens, content = [], [], []
        for doc in data:
            with self.track_time():
                if "token_count" not in doc.metadata:
                    raise ValueError(f"document {doc.id!r} has no token_count: put a TokensCounter before the ledger")
                ids.append(str(doc.id))
                tokens.append(int(doc.metadata["token_count"]))
                content.append(hashlib.blake2b(doc.text.encode("utf-8"), digest_size=12).hexdigest())
                self.stat_update("documents")
                self.stat_update("tokens", value=tokens[-1])
        table = pa.table(
            {
                "id": pa.array(ids, pa.string()),
                "tokens": pa.array(tokens, pa.int64()),
                "content": pa.array(content, pa.string()),
            }
        )
        # temp name then rename: a crashed rank never leaves a ledger that looks complete
        final = f"{rank:05d}.parquet"
        tmp = f".{final}.tmp-{os.getpid()}"
        with self.output_folder.open(tmp, "wb") as f:
            pq.write_table(table, f)
        self.output_folder.mv(tmp, final)
        return
        yield  # a generator, like every datatrove step


class PlanSelector(PipelineStep):
    """Yield each planned document of one split once, with ``metadata["copies"]`` = how often the plan uses it.

    The plan is a parquet file with columns ``id``, ``copies`` (>= 1) and ``split``; documents not in it are
    skipped (not sampled). ``ExpandCopies`` after it makes the copies; a text export in between sees each
    document once. Copies keep their original's split, so no text is in both train and validation.
    """

    name = "🎯 Plan selector"
    type = "🎲 - SAMPLER"

    def __init__(self, plan_file: str, split: str):
        super().__init__()
        self.plan_file = plan_file
        self.split = split

    def _load(self) -> dict[str, int]:
        import pyarrow.parquet as pq

        table = pq.read_table(self.plan_file, columns=["id", "copies", "split"])
        ids, copies, splits = (table.column(c).to_pylist() for c in ("id", "copies", "split"))
        return {i: c for i, c, s in zip(ids, copies, splits) if s == self.split}

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        plan = self._load()
        for doc in data:
            self.stat_update("seen")
            copies = plan.get(str(doc.id), 0)
            if not copies:
                continue
            doc.metadata["copies"] = copies
            self.stat_update("selected")
            yield doc


class ExpandCopies(PipelineStep):
    """Yield each document ``metadata["copies"]`` times, one after the other (upsampled copies get ``#eN`` ids and
    ``metadata["epoch"] = N``; the first copy keeps its id, epoch 0)."""

    name = "🔁 Expand copies"
    type = "🎲 - SAMPLER"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for doc in data:
            copies = int(doc.metadata.pop("copies", 1))
            base_id = doc.id
            for epoch in range(copies):
                if epoch:
                    doc = doc.__class__(text=doc.text, id=f"{base_id}#e{epoch}", metadata=dict(doc.metadata))
                doc.metadata["epoch"] = epoch
                self.stat_update("copies")
                yield doc


TEXT_COLUMNS = ("id", "text", "url", "source", "split", "copies", "metadata")


def text_writer(output_folder: DataFolderLike, source: str, split: str):
    """datatrove's ParquetWriter for the text export: one row per kept document of ``split``, with fixed columns.

    Columns: id, text, url (None when the source has none), source, split, copies (how many times the shards hold
    it: > 1 for upsampled documents) and metadata (the document's other metadata as a JSON object string, so
    sources with different fields share one schema). Files: ``<split>-<rank>.parquet`` (no size rotation: a file
    holds one task's share of one source). Put it between ``PlanSelector`` and ``ExpandCopies``.
    """
    import json

    import pyarrow as pa
    from datatrove.pipeline.writers import ParquetWriter

    schema = pa.schema(
        [("id", pa.string()), ("text", pa.string()), ("url", pa.string()), ("source", pa.string()),
         ("split", pa.string()), ("copies", pa.int64()), ("metadata", pa.string())]
    )

    def adapter(self, doc) -> dict:
        meta = dict(doc.metadata)
        copies = int(meta.pop("copies", 1))
        url = meta.pop("url", None)
        meta.pop("source", None)  # a column of its own: the recipe's source name
        return {
            "id": str(doc.id), "text": doc.text, "url": None if url is None else str(url),
            "source": source, "split": split, "copies": copies,
            "metadata": json.dumps(meta, ensure_ascii=False, default=str, sort_keys=True),
        }

    return ParquetWriter(
        output_folder, output_filename=f"{split}-${{rank}}.parquet", adapter=adapter, schema=schema, max_file_size=-1
    )
