"""JSON Lines rows (`.jsonl`, `.ndjson`): one object per line, one bad line costs one row."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator

from autocode.corpus.canonical import RawRow
from autocode.corpus.columns import ColumnMap, check_columns, raw_row, rejected
from autocode.corpus.files import TableFile
from autocode.corpus.quarantine import Reason

_BOM = b"\xef\xbb\xbf"


def jsonl_rows(
    file: TableFile, columns: ColumnMap, needs_codes_for: str | None = None
) -> Iterator[RawRow]:
    """Raw rows of one file, numbered by line; the first object's keys are its schema."""
    keys: list[str] | None = None
    row_number = 0
    with file.open() as handle:
        try:
            for row_number, line in enumerate(handle, start=1):
                if row_number == 1:
                    line = line.removeprefix(_BOM)
                if not line.strip():
                    continue
                row = _json_row(file, row_number, line)
                if keys is None and isinstance(row, dict):
                    check_columns(file.path, list(row), columns, needs_codes_for)
                    keys = list(row)
                yield _to_raw(file, row_number, row, columns, keys)
        except (OSError, EOFError, zlib.error) as error:  # a compressed stream that breaks off
            detail = f"the rest of the file from line {row_number + 1} ({type(error).__name__})"
            yield rejected(file.path, row_number + 1, Reason.UNREADABLE_ROWS, detail)


def _json_row(file: TableFile, row_number: int, line: bytes) -> dict[str, object] | RawRow:
    """The line's object, or the rejected row it makes."""
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as error:
        detail = f"invalid UTF-8 at byte {error.start}"
        return rejected(file.path, row_number, Reason.UNDECODABLE, detail)
    except json.JSONDecodeError as error:
        return rejected(file.path, row_number, Reason.MALFORMED_ROW, f"invalid JSON ({error.msg})")
    if not isinstance(record, dict):
        detail = "a JSON line that is not an object"
        return rejected(file.path, row_number, Reason.MALFORMED_ROW, detail)
    return record


def _to_raw(
    file: TableFile,
    row_number: int,
    row: dict[str, object] | RawRow,
    columns: ColumnMap,
    keys: list[str] | None,
) -> RawRow:
    if isinstance(row, RawRow):
        return row
    # A key the file's first object had is required of every line: a line without its
    # codes key is broken, not a note with no codes.
    expected = (*columns.required, columns.codes_col)
    missing = [column for column in expected if column in (keys or ()) and column not in row]
    if missing:
        detail = f"missing key(s) {missing}"
        return rejected(file.path, row_number, Reason.MALFORMED_ROW, detail)
    return raw_row(str(file.path), row_number, row.get, columns)
