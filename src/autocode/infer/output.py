"""The batch output: Parquet part files of decisions, written atomically.

A part file appears under its final name only once complete (written to a
temporary name, then renamed), so its presence marks the part as done.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from autocode.infer.routing import Decision
from autocode.private_files import make_private_dir, open_private_binary, open_private_text

SPAN = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("weight", pa.float64())])
PREDICTION = pa.struct(
    [
        ("code", pa.string()),
        ("probability", pa.float64()),
        ("accepted", pa.bool_()),
        ("predicted", pa.bool_()),
        ("evidence", pa.list_(SPAN)),
    ]
)
OUTPUT_SCHEMA = pa.schema(
    [
        pa.field("note_id", pa.string(), nullable=False),
        pa.field("codes", pa.list_(pa.string())),
        pa.field("predictions", pa.list_(PREDICTION)),
        pa.field("route", pa.string()),
        pa.field("reasons", pa.list_(pa.string())),
        pa.field("model_uri", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("coded_at", pa.timestamp("us", tz="UTC")),
    ]
)


def part_name(index: int) -> str:
    return f"part-{index:06d}.parquet"


QUARANTINE_DIR = "_quarantine"  # '_' prefix: Parquet readers skip it when reading the parts


def quarantine_name(index: int) -> str:
    return f"{QUARANTINE_DIR}/part-{index:06d}.jsonl"


def decisions_table(
    note_ids: Sequence[str],
    decisions: Sequence[Decision],
    model_uri: str,
    model_version: str,
    coded_at: datetime,
) -> pa.Table:
    rows = [
        {
            "note_id": note_id,
            "codes": decision.codes,
            "predictions": [
                {**prediction, "evidence": prediction.get("evidence", [])}
                for prediction in decision.predictions
            ],
            "route": decision.route,
            "reasons": decision.reasons,
            "model_uri": model_uri,
            "model_version": model_version,
            "coded_at": coded_at,
        }
        for note_id, decision in zip(note_ids, decisions, strict=True)
    ]
    return pa.Table.from_pylist(rows, schema=OUTPUT_SCHEMA)


def write_atomically(table: pa.Table, target: Path) -> None:
    """Owner-only: a part holds note ids, and its quarantine file source row details."""
    temporary = target.with_name(f".{target.name}.tmp")
    with open_private_binary(temporary) as file:
        pq.write_table(table, file)
    temporary.replace(target)


def write_text_atomically(text: str, target: Path) -> None:
    make_private_dir(target.parent)
    temporary = target.with_name(f".{target.name}.tmp")
    with open_private_text(temporary) as file:
        file.write(text)
    temporary.replace(target)
