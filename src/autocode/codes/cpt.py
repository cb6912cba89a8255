"""CPT descriptions supplied by a licensed user.

CPT is the AMA's copyright and no open list of descriptions exists, so autocode ships none:
CPT codes are identifiers unless a user passes a catalog built from their own file.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autocode.codes.systems import CPT, CodeError, normalize_code

_COLUMNS = ("code", "description")


@dataclass(frozen=True)
class CptCatalog:
    """CPT descriptions keyed by canonical code (`CPT:99231`)."""

    descriptions: Mapping[str, str]

    @classmethod
    def from_csv(cls, path: str | Path) -> CptCatalog:
        """Read a UTF-8 CSV with a `code,description` header; codes in any accepted spelling."""
        descriptions: dict[str, str] = {}
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}: missing column(s) {missing}; expected {list(_COLUMNS)}")
            for row in reader:
                where = f"{path}, line {reader.line_num}"
                try:
                    code = normalize_code(row["code"] or "", CPT)
                except CodeError as error:
                    raise CodeError(f"{where}: {error}") from error
                if code in descriptions:
                    raise ValueError(f"{where}: {code} is listed twice")
                descriptions[code] = (row["description"] or "").strip()
        return cls(descriptions)

    def describe(self, code: str) -> str | None:
        """Description of a CPT code (any accepted spelling); None if the catalog lacks it."""
        return self.descriptions.get(normalize_code(code, CPT))
