"""HCPCS Level II codes and modifiers from the CMS alpha-numeric release file.

The file (`HCPC2020_ANWEB_w_disclaimer.txt` in the 2020 zip) is fixed width: code in
columns 1-5, record id in column 11 (3 or 7: first line of a code or modifier; 4 or 8: more
of its long description), long description in 12-91, short description in 92-119. A
disclaimer precedes the first record.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from autocode.codes.systems import HCPCS, normalize_code

SHARED_DATA_ENV = "AUTOCODE_SHARED_DATA"
DEFAULT_SHARED_DATA = Path("../shared/data")
HCPCS_ZIP = Path("hcpcs") / "2020-Alpha-Numeric-HCPCS-File.zip"

# Code (a modifier is right-aligned in columns 1-5), 5-digit sequence number, record id.
_RECORD = re.compile(r"(?P<key> {3}[0-9A-Z]{2}|[A-V][0-9]{4})[0-9]{5}(?P<kind>[3478])")
_MEMBER = re.compile(r"HCPC\d{4}_ANWEB.*\.txt", re.IGNORECASE)


@dataclass(frozen=True)
class HcpcsEntry:
    """Descriptions of one HCPCS code or modifier."""

    long_description: str
    short_description: str


@dataclass(frozen=True)
class HcpcsCatalog:
    """HCPCS codes keyed by canonical code (`HCPCS:A0428`), modifiers by their 2 characters."""

    codes: Mapping[str, HcpcsEntry]
    modifiers: Mapping[str, HcpcsEntry]

    @classmethod
    def from_zip(cls, path: str | Path, member: str | None = None) -> HcpcsCatalog:
        """Read a CMS release zip; `member` defaults to its one `HCPCyyyy_ANWEB*.txt` file."""
        with zipfile.ZipFile(path) as archive:
            if member is None:
                candidates = [n for n in archive.namelist() if _MEMBER.fullmatch(n)]
                if len(candidates) != 1:
                    raise ValueError(
                        f"{path}: expected one HCPCyyyy_ANWEB*.txt file, found {candidates}; "
                        "pass member="
                    )
                member = candidates[0]
            text = archive.read(member).decode("latin-1")
        return cls._from_lines(text.splitlines(), f"{path}:{member}")

    @classmethod
    def from_text(cls, path: str | Path) -> HcpcsCatalog:
        """Read the fixed-width text file itself (latin-1, as CMS writes it)."""
        text = Path(path).read_text(encoding="latin-1")
        return cls._from_lines(text.splitlines(), str(path))

    def describe(self, code: str) -> str | None:
        """Long description of an HCPCS code (any accepted spelling); None if not listed."""
        entry = self.codes.get(normalize_code(code, HCPCS))
        return None if entry is None else entry.long_description

    @classmethod
    def _from_lines(cls, lines: Iterable[str], source: str) -> HcpcsCatalog:
        codes: dict[str, HcpcsEntry] = {}
        modifiers: dict[str, HcpcsEntry] = {}
        for key, (long_parts, short) in _records(lines, source).items():
            entry = HcpcsEntry(" ".join(part for part in long_parts if part), short)
            if len(key) == 2:
                modifiers[key] = entry
            else:
                codes[f"{HCPCS}:{key}"] = entry
        return cls(codes, modifiers)


def _records(lines: Iterable[str], source: str) -> dict[str, tuple[list[str], str]]:
    """Key -> (long description pieces, short description), continuations appended."""
    records: dict[str, tuple[list[str], str]] = {}
    for number, line in enumerate(lines, start=1):
        match = _RECORD.match(line)
        if match is None:
            # Only the disclaimer before the first record, and blank lines, are skipped.
            if records and line.strip():
                raise ValueError(f"{source}, line {number}: not an HCPCS record: {line!r}")
            continue
        key, long_part = match["key"].strip(), line[11:91].strip()
        if match["kind"] in "37":
            if key in records:
                raise ValueError(f"{source}, line {number}: {key!r} is listed twice")
            records[key] = ([long_part], line[91:119].strip())
        elif key in records:
            records[key][0].append(long_part)
        else:
            raise ValueError(f"{source}, line {number}: continuation of unknown code {key!r}")
    return records


def default_hcpcs_catalog() -> HcpcsCatalog | None:
    """The CMS 2020 catalog under `$AUTOCODE_SHARED_DATA` (default `../shared/data`).

    None when the zip is absent, so that HCPCS codes then go undescribed instead of failing.
    """
    root = Path(os.environ.get(SHARED_DATA_ENV, DEFAULT_SHARED_DATA))
    path = root / HCPCS_ZIP
    return _catalog_at(path.resolve()) if path.is_file() else None


@lru_cache(maxsize=4)
def _catalog_at(path: Path) -> HcpcsCatalog:
    return HcpcsCatalog.from_zip(path)
