"""Search codes by description for the reviewer's "add a missing code" box.

ICD-10-CM (categories and codes, by description, inclusion terms and includes notes),
ICD-10-PCS and HCPCS (when the app's `CodeKnowledge` has the CMS file) are searched by
words in their descriptions, in the spellings and abbreviations coders type
(`search_words`), or by code prefix, in one code system or all; CPT has no open
descriptions, so a CPT number is offered as itself. The index is built on first use
(about two seconds, the ICD-10-CM tabular) and kept with the knowledge it came from.
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass

from autocode.codes.icd10cm import _tabular
from autocode.codes.icd_tables import code_table
from autocode.codes.systems import CPT, HCPCS, ICD10CM, ICD10PCS, CodeError, normalize_code
from autocode.knowledge import CodeKnowledge
from autocode.review.search_words import word_options

MAX_QUERY_CHARS = 100
SEARCHABLE_SYSTEMS = (ICD10CM, ICD10PCS, HCPCS, CPT)
Options = list[tuple[str, ...]]  # per query word: its writings (`word_options`)
Rank = tuple[bool, bool, bool, bool, int]  # `_rank`: the smaller, the better the hit
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
        # The systems one can search here; CPT by number, whatever the entries.
        present = {entry.code.split(":", 1)[0] for entry in entries}
        self.systems = tuple(s for s in SEARCHABLE_SYSTEMS if s in present or s == CPT)

    def search(self, query: str, limit: int = 20, system: str | None = None) -> list[CodeHit]:
        """Codes whose code, description or another name contains every word of `query`
        (or another writing of it, `word_options`: "anaemia" finds "anemia"); code matches
        first. A code found best by another name says which ("Essential (primary)
        hypertension", found as "high blood pressure"). `system`: that system's codes
        only (None: all)."""
        if system is not None and system not in self.systems:
            raise ValueError(f"no code search for system {system!r}; one of {self.systems}")
        query = query.strip()[:MAX_QUERY_CHARS]
        words = query.lower().split()
        if not words:
            return []
        options = [word_options(word) for word in words]
        hits: list[CodeHit] = []
        cpt = _CPT_NUMBER.fullmatch(query)
        if cpt and system in (None, CPT):
            hits.append(CodeHit(f"{CPT}:{cpt.group(1).upper()}", "CPT code (no description)"))
        prefix = None if system is None else f"{system}:"
        code_hits: list[CodeHit] = []
        ranked: list[tuple[Rank, CodeHit]] = []
        for entry, haystack in zip(self.entries, self._haystacks, strict=True):
            if prefix is not None and not entry.code.startswith(prefix):
                continue
            if _holds(haystack, options):
                if _bare(entry.code).startswith(words[0].replace(".", "")):
                    code_hits.append(CodeHit(entry.code, entry.description, None, entry.billable))
                else:
                    ranked.append(_ranked_hit(entry, options))
                if len(code_hits) >= limit:
                    break
        ranked.sort(key=lambda pair: pair[0])
        return (hits + code_hits + [hit for _, hit in ranked])[:limit]


def _bare(code: str) -> str:
    """The code's value without system or dot, lower-cased: "ICD10CM:R50.9" is "r509"."""
    return code.split(":", 1)[-1].replace(".", "").lower()


def _ranked_hit(entry: CodeEntry, options: Options) -> tuple[Rank, CodeHit]:
    """The hit by the best of the texts that hold the query (its description, or another
    name, which the hit then names), with that text's rank."""
    texts = [(entry.description, False), *((term, True) for term in entry.terms)]
    holding = [(text, is_term) for text, is_term in texts if _holds(text.lower(), options)]
    best = min(
        ((_rank(text, options, is_term), text, is_term) for text, is_term in holding),
        default=None,
    )
    if best is None:  # found by its code's letters, or words spread over several texts
        return (True, True, True, True, len(entry.description)), CodeHit(
            entry.code, entry.description, None, entry.billable
        )
    rank, text, is_term = best
    return rank, CodeHit(entry.code, entry.description, text if is_term else None, entry.billable)


def _holds(lowered: str, options: Options) -> bool:
    """Whether the lower-cased text holds one writing of each query word."""
    return all(any(option in lowered for option in writings) for writings in options)


def _rank(text: str, options: Options, is_term: bool) -> Rank:
    """Texts holding the query's words one after another, then those whose first word is
    the query's first word, then those holding each of its words whole; then descriptions
    before other names; shortest first. "fever" finds "Fever, unspecified" before "Q
    fever", "ear" finds "Otitis externa, right ear" before "Early syphilis", and "renal
    failure" finds "Unspecified kidney failure" before "Kidney transplant failure". A
    word's other writings count as it ("bph" begins "Benign prostatic hyperplasia")."""
    text_words = _words(text)
    begins_with_it = any(w and text_words[: len(w)] == w for w in map(_words, options[0]))
    holds_them_whole = all(
        any(_holds_words(text_words, _words(option)) for option in writings) for writings in options
    )
    in_a_row = _holds_in_a_row(text_words, options)
    return (not in_a_row, not begins_with_it, not holds_them_whole, is_term, len(text))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _holds_in_a_row(text_words: list[str], options: Options) -> bool:
    """Whether a writing of each query word follows the previous word's in `text_words`."""
    ends = set(range(len(text_words)))  # where the next word may begin
    for writings in options:
        words = [w for w in map(_words, writings) if w]
        ends = {end + len(w) for end in ends for w in words if text_words[end : end + len(w)] == w}
    return bool(ends)


def _holds_words(text_words: list[str], words: list[str]) -> bool:
    """Whether `words` (at least one) occur in `text_words` one after another."""
    span = len(words)
    return span > 0 and any(
        text_words[i : i + span] == words for i in range(len(text_words) - span + 1)
    )


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
