"""ICD-10-CM hierarchy, Excludes1 conflicts and the notes that pair codes (use additional
code, code also, code first), read from simple_icd_10_cm's tabular list.

The tabular nests codes under blocks (`N40-N53`) and chapters (`14`). Those are not codes,
so `parent` and `ancestors` return only categories and subcategories; their Excludes1 notes
still apply to every code below them, so `excludes1` reads them too.

Every function takes a code written `ICD10CM:VALUE` (any spelling `normalize_code` accepts).
Codes that are well formed but not in the tabular (CodiEsp's truncated `S02.0XX`) have no
known hierarchy: `is_billable` says False and the other functions raise CodeError.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from functools import cache, lru_cache
from types import ModuleType

from autocode.codes.excludes import Reference, references
from autocode.codes.systems import ICD10CM, CodeError, normalize_code, split_code
from autocode.collector import collector_paused


@cache
def _tabular() -> ModuleType:
    """simple_icd_10_cm, imported on first use because importing it parses a 10 MB XML file
    (3.0 s, 1.7 s without the collector's passes over the tree it keeps)."""
    with collector_paused():
        return importlib.import_module("simple_icd_10_cm")


def in_tabular(value: str) -> bool:
    """True when the dotted ICD-10-CM `value` is a category, subcategory or code (2026)."""
    return bool(_tabular().is_valid_item(value))


def describe_value(value: str) -> str | None:
    """The tabular's description of a dotted ICD-10-CM value, None if it is not there."""
    return str(_tabular().get_description(value)) if in_tabular(value) else None


def inclusion_terms(code: str) -> list[str]:
    """Other names the tabular lists for the code ("Plaque psoriasis" under L40.0)."""
    return [str(term) for term in _tabular().get_inclusion_term(_tabular_value(code))]


def tabular_values() -> list[str]:
    """Every category, subcategory and code of the tabular (dotted), in tabular order;
    chapters and blocks left out."""
    return [name for name in _tabular().get_all_codes(True) if _is_code_item(name)]


def children(value: str) -> list[str]:
    """The dotted values one level below the tabular value `value`, in order."""
    return [str(name) for name in _tabular().get_children(value)]


def listed_names(value: str) -> list[str]:
    """The description, inclusion terms and includes notes of the tabular value `value`
    (as `tabular_values` gives it), as the tabular lists them."""
    cm = _tabular()
    names = [str(cm.get_description(value))]
    names += [str(term) for term in cm.get_inclusion_term(value)]
    return names + [str(note) for note in cm.get_includes(value)]


def parent(code: str) -> str | None:
    """The nearest enclosing code (`ICD10CM:N44.8` → `ICD10CM:N44`); None for a category."""
    found = ancestors(code)
    return found[0] if found else None


def ancestors(code: str) -> list[str]:
    """Enclosing categories and subcategories, nearest first; blocks and chapters left out."""
    value = _tabular_value(code)
    found: list[str] = []
    for name in _tabular().get_ancestors(value):
        # A block holding a single category shares its name (`O09`); keep the category once.
        if _is_code_item(name) and name != value and f"{ICD10CM}:{name}" not in found:
            found.append(f"{ICD10CM}:{name}")
    return found


def is_billable(code: str) -> bool:
    """True for a leaf of the tabular, the level claims are coded at; False if unknown."""
    value = _icd10cm_value(code)
    return in_tabular(value) and bool(_tabular().is_leaf(value))


def excludes1(code: str) -> list[str]:
    """References named by the Excludes1 notes of the code and everything above it.

    Written as in the tabular, without a system prefix (`E08.-`, `O10-O11`,
    `E08-E13 with .44`), the code's own notes first, then its ancestors' nearest first.
    Only references `excludes1_conflicts` can apply are listed.
    """
    return [reference.text for reference in _references(_tabular_value(code))]


def excludes1_conflicts(codes: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs (excluding, excluded) among `codes` that an Excludes1 note forbids together.

    `codes` are canonical codes of any system, such as a note's `codes`; only ICD10CM ones
    take part. A pair is directed: the first code's notes (or its ancestors') name the
    second. When two codes exclude each other (E10.9, E11.9) both directions are listed.
    Codes missing from the tabular name nothing themselves but can still be named.
    """
    values = list(
        dict.fromkeys(value for system, value in map(split_code, codes) if system == ICD10CM)
    )
    conflicts: list[tuple[str, str]] = []
    for excluding in values:
        if not in_tabular(excluding):
            continue
        named = _references(excluding)
        for excluded in values:
            if excluded != excluding and any(ref.covers(excluded) for ref in named):
                conflicts.append((f"{ICD10CM}:{excluding}", f"{ICD10CM}:{excluded}"))
    return conflicts


def excludes1_references(value: str) -> tuple[Reference, ...]:
    """The references `excludes1` lists for the dotted value of a code in the tabular."""
    return _references(value)


def paired_references(value: str) -> tuple[Reference, ...]:
    """References named by the use-additional-code, code-also and code-first notes of the
    dotted value of a code in the tabular and everything above it: the codes a coder
    looks for beside it (E66.9 obesity: "use additional code to identify body mass index
    (BMI), if known (Z68.1-Z68.45)")."""
    return _pairing_references(value)


@lru_cache(maxsize=16384)
def _references(value: str) -> tuple[Reference, ...]:
    cm = _tabular()

    def notes(name: str, as_block: bool) -> list[str]:
        return list(cm.get_excludes1(name, prioritize_blocks=as_block))

    return _up_the_tabular(value, notes)


@lru_cache(maxsize=16384)
def _pairing_references(value: str) -> tuple[Reference, ...]:
    cm = _tabular()

    def notes(name: str, as_block: bool) -> list[str]:
        getters = (cm.get_use_additional_code, cm.get_code_also, cm.get_code_first)
        return [get(name, prioritize_blocks=as_block) for get in getters]

    return _up_the_tabular(value, notes)


def _up_the_tabular(
    value: str, notes_of: Callable[[str, bool], Iterable[str]]
) -> tuple[Reference, ...]:
    """The references in the notes of `value` and of each ancestor, nearest first."""
    cm = _tabular()
    found: dict[str, Reference] = {}
    name, as_block = value, False
    while name:
        for note in notes_of(name, as_block):
            for reference in references(note):
                found.setdefault(reference.text, reference)
        parent_name = str(cm.get_parent(name, prioritize_blocks=as_block))
        # The parent of a single-category block's category has the category's own name.
        name, as_block = parent_name, parent_name == name
    return tuple(found.values())


def _tabular_value(code: str) -> str:
    value = _icd10cm_value(code)
    if not in_tabular(value):
        raise CodeError(f"ICD10CM code {code!r} is not in the ICD-10-CM tabular list")
    return value


def _icd10cm_value(code: str) -> str:
    system, value = split_code(normalize_code(code))
    if system != ICD10CM:
        raise CodeError(f"{code!r} is a {system} code: only ICD10CM has a hierarchy here")
    return value


def _is_code_item(name: str) -> bool:
    # Chapters are numbers ("14") and blocks are ranges ("N40-N53"); codes start with a letter.
    return name[:1].isalpha() and "-" not in name
