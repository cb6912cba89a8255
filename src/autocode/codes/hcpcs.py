"""HCPCS Level II codes and modifiers from the CMS alpha-numeric release file.

The file (`HCPC2020_ANWEB_w_disclaimer.txt` in the 2020 zip) is fixed width: code in
columns 1-5, record id in column 11 (3 or 7: first line of a code or modifier; 4 or 8: more
of its long description), long description in 12-91, short description in 92-119. A
disclaimer precedes the first record.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from autocode.codes.systems import HCPCS, normalize_code

# Where the CMS 2020 release sits under a shared data directory.
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
