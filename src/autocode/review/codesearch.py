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
    matched: str | None = None  # the inclusion term the query was found in, if not the description


@dataclass(frozen=True)
class CodeEntry:
    code: str
    description: str
    terms: tuple[str, ...] = ()  # other names: ICD-10-CM's inclusion terms and includes


class CodeIndex:
    """Codes with their descriptions and other names, lower-cased once for substring
    search."""

    def __init__(self, entries: list[CodeEntry]) -> None:
        self.entries = entries
        self._haystacks = [
            " ".join([entry.code, entry.description, *entry.terms]).lower() for entry in entries
        ]

    def search(self, query: str, limit: int = 20) -> list[CodeHit]:
        """Codes whose code, description or another name contains every word of `query`;
        code matches first. A code found by another name says which ("Essential (primary)
        hypertension", found as "high blood pressure")."""
        query = query.strip()[:MAX_QUERY_CHARS]
        words = query.lower().split()
        if not words:
            return []
        hits: list[CodeHit] = []
        cpt = _CPT_NUMBER.fullmatch(query)
        if cpt:
            hits.append(CodeHit(f"{CPT}:{cpt.group(1).upper()}", "CPT code (no description)"))
        code_hits: list[CodeHit] = []
        text_hits: list[CodeHit] = []
        for entry, haystack in zip(self.entries, self._haystacks, strict=True):
            if all(word in haystack for word in words):
                value = entry.code.split(":", 1)[1].lower()
                if value.startswith(words[0].replace(".", "")):
                    code_hits.append(CodeHit(entry.code, entry.description))
                else:
                    text_hits.append(_text_hit(entry, words))
                if len(code_hits) >= limit:
                    break
        text_hits.sort(key=lambda hit: _rank(hit, words))
        return (hits + code_hits + text_hits)[:limit]


def _text_hit(entry: CodeEntry, words: list[str]) -> CodeHit:
    """The hit, naming the term that holds the query where the description does not."""
    if _holds(entry.description, words):
        return CodeHit(entry.code, entry.description)
    term = next((term for term in entry.terms if _holds(term, words)), None)
    return CodeHit(entry.code, entry.description, term)


def _holds(text: str, words: list[str]) -> bool:
    lowered = text.lower()
    return all(word in lowered for word in words)


def _rank(hit: CodeHit, words: list[str]) -> tuple[bool, bool, bool, int]:
    """By the text that holds the query (the description, else the term): those whose
    first word is the query's first word, then those holding each of its words whole;
    then descriptions before terms; shortest first. "fever" finds "Fever, unspecified"
    before "Q fever", and "ear" finds "Otitis externa, right ear" before "Early syphilis"."""
    text = hit.matched or hit.description
    text_words = re.findall(r"[a-z0-9]+", text.lower())
    begins_with_it = bool(text_words) and text_words[0] == words[0]
    holds_them_whole = all(word in text_words for word in words)
    return (not begins_with_it, not holds_them_whole, hit.matched is not None, len(text))


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
        entries.append(CodeEntry(code, str(tabular.get_description(value)), terms))
    pcs = code_table(ICD10PCS)
    entries += [CodeEntry(f"{ICD10PCS}:{value}", text) for value, text in pcs.descriptions.items()]
    if knowledge.hcpcs is not None:
        entries += [
            CodeEntry(code, entry.long_description) for code, entry in knowledge.hcpcs.codes.items()
        ]
    return entries
