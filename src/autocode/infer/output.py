"""The batch output: Parquet part files of decisions (`records.to_arrow`), written atomically.

A part file appears under its final name only once complete (written to a
temporary name, then renamed), so its presence marks the part as done.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from autocode.private_files import make_private_dir, open_private_binary, open_private_text


def part_name(index: int) -> str:
    return f"part-{index:06d}.parquet"


QUARANTINE_DIR = "_quarantine"  # '_' prefix: Parquet readers skip it when reading the parts


def quarantine_name(index: int) -> str:
    return f"{QUARANTINE_DIR}/part-{index:06d}.jsonl"


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
