"""How many rows a source holds, counted cheaply before a long job reads it.

The count gives progress displays a total (and so a time left). It never decides
anything: the job's own `read` count stays the truth, and a count that would
cost a real pass over the data (MIMIC's joined tables) is simply unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from autocode.corpus.codiesp import codiesp_row_count
from autocode.corpus.errors import SourceError
from autocode.corpus.load import LoadOptions, detect_format
from autocode.corpus.table import TABLE_SUFFIXES, expand_table_paths


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
            return sum(_file_rows(file, options) for file in expand_table_paths(path))
    except (SourceError, OSError, pa.ArrowException, _UncountableError):
        return None
    return None


class _UncountableError(Exception):
    """A file whose rows cannot be counted without reading it as the loader does."""


def _file_rows(path: Path, options: LoadOptions) -> int:
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    if kind == "jsonl":
        return _non_blank_lines(path)
    if kind == "csv":
        return _csv_rows(path, options)
    raise _UncountableError(path)


def _non_blank_lines(path: Path) -> int:
    count = 0
    with pa.input_stream(path, compression="detect") as stream:
        pending = b""
        while chunk := stream.read(1 << 22):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            count += sum(1 for line in lines if line.strip())
        count += bool(pending.strip())
    return count


def _csv_rows(path: Path, options: LoadOptions) -> int:
    # Parsing only the id column keeps quoted newlines inside text from counting as rows.
    table = pa_csv.read_csv(
        pa.input_stream(path, compression="detect"),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            include_columns=[options.columns.id_col],
            column_types={options.columns.id_col: pa.binary()},
        ),
    )
    return int(table.num_rows)
