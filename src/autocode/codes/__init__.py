"""Medical code systems: normalise, validate, describe, ICD-10-CM hierarchy and conflicts.

Codes are written `SYSTEM:VALUE` in the system's canonical form (`ICD10CM:N44.8`,
`ICD10PCS:BW03ZZZ`, `ICD9CM:428.0`, `ICD9PCS:39.95`, `CPT:99231`, `HCPCS:A0428`);
`normalize_code` turns accepted raw spellings into that form.
"""

from autocode.codes.cpt import CptCatalog
from autocode.codes.descriptions import describe, is_valid
from autocode.codes.hcpcs import HcpcsCatalog, HcpcsEntry
from autocode.codes.icd10cm import ancestors, excludes1, excludes1_conflicts, is_billable, parent
from autocode.codes.systems import (
    CPT,
    HCPCS,
    ICD9CM,
    ICD9PCS,
    ICD10CM,
    ICD10PCS,
    SYSTEMS,
    CodeError,
    normalize_code,
    split_code,
)

__all__ = [
    "CPT",
    "HCPCS",
    "ICD9CM",
    "ICD9PCS",
    "ICD10CM",
    "ICD10PCS",
    "SYSTEMS",
    "CodeError",
    "CptCatalog",
    "HcpcsCatalog",
    "HcpcsEntry",
    "ancestors",
    "describe",
    "excludes1",
    "excludes1_conflicts",
    "is_billable",
    "is_valid",
    "normalize_code",
    "parent",
    "split_code",
]
