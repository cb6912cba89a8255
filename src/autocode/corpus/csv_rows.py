"""CSV and TSV rows, one record at a time, so that one bad row costs only that row.

Python's `csv` module is used rather than pyarrow's reader: it is as fast once rows
become Python values, it knows each record's number and line (pyarrow's
`invalid_row_handler` reports neither when values hold newlines), it tells an
unterminated quote from a long field, and its errors never quote the row.

Bytes are decoded with `surrogateescape` and every cell turned back into its exact
bytes, so a cell with invalid UTF-8 is quarantined by the canonicalizer as that row's
problem; ids and codes stay strings ("00123" is not the integer 123).
"""

from __future__ import annotations

import _csv
import csv
import io
import zlib
from collections.abc import Callable, Iterator

from autocode.corpus.canonical import RawRow
from autocode.corpus.columns import ColumnMap, check_columns, raw_row, rejected
from autocode.corpus.errors import SourceError
from autocode.corpus.files import TableFile
from autocode.corpus.quarantine import Reason

_FIELD_LIMIT = 2**31 - 1  # the C long limit; a note's size is the canonicalizer's rule
_READ_ERRORS = (OSError, EOFError, zlib.error)  # a compressed stream that breaks off


def csv_rows(
    file: TableFile, columns: ColumnMap, needs_codes_for: str | None = None
) -> Iterator[RawRow]:
    """Raw rows of one CSV/TSV file, numbered from 1 after the header."""
    # The module default (128 KiB) is smaller than a long discharge summary.
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    with file.open() as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
        delimiter = "\t" if file.kind == "tsv" else ","
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        names = _header(file, reader)
        check_columns(file.path, names, columns, needs_codes_for)
        yield from _records(file, reader, names, columns)


def _header(file: TableFile, reader: Iterator[list[str]]) -> list[str]:
    try:
        header = next(reader, None)
    except (csv.Error, *_READ_ERRORS) as error:
        raise SourceError(
            file.path, f"unreadable CSV header ({type(error).__name__})", unreadable=True
        ) from None
    if not header:
        raise SourceError(file.path, "unreadable CSV: no header row (empty file)", unreadable=True)
    header[0] = header[0].removeprefix("\ufeff")  # a UTF-8 byte order mark
    return [name.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for name in header]


def _records(
    file: TableFile, reader: _csv.Reader, names: list[str], columns: ColumnMap
) -> Iterator[RawRow]:
    position = {name: names.index(name) for name in columns.mapped if name in names}
    source, record = str(file.path), 0
    while True:
        first_line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            record += 1
            if "unexpected end of data" in str(error):  # end of file inside a quoted field
                lines = f"lines {first_line}-{reader.line_num}"
                detail = f"a quote opened in row {record} is never closed: {lines} not read"
                yield rejected(source, record, Reason.UNTERMINATED_QUOTE, detail)
                return
            detail = f"CSV quoting error at line {reader.line_num}"
            yield rejected(source, record, Reason.MALFORMED_ROW, detail)
            continue
        except _READ_ERRORS as error:
            detail = f"the rest of the file from line {first_line} ({type(error).__name__})"
            yield rejected(source, record + 1, Reason.UNREADABLE_ROWS, detail)
            return
        if not fields:  # a blank line is no record
            continue
        record += 1
        if len(fields) != len(names):
            detail = f"expected {len(names)} fields, got {len(fields)} (line {first_line})"
            yield rejected(source, record, Reason.MALFORMED_ROW, detail)
            continue
        yield raw_row(source, record, _getter(fields, position), columns)


def _getter(fields: list[str], position: dict[str, int]) -> Callable[[str], bytes | None]:
    def get(name: str) -> bytes | None:
        index = position.get(name)
        return None if index is None else fields[index].encode("utf-8", "surrogateescape")

    return get
