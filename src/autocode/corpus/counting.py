"""How many rows a source holds, counted cheaply before a long job reads it.

The count gives progress displays a total (and so a time left). It never decides
anything: the job's own `read` count stays the truth, and a count that would
cost a real pass over the data (MIMIC's joined tables) is simply unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from autocode.corpus.codiesp import codiesp_row_count
from autocode.corpus.csv_rows import csv_rows
from autocode.corpus.errors import SourceError
from autocode.corpus.files import TableFile, list_table_files
from autocode.corpus.load import LoadOptions, detect_format


class ProgressSink(Protocol):
    """Where a job reports its progress: the total once, then rows as they finish."""

    def start(self, total: int | None, done: int = 0) -> None: ...

    def advance(self, rows: int) -> None: ...


def count_rows(path: Path, options: LoadOptions) -> int | None:
    """Rows the loaders will read from `path`; None when unknown or not cheap to know."""
    source_format = detect_format(path) if options.format == "auto" else options.format
    try:
        if source_format == "codiesp":
            splits = list(options.splits) if options.splits else None
            return codiesp_row_count(path, splits, options.language)
        if source_format == "table":
            files, unread = list_table_files(path)
            # An unread file is one skipped row of the job's accounting.
            return sum(_file_rows(file, options) for file in files) + len(unread)
    except (SourceError, OSError, EOFError, pa.ArrowException):
        return None
    return None


def _file_rows(file: TableFile, options: LoadOptions) -> int:
    if file.kind == "parquet":
        return int(pq.ParquetFile(file.path).metadata.num_rows)
    if file.kind == "jsonl":
        return _non_blank_lines(file)
    # CSV quoting decides where a row ends: count what the loader's own reader yields.
    return sum(1 for _ in csv_rows(file, options.columns))


def _non_blank_lines(file: TableFile) -> int:
    count = 0
    with file.open() as stream:
        pending = b""
        while chunk := stream.read(1 << 22):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            count += sum(1 for line in lines if line.strip())
        count += bool(pending.strip())
    return count
