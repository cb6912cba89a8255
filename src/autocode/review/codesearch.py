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
FUNCTION_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "by", "for", "in", "of", "on", "or"}
    | {"the", "to", "with", "without"}
)
SEARCHABLE_SYSTEMS = (ICD10CM, ICD10PCS, HCPCS, CPT)
Rank = tuple[bool, bool, bool, bool, bool, int]  # `_rank`: the smaller, the better the hit
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
        query_words = [_QueryWord.of(word) for word in words]
        hits: list[CodeHit] = []
        cpt = _CPT_NUMBER.fullmatch(query)
        if cpt and system in (None, CPT):
            hits.append(CodeHit(f"{CPT}:{cpt.group(1).upper()}", "CPT code (no description)"))
        prefix = f"{system}:" if system else ""
        found = [
            self.entries[k]
            for k in self._holding(query_words)
            if self.entries[k].code.startswith(prefix)
        ]
        # Codes the query begins, in code order, lead; only when they leave room are the
        # others ranked (a rank costs far more than a prefix test: "s" holds 100k names).
        code_prefix = words[0].replace(".", "")
        by_code = [e for e in found if _bare(e.code).startswith(code_prefix)][:limit]
        hits += [CodeHit(e.code, e.description, None, e.billable) for e in by_code]
        if len(hits) >= limit:
            return hits[:limit]
        ranked = sorted(
            (
                _ranked_hit(e, query_words)
                for e in found
                if not _bare(e.code).startswith(code_prefix)
            ),
            key=lambda pair: pair[0],
        )
        return (hits + [hit for _, hit in ranked])[:limit]

    def _holding(self, query: list[_QueryWord]) -> list[int]:
        """Positions of the entries that hold every query word, in index order: one pass
        over the index per writing (a comprehension over `in`, the fastest scan Python
        has), the other writings checked at a word's start only where found."""
        # Beside other words, "of" or "with" finds almost every name: scanning for it
        # costs most of a search and narrows nothing. It still counts in the ranking.
        scanned = [word for word in query if word.typed not in FUNCTION_WORDS] or query
        holding: set[int] | None = None
        for word in scanned:
            found = {k for k, haystack in enumerate(self._haystacks) if word.typed in haystack}
            for other, start in zip(word.others, word.at_start, strict=True):
                found.update(
                    k
                    for k, haystack in enumerate(self._haystacks)
                    if other in haystack and k not in found and start.search(haystack)
                )
            holding = found if holding is None else holding & found
        return sorted(holding or ())


def _bare(code: str) -> str:
    """The code's value without system or dot, lower-cased: "ICD10CM:R50.9" is "r509"."""
    return code.split(":", 1)[-1].replace(".", "").lower()


@dataclass(frozen=True)
class _QueryWord:
    """One word of a query: as typed, found anywhere (a prefix while the coder types);
    its other writings (`word_options`) only at a word's start, so that "liver" (for
    "hepatic") does not find "delivery" nor "bladder" (for "vesical") "gallbladder"."""

    typed: str
    others: tuple[str, ...]
    at_start: tuple[re.Pattern[str], ...]
    writings: tuple[tuple[str, ...], ...]  # each writing's words, the typed one first

    @classmethod
    def of(cls, word: str) -> _QueryWord:
        typed, *others = word_options(word)
        return cls(
            typed,
            tuple(others),
            tuple(re.compile(rf"(?<![a-z0-9]){re.escape(other)}") for other in others),
            tuple(tuple(_words(writing)) for writing in (typed, *others)),
        )

    def held_by(self, lowered: str) -> bool:
        """Whether the lower-cased text holds this word in one of its writings."""
        if self.typed in lowered:
            return True
        return any(
            other in lowered and start.search(lowered)  # the cheap test first
            for other, start in zip(self.others, self.at_start, strict=True)
        )


def _ranked_hit(entry: CodeEntry, query: list[_QueryWord]) -> tuple[Rank, CodeHit]:
    """The hit by the best of the texts that hold the query (its description, or another
    name, which the hit then names), with that text's rank."""
    texts = [(entry.description, False), *((term, True) for term in entry.terms)]
    holding = [(text, is_term) for text, is_term in texts if _holds(text.lower(), query)]
    best = min(
        ((_rank(text, query, is_term), text, is_term) for text, is_term in holding),
        default=None,
    )
    if best is None:  # found by its code's letters, or words spread over several texts
        return (True, True, True, True, True, len(entry.description)), CodeHit(
            entry.code, entry.description, None, entry.billable
        )
    rank, text, is_term = best
    return rank, CodeHit(entry.code, entry.description, text if is_term else None, entry.billable)


def _holds(lowered: str, query: list[_QueryWord]) -> bool:
    """Whether the lower-cased text holds one writing of each query word (function words
    aside, as `CodeIndex._holding` finds them)."""
    scanned = [word for word in query if word.typed not in FUNCTION_WORDS] or query
    return all(word.held_by(lowered) for word in scanned)


def _rank(text: str, query: list[_QueryWord], is_term: bool) -> Rank:
    """Texts holding the query's words one after another, then those whose first word is
    the query's first word, then those holding each of its words whole, then those found
    by the words as typed rather than by other writings; then descriptions before other
    names; shortest first. "fever" finds "Fever, unspecified" before "Q fever", "ear"
    finds "Otitis externa, right ear" before "Early syphilis", and "renal failure" finds
    "Unspecified kidney failure" before "Kidney transplant failure". A word's other
    writings count as it ("bph" begins "Benign prostatic hyperplasia")."""
    lowered = text.lower()
    text_words = _words(lowered)
    begins_with_it = any(w and text_words[: len(w)] == list(w) for w in query[0].writings)
    holds_them_whole = all(
        any(_holds_words(text_words, words) for words in word.writings) for word in query
    )
    # One word is in a row with itself: only a longer query needs the walk.
    in_a_row = _holds_in_a_row(text_words, query) if len(query) > 1 else holds_them_whole
    as_typed = all(word.typed in lowered for word in query)
    return (
        not in_a_row,
        not begins_with_it,
        not holds_them_whole,
        not as_typed,
        is_term,
        len(text),
    )


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _holds_in_a_row(text_words: list[str], query: list[_QueryWord]) -> bool:
    """Whether a writing of each query word follows the previous word's in `text_words`."""
    ends = set(range(len(text_words)))  # where the next word may begin
    for word in query:
        ends = {
            end + len(words)
            for end in ends
            for words in word.writings
            if words and text_words[end : end + len(words)] == list(words)
        }
        if not ends:
            return False
    return True


def _holds_words(text_words: list[str], words: tuple[str, ...]) -> bool:
    """Whether `words` (at least one) occur in `text_words` one after another."""
    span, wanted = len(words), list(words)
    return span > 0 and any(
        text_words[i : i + span] == wanted for i in range(len(text_words) - span + 1)
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


def search_systems(knowledge: CodeKnowledge) -> tuple[str, ...]:
    """The systems `_entries` gives `knowledge`'s index, without building it: HCPCS
    where the knowledge has the CMS file; CPT by number."""
    return tuple(s for s in SEARCHABLE_SYSTEMS if s != HCPCS or knowledge.hcpcs is not None)


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
