"""Turn raw source rows into canonical notes, quarantining what cannot be used.

Loaders only parse their format into `RawRow`s; every rule about what makes
a usable note lives here, so all sources are held to the same standard.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from autocode.codes import CodeError, normalize_code
from autocode.corpus.quarantine import LoadReport, Quarantine, Reason
from autocode.corpus.schema import (
    CODES,
    DEFAULT_MAX_TEXT_CHARS,
    ENCOUNTER_ID,
    NOTE_ID,
    PATIENT_ID,
    SPLIT,
    TEXT,
    Note,
)
from autocode.corpus.validity import cap_quoted, character_problem, id_too_long, text_too_long

CODE_SEPARATORS = (";", "|", ",")
SPLIT_NOT_SELECTED = "split_not_selected"


@dataclass
class RawRow:
    """One row as a loader read it, before any validation."""

    source: str
    row: int
    note_id: object
    text: object
    codes: object
    patient_id: object = None
    encounter_id: object = None
    split: object = None
    # Set by a loader that already knows the row is unusable: (reason, detail).
    rejected: tuple[str, str] | None = None
    # Set by a loader for something read and deliberately left out (e.g. an unread file).
    skipped: str | None = None


class Canonicalizer:
    """Validate raw rows into notes; count every row as kept or quarantined."""

    def __init__(
        self,
        quarantine: Quarantine,
        report: LoadReport,
        *,
        system: str | None = None,
        max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
        splits: tuple[str, ...] | None = None,
    ) -> None:
        self.quarantine = quarantine
        self.report = report
        self.system = system
        self.max_text_chars = max_text_chars
        self.splits = splits
        self._seen_ids: set[str] = set()
        self._normalized_codes: dict[str, str | CodeError] = {}

    def notes(self, rows: Iterable[RawRow]) -> Iterator[Note]:
        for raw in rows:
            note = self.accept(raw)
            if note is not None:
                yield note

    def accept(self, raw: RawRow) -> Note | None:
        """Return the canonical note; None after quarantining the row or skipping its split."""
        self.report.read += 1
        if raw.skipped is not None:
            self.report.skipped[raw.skipped] += 1
            return None
        try:
            note = self._build(raw)
        except _RejectedRowError as rejected:
            self.report.quarantined[rejected.reason] += 1
            self.quarantine.add(raw.source, raw.row, rejected.reason, rejected.detail)
            return None
        self._seen_ids.add(note.note_id)
        if self.splits and note.split not in self.splits:
            self.report.skipped[SPLIT_NOT_SELECTED] += 1
            return None
        self.report.kept += 1
        return note

    def _build(self, raw: RawRow) -> Note:
        if raw.rejected is not None:
            raise _RejectedRowError(*raw.rejected)
        note_id = _optional_str(raw.note_id, NOTE_ID)
        if note_id is None:
            raise _RejectedRowError(Reason.MISSING_ID)
        too_long = id_too_long(NOTE_ID, note_id)
        if too_long is not None:
            raise _RejectedRowError(Reason.ID_TOO_LONG, too_long)
        if note_id in self._seen_ids:
            raise _RejectedRowError(Reason.DUPLICATE_ID, "note_id of an earlier row")
        text = _decode_text(raw.text)
        if not text.strip():
            raise _RejectedRowError(Reason.EMPTY_TEXT)
        if too_long := text_too_long(text, self.max_text_chars):
            raise _RejectedRowError(Reason.TEXT_TOO_LONG, too_long)
        _require_storable(TEXT, text)
        return Note(
            note_id=note_id,
            text=text,
            codes=self._codes(raw.codes),
            patient_id=_optional_str(raw.patient_id, PATIENT_ID),
            encounter_id=_optional_str(raw.encounter_id, ENCOUNTER_ID),
            split=_optional_str(raw.split, SPLIT),
        )

    def _codes(self, value: object) -> list[str]:
        codes: list[str] = []
        for raw_code in split_codes(value):
            code = self._normalized(raw_code)
            if code not in codes:
                codes.append(code)
        return codes

    def _normalized(self, raw_code: str) -> str:
        # Archives repeat a few thousand distinct spellings millions of times: normalise once.
        known = self._normalized_codes.get(raw_code)
        if known is None:
            try:
                known = normalize_code(raw_code, self.system)
            except CodeError as error:
                known = error
            self._normalized_codes[raw_code] = known
        if isinstance(known, CodeError):
            raise _RejectedRowError(Reason.INVALID_CODE, cap_quoted(str(known)))
        return known


def split_codes(value: object) -> list[str]:
    """Accept codes as a list/array or as one delimited string (`;`, `|` or `,`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, bytes):
        value = _decode(value, CODES)
    if isinstance(value, str):
        for separator in CODE_SEPARATORS:
            if separator in value:
                return [part.strip() for part in value.split(separator) if part.strip()]
        return [value.strip()] if value.strip() else []
    if isinstance(value, Iterable):
        items = (_decode(item, CODES) if isinstance(item, bytes) else item for item in value)
        return [str(item).strip() for item in items if item is not None and str(item).strip()]
    raise _RejectedRowError(Reason.MALFORMED_ROW, f"codes of type {type(value).__name__}")


class _RejectedRowError(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _optional_str(value: object, field: str) -> str | None:
    """An id-like value as a string: numbers are fine, JSON objects, lists and booleans not."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, str | bytes | int | float):
        raise _RejectedRowError(Reason.MALFORMED_ROW, f"{field} of type {type(value).__name__}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _decode(value, field) if isinstance(value, bytes) else str(value)
    _require_storable(field, text)
    return text.strip() or None


def _decode_text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bytes):
        return _decode(value, TEXT)
    if not isinstance(value, str):
        raise _RejectedRowError(Reason.MALFORMED_ROW, f"text of type {type(value).__name__}")
    return value


def _decode(value: bytes, field: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        detail = f"invalid UTF-8 in {field} at byte {error.start}"
        raise _RejectedRowError(Reason.UNDECODABLE, detail) from None


def _require_storable(field: str, value: str) -> None:
    problem = character_problem(field, value)
    if problem is not None:
        raise _RejectedRowError(Reason.INVALID_CHARACTERS, problem)
