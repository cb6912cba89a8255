"""Generic note tables: CSV, JSONL and Parquet files, directories or globs.

Files are streamed in record batches (pyarrow), so an archive of millions of
notes never sits in memory at once. Text columns are read as bytes where the
format allows, so one row with broken UTF-8 is quarantined instead of
failing the whole file.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from autocode.corpus.canonical import RawRow
from autocode.corpus.errors import SourceError
from autocode.corpus.quarantine import Reason
from autocode.corpus.schema import (
    CODES,
    ENCOUNTER_ID,
    NOTE_ID,
    PATIENT_ID,
    SPLIT,
    TEXT,
)

TABLE_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class ColumnMap:
    """Which source columns hold the canonical fields."""

    id_col: str = NOTE_ID
    text_col: str = TEXT
    codes_col: str = CODES
    patient_col: str = PATIENT_ID
    encounter_col: str = ENCOUNTER_ID
    split_col: str = SPLIT

    @property
    def required(self) -> tuple[str, str, str]:
        return (self.id_col, self.text_col, self.codes_col)


def expand_table_paths(path: str | Path) -> list[Path]:
    """Files named by a file path, a directory (recursively) or a glob, sorted."""
    text = str(path)
    if any(char in text for char in "*?["):
        candidates = [Path(p) for p in glob.glob(text, recursive=True)]
    elif Path(text).is_dir():
        candidates = [p for p in Path(text).rglob("*") if p.is_file()]
    elif Path(text).is_file():
        return [Path(text)]
    else:
        raise SourceError(text, "no such file or directory")
    files = sorted(p for p in candidates if p.suffix.lower() in TABLE_SUFFIXES)
    if not files:
        raise SourceError(text, f"no {', '.join(TABLE_SUFFIXES)} files found")
    return files


def read_table_rows(
    paths: list[Path],
    columns: ColumnMap,
    batch_size: int = 10_000,
    *,
    skip_unreadable_files: bool = False,
) -> Iterator[RawRow]:
    """Stream raw rows from every file, in file order then row order (1-based rows).

    A corrupt file stops the load, unless `skip_unreadable_files`: then it becomes
    one quarantined row (row 0, naming the file) and the other files are read.
    Rows a file yielded before its corruption was found are kept.
    """
    for path in paths:
        try:
            yield from _file_rows(path, columns, batch_size)
        except SourceError as error:
            if not (skip_unreadable_files and error.unreadable):
                raise
            yield RawRow(
                str(path), 0, None, None, None, rejected=(Reason.UNREADABLE_FILE, error.problem)
            )


def _file_rows(path: Path, columns: ColumnMap, batch_size: int) -> Iterator[RawRow]:
    kind = TABLE_SUFFIXES[path.suffix.lower()]
    if kind == "jsonl":
        yield from _jsonl_rows(path, columns)
        return
    batches = (
        _parquet_batches(path, batch_size)
        if kind == "parquet"
        else _csv_batches(path, columns, batch_size)
    )
    yield from _batch_rows(path, batches, columns)


def _batch_rows(
    path: Path, batches: Iterator[pa.RecordBatch], columns: ColumnMap
) -> Iterator[RawRow]:
    row_number = 0
    for batch in batches:
        names = batch.schema.names
        _require_columns(path, names, columns)
        # Only the mapped columns are converted; other columns may repeat names freely.
        values = {
            name: batch.column(names.index(name)).to_pylist()
            for name in set(_mapped(columns)) & set(names)
        }
        for index in range(batch.num_rows):
            row_number += 1
            yield _raw_row(str(path), row_number, values, index, columns)


def _mapped(columns: ColumnMap) -> tuple[str, ...]:
    return (
        columns.id_col,
        columns.text_col,
        columns.codes_col,
        columns.patient_col,
        columns.encounter_col,
        columns.split_col,
    )


def _raw_row(
    source: str, row: int, values: dict[str, list[object]], index: int, columns: ColumnMap
) -> RawRow:
    def get(name: str) -> object:
        column = values.get(name)
        return None if column is None else column[index]

    return RawRow(
        source=source,
        row=row,
        note_id=get(columns.id_col),
        text=get(columns.text_col),
        codes=get(columns.codes_col),
        patient_id=get(columns.patient_col),
        encounter_id=get(columns.encounter_col),
        split=get(columns.split_col),
    )


def _require_columns(path: Path, names: list[str], columns: ColumnMap) -> None:
    for column in columns.required:
        if column not in names:
            raise SourceError(path, f"missing required column {column!r} (has {names})")
    for column in set(_mapped(columns)):
        if names.count(column) > 1:
            raise SourceError(path, f"column {column!r} appears {names.count(column)} times")


def _parquet_batches(path: Path, batch_size: int) -> Iterator[pa.RecordBatch]:
    try:
        parquet_file = pq.ParquetFile(path)
        yield from parquet_file.iter_batches(batch_size=batch_size)
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(
            path, f"unreadable Parquet ({_first_line(error)})", unreadable=True
        ) from None


def _csv_batches(path: Path, columns: ColumnMap, batch_size: int) -> Iterator[pa.RecordBatch]:
    # Text as binary: a row with invalid UTF-8 is quarantined, not fatal to the file.
    # Ids and codes as strings: "00123" must not become the integer 123.
    column_types = {columns.text_col: pa.binary()}
    for name in (columns.id_col, columns.codes_col, columns.patient_col, columns.encounter_col):
        column_types[name] = pa.string()
    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=max(1 << 20, batch_size * 512)),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(column_types=column_types),
        )
        yield from reader
    except (pa.ArrowInvalid, OSError) as error:
        raise SourceError(path, f"unreadable CSV ({_first_line(error)})", unreadable=True) from None


def _jsonl_rows(path: Path, columns: ColumnMap) -> Iterator[RawRow]:
    seen_an_object = False
    with path.open("rb") as handle:
        for row_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = _json_row(path, row_number, line, columns, first_object=not seen_an_object)
            seen_an_object = seen_an_object or row.rejected is None
            yield row


def _json_row(
    path: Path, row_number: int, line: bytes, columns: ColumnMap, *, first_object: bool
) -> RawRow:
    """One JSONL line; the first object's keys are the file's schema, later gaps are bad rows."""
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as error:
        return _malformed(
            path, row_number, f"invalid UTF-8 at byte {error.start}", Reason.UNDECODABLE
        )
    except json.JSONDecodeError as error:
        return _malformed(path, row_number, f"invalid JSON ({error.msg})")
    if not isinstance(record, dict):
        return _malformed(path, row_number, "a JSON line that is not an object")
    missing = [column for column in columns.required if column not in record]
    if missing and first_object:
        _require_columns(path, list(record), columns)
    if missing:
        return _malformed(path, row_number, f"missing key(s) {missing}")
    values = {key: [value] for key, value in record.items()}
    return _raw_row(str(path), row_number, values, 0, columns)


def _malformed(
    path: Path, row_number: int, problem: str, reason: str = Reason.MALFORMED_ROW
) -> RawRow:
    return RawRow(str(path), row_number, None, None, None, rejected=(reason, problem))


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
