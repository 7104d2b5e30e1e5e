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
    """Yield each planned document of one split as many times as the plan says (upsampled copies get ``#eN`` ids).

    The plan is a parquet file with columns ``id``, ``copies`` (>= 1) and ``split``; documents not in it are
    skipped (not sampled). Copies keep their original's split, so no text is in both train and validation.
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
            base_id = doc.id
            for epoch in range(copies):
                if epoch:
                    doc = doc.__class__(text=doc.text, id=f"{base_id}#e{epoch}", metadata=dict(doc.metadata))
                doc.metadata["epoch"] = epoch
                self.stat_update("selected")
                yield doc
