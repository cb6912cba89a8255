"""Which source columns hold the canonical fields, and the checks on a file's header."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from autocode.corpus.canonical import RawRow
from autocode.corpus.errors import SourceError
from autocode.corpus.schema import CODES, ENCOUNTER_ID, NOTE_ID, PATIENT_ID, SPLIT, TEXT

# A header name shown in an error: a file without a header row has note text there.
_HEADER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class ColumnMap:
    """Which source columns hold the canonical fields.

    Only the id and the text are required: an archive waiting to be coded has no codes
    column, and its notes load with empty code lists.
    """

    id_col: str = NOTE_ID
    text_col: str = TEXT
    codes_col: str = CODES
    patient_col: str = PATIENT_ID
    encounter_col: str = ENCOUNTER_ID
    split_col: str = SPLIT

    @property
    def required(self) -> tuple[str, str]:
        return (self.id_col, self.text_col)

    @property
    def mapped(self) -> tuple[str, ...]:
        return (
            self.id_col,
            self.text_col,
            self.codes_col,
            self.patient_col,
            self.encounter_col,
            self.split_col,
        )


def check_columns(
    path: object, names: list[str], columns: ColumnMap, needs_codes_for: str | None = None
) -> None:
    """SourceError unless the header has the required columns, each once."""
    for column in columns.required:
        if column not in names:
            raise SourceError(path, f"missing required column {column!r} ({describe(names)})")
    if needs_codes_for is not None and columns.codes_col not in names:
        raise SourceError(
            path, f"no codes column {columns.codes_col!r}; {needs_codes_for} needs gold codes"
        )
    for column in set(columns.mapped):
        if names.count(column) > 1:
            raise SourceError(path, f"column {column!r} appears {names.count(column)} times")


def describe(names: list[str]) -> str:
    """The header's names when they look like column names, else only how many there are."""
    if all(_HEADER_NAME.fullmatch(name) for name in names):
        return f"has {names}"
    return f"has {len(names)} columns, names not shown: not all look like column names"


def raw_row(source: str, row: int, get: Callable[[str], object], columns: ColumnMap) -> RawRow:
    """The RawRow of one source row; `get(column)` is None for a column the file lacks."""
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


def rejected(source: object, row: int, reason: str, detail: str) -> RawRow:
    """A row the reader already knows is unusable."""
    return RawRow(str(source), row, None, None, None, rejected=(reason, detail))
