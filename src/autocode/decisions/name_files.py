"""Code names saved with a Coder, normalised as its indexes read them (`Name.to_row`).

Normalising the whole ICD-10-CM's names takes seconds in every process that loads a
Coder, and the installed code tables may have changed since the fit; names saved with
the Coder are read back as they were fitted with. Gzipped JSON: 110,000 names in 0.9 MB.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

from autocode.knowledge.candidates import Name
from autocode.models.saved import check_version

NAMES_FORMAT = 1


def write_names(path: Path, names: Sequence[Name]) -> None:
    """`names` as gzipped JSON rows, with their format."""
    payload = {"format_version": NAMES_FORMAT, "names": [name.to_row() for name in names]}
    # mtime 0: the same names write the same bytes, so a saved Coder's digest is stable.
    with gzip.GzipFile(path, "wb", mtime=0) as file:
        file.write(json.dumps(payload).encode("utf-8"))


def read_names(path: Path) -> list[Name]:
    """The names `write_names` wrote."""
    with gzip.open(path, "rb") as file:
        payload = json.loads(file.read())
    check_version(path, payload.get("format_version"), NAMES_FORMAT)
    return [Name.from_row(row) for row in payload["names"]]
