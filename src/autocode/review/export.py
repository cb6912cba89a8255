"""Reviewed notes as a canonical dataset: what `autocode train` reads as a table source.

One Parquet file with the canonical columns `note_id`, `text`, `codes` (the codes after
review), written owner-only since it holds note text, with its SHA-256 so a training run
can record exactly which export it read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from autocode.digests import file_sha256
from autocode.private_files import open_private_binary
from autocode.review.store import ReviewStore

SCHEMA = pa.schema(
    [("note_id", pa.string()), ("text", pa.string()), ("codes", pa.list_(pa.string()))]
)
_BATCH = 1000


@dataclass(frozen=True)
class ExportSummary:
    notes: int
    digest: str  # SHA-256 of the file


def export_reviewed(store: ReviewStore, out: Path) -> ExportSummary:
    """Write every done case's note with its reviewed codes (latest review per note)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    notes = 0
    with open_private_binary(partial) as sink, pq.ParquetWriter(sink, SCHEMA) as writer:
        batch: list[dict[str, object]] = []
        for note in store.export_reviewed():
            batch.append(note)
            if len(batch) >= _BATCH:
                writer.write_table(pa.Table.from_pylist(batch, SCHEMA))
                notes += len(batch)
                batch = []
        if batch or notes == 0:
            writer.write_table(pa.Table.from_pylist(batch, SCHEMA))
            notes += len(batch)
    partial.replace(out)  # readers never see half a file
    return ExportSummary(notes, file_sha256(out))
