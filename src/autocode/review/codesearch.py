"""Search codes by description for the reviewer's "add a missing code" box.

ICD-10-CM (categories and codes), ICD-10-PCS and HCPCS (when the app's `CodeKnowledge`
has the CMS file) are searched by words in their descriptions or by code prefix; CPT has
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


class CodeIndex:
    """Codes with their descriptions, lower-cased once for substring search."""

    def __init__(self, entries: list[tuple[str, str]]) -> None:
        self.entries = entries
        self._haystacks = [f"{code.lower()} {description.lower()}" for code, description in entries]

    def search(self, query: str, limit: int = 20) -> list[CodeHit]:
        """Codes whose code or description contains every word of `query`; code matches first."""
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
        for (code, description), haystack in zip(self.entries, self._haystacks, strict=True):
            if all(word in haystack for word in words):
                value = code.split(":", 1)[1].lower()
                bucket = code_hits if value.startswith(words[0].replace(".", "")) else text_hits
                bucket.append(CodeHit(code, description))
                if len(code_hits) >= limit:
                    break
        text_hits.sort(key=lambda hit: _rank(hit.description, words))
        return (hits + code_hits + text_hits)[:limit]


def _rank(description: str, words: list[str]) -> tuple[bool, bool, int]:
    """Descriptions whose first word is the query's first word, then those holding each
    of its words whole, shortest first: "fever" finds "Fever, unspecified" before
    "Q fever", and "ear" finds "Otitis externa, right ear" before "Early syphilis"."""
    description_words = re.findall(r"[a-z0-9]+", description.lower())
    begins_with_it = bool(description_words) and description_words[0] == words[0]
    holds_them_whole = all(word in description_words for word in words)
    return (not begins_with_it, not holds_them_whole, len(description))


# Keyed by the knowledge object itself (weakly): an index lives as long as its knowledge.
_indexes: weakref.WeakKeyDictionary[CodeKnowledge, CodeIndex] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def code_index(knowledge: CodeKnowledge) -> CodeIndex:
    """The search index of `knowledge`'s codes, built once per knowledge object."""
    with _lock:
        if knowledge not in _indexes:
            _indexes[knowledge] = CodeIndex(_entries(knowledge))
        return _indexes[knowledge]


def _entries(knowledge: CodeKnowledge) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    tabular = _tabular()
    for value in tabular.get_all_codes(with_dots=True):
        try:
            code = normalize_code(value, ICD10CM)
        except CodeError:
            continue  # chapters ("1") and blocks ("A00-A09") are not codes
        entries.append((code, str(tabular.get_description(value))))
    pcs = code_table(ICD10PCS)
    entries += [(f"{ICD10PCS}:{value}", text) for value, text in pcs.descriptions.items()]
    if knowledge.hcpcs is not None:
        entries += [(code, entry.long_description) for code, entry in knowledge.hcpcs.codes.items()]
    return entries
