"""Where unusable rows go: counted by reason, written as JSONL, never silently dropped.

A quarantine record names the source file, the row number and the reason,
plus a short detail (e.g. the malformed code). It never holds note text.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from autocode.private_files import open_private_text


class Reason:
    """Why a row was quarantined; these strings appear in reports and files."""

    EMPTY_TEXT = "empty_text"
    UNDECODABLE = "undecodable_bytes"
    MISSING_ID = "missing_id"
    DUPLICATE_ID = "duplicate_id"
    INVALID_CODE = "invalid_code"
    TEXT_TOO_LONG = "text_too_long"
    MALFORMED_ROW = "malformed_row"
    CODES_WITHOUT_TEXT = "codes_without_text"
    UNREADABLE_FILE = "unreadable_file"
    ID_TOO_LONG = "id_too_long"
    INVALID_CHARACTERS = "invalid_characters"  # NUL or a lone surrogate (see validity.py)
    UNTERMINATED_QUOTE = "unterminated_quote"  # a CSV quote never closed: the rest of the file
    UNREADABLE_ROWS = "unreadable_rows"  # rows of a Parquet row group or a stream that broke


class Skip:
    """Why something read was deliberately left out (counted in `LoadReport.skipped`)."""

    UNREAD_FILE = "unread_file"  # a file in the input the loaders do not read


@dataclass
class LoadReport:
    """Counts for one load: every row read is kept, quarantined or skipped.

    Skipped rows are usable rows deliberately left out (e.g. another split
    than the one asked for); they are counted so the totals still add up.
    """

    read: int = 0
    kept: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def check_balanced(self) -> None:
        """Fail loudly if any row went missing between reading and the outputs."""
        skipped = sum(self.skipped.values())
        if self.read != self.kept + self.quarantined_total + skipped:
            raise AssertionError(
                f"row accounting broken: read={self.read} kept={self.kept} "
                f"quarantined={self.quarantined_total} skipped={skipped}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "kept": self.kept,
            "quarantined": self.quarantined_total,
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(sorted(self.skipped.items())),
        }


class Quarantine:
    """Collects quarantine records, streaming them to a JSONL file when given one."""

    def __init__(self, path: Path | None = None, *, keep_records: bool = False) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self.counts: Counter[str] = Counter()
        # Kept in memory when the caller writes them itself (e.g. atomically per part).
        self.records: list[dict[str, object]] | None = [] if keep_records else None

    def add(self, source: str, row: int, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        if self.records is not None:
            self.records.append({"source": source, "row": row, "reason": reason, "detail": detail})
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open_private_text(self.path)  # records name source rows and note ids
        record = {"source": source, "row": row, "reason": reason, "detail": detail}
        self._file.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
