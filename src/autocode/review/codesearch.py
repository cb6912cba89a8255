"""Search codes by description for the reviewer's "add a missing code" box.

ICD-10-CM (categories and codes, by description, inclusion terms and includes notes), ICD-10-PCS and
HCPCS (when the app's `CodeKnowledge` has the CMS file) are searched by words in their
descriptions or by code prefix; CPT has
no open descriptions, so a CPT number is offered as itself. The index is built on first
use (about two seconds, the ICD-10-CM tabular) and kept with the knowledge it came from.
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass

from autocode.codes.icd10cm import _tabular
from autocode.codes.icd_tables import code_table
from autocode.codes.systems import CPT, ICD10CM, ICD10PCS, CodeError, normalize_code
from autocode.knowledge import CodeKnowledge

MAX_QUERY_CHARS = 100
_CPT_NUMBER = re.compile(r"(?:cpt:?\s*)?(\d{4}[0-9FTU])", re.IGNORECASE)


@dataclass(frozen=True)
class CodeHit:
    code: str
    description: str
    matched: str | None = None  # the other name the query was found in, if it ranked best
    billable: bool = True  # False: an ICD-10-CM category, which a claim cannot carry


@dataclass(frozen=True)
class CodeEntry:
    code: str
    description: str
    terms: tuple[str, ...] = ()  # other names: ICD-10-CM's inclusion terms and includes
    billable: bool = True


class CodeIndex:
    """Codes with their descriptions and other names, lower-cased once for substring
    search; a code is found with or without its dot ("r509" is R50.9)."""

    def __init__(self, entries: list[CodeEntry]) -> None:
        self.entries = entries
        self._haystacks = [
            " ".join([entry.code, _bare(entry.code), entry.description, *entry.terms]).lower()
            for entry in entries
        ]

    def search(self, query: str, limit: int = 20) -> list[CodeHit]:
        """Codes whose code, description or another name contains every word of `query`;
        code matches first. A code found best by another name says which ("Essential
        (primary) hypertension", found as "high blood pressure")."""
        query = query.strip()[:MAX_QUERY_CHARS]
        words = query.lower().split()
        if not words:
            return []
        hits: list[CodeHit] = []
        cpt = _CPT_NUMBER.fullmatch(query)
        if cpt:
            hits.append(CodeHit(f"{CPT}:{cpt.group(1).upper()}", "CPT code (no description)"))
        code_hits: list[CodeHit] = []
        ranked: list[tuple[tuple[bool, bool, bool, int], CodeHit]] = []
        for entry, haystack in zip(self.entries, self._haystacks, strict=True):
            if all(word in haystack for word in words):
                if _bare(entry.code).startswith(words[0].replace(".", "")):
                    code_hits.append(CodeHit(entry.code, entry.description, None, entry.billable))
                else:
                    ranked.append(_ranked_hit(entry, words))
                if len(code_hits) >= limit:
                    break
        ranked.sort(key=lambda pair: pair[0])
        return (hits + code_hits + [hit for _, hit in ranked])[:limit]


def _bare(code: str) -> str:
    """The code's value without system or dot, lower-cased: "ICD10CM:R50.9" is "r509"."""
    return code.split(":", 1)[-1].replace(".", "").lower()


def _ranked_hit(entry: CodeEntry, words: list[str]) -> tuple[tuple[bool, bool, bool, int], CodeHit]:
    """The hit by the best of the texts that hold the query (its description, or another
    name, which the hit then names), with that text's rank."""
    texts = [(entry.description, False), *((term, True) for term in entry.terms)]
    holding = [(text, is_term) for text, is_term in texts if _holds(text, words)]
    best = min(
        ((_rank(text, words, is_term), text, is_term) for text, is_term in holding), default=None
    )
    if best is None:  # found by its code's letters, or words spread over several texts
        return (True, True, True, len(entry.description)), CodeHit(
            entry.code, entry.description, None, entry.billable
        )
    rank, text, is_term = best
    return rank, CodeHit(entry.code, entry.description, text if is_term else None, entry.billable)


def _holds(text: str, words: list[str]) -> bool:
    lowered = text.lower()
    return all(word in lowered for word in words)


def _rank(text: str, words: list[str], is_term: bool) -> tuple[bool, bool, bool, int]:
    """Texts whose first word is the query's first word, then those holding each of its
    words whole; then descriptions before other names; shortest first. "fever" finds
    "Fever, unspecified" before "Q fever", and "ear" finds "Otitis externa, right ear"
    before "Early syphilis"."""
    text_words = re.findall(r"[a-z0-9]+", text.lower())
    begins_with_it = bool(text_words) and text_words[0] == words[0]
    holds_them_whole = all(word in text_words for word in words)
    return (not begins_with_it, not holds_them_whole, is_term, len(text))


# Keyed by the knowledge object itself (weakly): an index lives as long as its knowledge.
_indexes: weakref.WeakKeyDictionary[CodeKnowledge, CodeIndex] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def code_index(knowledge: CodeKnowledge) -> CodeIndex:
    """The search index of `knowledge`'s codes, built once per knowledge object."""
    with _lock:
        if knowledge not in _indexes:
            _indexes[knowledge] = CodeIndex(_entries(knowledge))
        return _indexes[knowledge]


def _entries(knowledge: CodeKnowledge) -> list[CodeEntry]:
    entries: list[CodeEntry] = []
    tabular = _tabular()
    for value in tabular.get_all_codes(with_dots=True):
        try:
            code = normalize_code(value, ICD10CM)
        except CodeError:
            continue  # chapters ("1") and blocks ("A00-A09") are not codes
        notes = [*tabular.get_inclusion_term(value), *tabular.get_includes(value)]
        terms = tuple(str(term) for term in notes)
        description = str(tabular.get_description(value))
        entries.append(CodeEntry(code, description, terms, bool(tabular.is_leaf(value))))
    pcs = code_table(ICD10PCS)
    entries += [CodeEntry(f"{ICD10PCS}:{value}", text) for value, text in pcs.descriptions.items()]
    if knowledge.hcpcs is not None:
        entries += [
            CodeEntry(code, entry.long_description) for code, entry in knowledge.hcpcs.codes.items()
        ]
    return entries
