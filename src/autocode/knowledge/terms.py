"""What a code is called: its description and other listed names, for matching note text."""

from __future__ import annotations

import re
from collections.abc import Callable

from autocode.codes import icd10cm
from autocode.codes.icd_tables import code_table
from autocode.codes.systems import ICD9CM, ICD9PCS, ICD10CM, ICD10PCS, CodeError, split_code

# "(primary)", "(acute)": optional words in the tabular; a note rarely spells them out.
_PARENTHESISED = re.compile(r"\s*\([^)]*\)")
GROUP_LENGTH = 3
# Systems whose categories have no listed description; they get their codes' shared words.
SHARED_DESCRIPTION_SYSTEMS = frozenset({ICD10PCS, ICD9CM, ICD9PCS})


def code_terms(code: str, describe: Callable[[str], str | None]) -> list[str]:
    """The code's description first, then (ICD-10-CM) its inclusion terms; [] if none known.

    `describe` gives a listed code's own description (see `CodeKnowledge.describe`). A
    category or prefix without its own description (ICD-10-PCS `BN20`) is described by the
    words all its codes' descriptions start with. Parenthesised words are dropped: they
    qualify a term without being needed to name it.
    """
    try:
        system, value = split_code(code)
        listed = _nearest_listed(value) if system == ICD10CM else code
        if listed is None:
            return []
        described = describe(listed)
        if described is None and system in SHARED_DESCRIPTION_SYSTEMS:
            described = code_table(system).shared_description(value)
        names = [described] if described else []
        if system == ICD10CM:
            names += icd10cm.inclusion_terms(listed)
    except CodeError:
        return []
    terms = (_PARENTHESISED.sub("", name).strip() for name in names)
    return list(dict.fromkeys(term for term in terms if term))


def code_group(code: str) -> str:
    """The code's family: its first three characters (the ICD-10-CM category, `ICD10CM:L40`).

    The same rule gives ICD-9 categories, ICD-10-PCS section/body system/operation and
    three-character HCPCS or CPT ranges: codes a coder weighs against each other.
    """
    system, value = split_code(code)
    return f"{system}:{value[:GROUP_LENGTH]}"


def _nearest_listed(value: str) -> str | None:
    """The code itself, or for a truncated spelling (`S02.0XX`) the nearest listed prefix."""
    while value and not icd10cm.in_tabular(value):
        value = value[:-1].rstrip(".")
    return f"{ICD10CM}:{value}" if value else None
