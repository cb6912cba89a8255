"""Generic note tables: CSV/TSV, JSON Lines and Parquet files, directories or globs.

Files are read row by row (Parquet in record batches), so an archive of millions of
notes never sits in memory at once, and a bad row costs that row only: each reader
hands the canonicalizer a rejected row, with its number and a reason, instead of
failing the file. Only a file that cannot be read at all is a `SourceError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from autocode.corpus.canonical import RawRow
from autocode.corpus.columns import ColumnMap, rejected
from autocode.corpus.csv_rows import csv_rows
from autocode.corpus.errors import SourceError
from autocode.corpus.files import TableFile, expand_table_paths, list_table_files, warn_unread
from autocode.corpus.jsonl_rows import jsonl_rows
from autocode.corpus.parquet_rows import parquet_rows
from autocode.corpus.quarantine import Reason, Skip

__all__ = ["ColumnMap", "expand_table_paths", "read_table_rows"]


def read_table_rows(
    path: str | Path,
    columns: ColumnMap,
    batch_size: int = 10_000,
    *,
    skip_unreadable_files: bool = False,
    needs_codes_for: str | None = None,
) -> Iterator[RawRow]:
    """Stream raw rows of every file the path names, in file order then row order.

    A file no loader reads is one skipped row (`unread_file`) and a warning. A file
    that cannot be read at all stops the load, unless `skip_unreadable_files`: then it
    is one quarantined row (row 0, naming the file) and the other files are read.
    Rows a file yielded before its corruption was found are kept.
    `needs_codes_for` names the command that needs gold codes: a file without a
    codes column is then an error, not a file of uncoded notes.
    """
    files, unread = list_table_files(path)
    for file in files:
        try:
            yield from _file_rows(file, columns, batch_size, needs_codes_for)
        except SourceError as error:
            if not (skip_unreadable_files and error.unreadable):
                raise
            yield rejected(file.path, 0, Reason.UNREADABLE_FILE, error.problem)
    for other in unread:
        warn_unread(other)
        yield RawRow(str(other), 0, None, None, None, skipped=Skip.UNREAD_FILE)


def _file_rows(
    file: TableFile, columns: ColumnMap, batch_size: int, needs_codes_for: str | None
) -> Iterator[RawRow]:
    if file.kind == "parquet":
        return parquet_rows(file, columns, batch_size, needs_codes_for)
    if file.kind == "jsonl":
        return jsonl_rows(file, columns, needs_codes_for)
    return csv_rows(file, columns, needs_codes_for)
