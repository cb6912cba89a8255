"""Parquet rows, one row group at a time, so that a damaged group costs only its rows.

The footer says how many rows each group holds: the rows of a group that cannot be
decoded are quarantined by number. Without a readable footer (a file cut short loses
it) nothing can be read or counted, and the file is one `unreadable_file` record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from autocode.corpus.canonical import RawRow
from autocode.corpus.columns import ColumnMap, check_columns, raw_row, rejected
from autocode.corpus.errors import SourceError, error_summary
from autocode.corpus.files import TableFile
from autocode.corpus.quarantine import Reason

# A corrupt footer can also hold names that are not UTF-8 (pyarrow decodes them as it opens).
_DECODE_ERRORS = (pa.ArrowException, OSError, UnicodeDecodeError)


def parquet_rows(
    file: TableFile, columns: ColumnMap, batch_size: int, needs_codes_for: str | None = None
) -> Iterator[RawRow]:
    """Raw rows of one file, numbered from 1 across its row groups."""
    try:
        parquet = pq.ParquetFile(file.path)
    except _DECODE_ERRORS as error:
        problem = (
            "unreadable Parquet: footer missing or corrupt (a truncated file?), "
            f"so its rows cannot be counted ({error_summary(error)})"
        )
        raise SourceError(file.path, problem, unreadable=True) from None
    names = parquet.schema_arrow.names
    if not all(name.isprintable() for name in names):
        # No writer names a column with control characters: the footer is damaged.
        problem = "unreadable Parquet: footer corrupt (a column name holds control characters)"
        raise SourceError(file.path, problem, unreadable=True)
    check_columns(file.path, names, columns, needs_codes_for)
    wanted = [name for name in dict.fromkeys(columns.mapped) if name in names]
    first = 1
    for group in range(parquet.metadata.num_row_groups):
        group_rows = parquet.metadata.row_group(group).num_rows
        done = 0
        try:
            for batch in parquet.iter_batches(batch_size, row_groups=[group], columns=wanted):
                for row in _batch_rows(file, batch, first + done, columns):
                    yield row
                    done += 1
        except _DECODE_ERRORS as error:
            last = first + group_rows - 1
            detail = (
                f"row group {group} (rows {first}-{last}) cannot be decoded "
                f"({error_summary(error)}); rows {first + done}-{last} not read"
            )
            for row_number in range(first + done, last + 1):
                yield rejected(file.path, row_number, Reason.UNREADABLE_ROWS, detail)
        first += group_rows


def _batch_rows(
    file: TableFile, batch: pa.RecordBatch, first: int, columns: ColumnMap
) -> Iterator[RawRow]:
    # Strings as bytes: a cell of invalid UTF-8 is its row's problem, not its batch's.
    values = {
        name: _as_bytes(batch.column(index)).to_pylist()
        for index, name in enumerate(batch.schema.names)
    }

    def cell(index: int) -> Callable[[str], object]:
        return lambda name: values[name][index] if name in values else None

    for index in range(batch.num_rows):
        yield raw_row(str(file.path), first + index, cell(index), columns)


def _as_bytes(array: pa.Array) -> pa.Array:
    kind = array.type
    if pa.types.is_string(kind):
        return array.cast(pa.binary())
    if pa.types.is_large_string(kind):
        return array.cast(pa.large_binary())
    if pa.types.is_list(kind) and pa.types.is_string(kind.value_type):
        return array.cast(pa.list_(pa.binary()))
    if pa.types.is_large_list(kind) and pa.types.is_string(kind.value_type):
        return array.cast(pa.large_list(pa.binary()))
    return array
