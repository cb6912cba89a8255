"""Term rules: mined terms whose affirmed mention codes their code without review.

A coder trusts some phrases outright: where a note says "type 2 diabetes mellitus" (not
negated, not about family), E11.9 is coded. The terms mined from annotated training notes
(`knowledge.mined`) are such phrases, but not all are that sure: "pain" is written in
many notes nobody coded R52 for. Each (code, term) pair is measured out of fold: the
training notes are split in folds, and for each fold the terms mined from the *other*
folds are looked for in its notes (`CandidateIndex`: the same normalisation, word order
and ConText blocking as the open part's names; a mention inside a longer found term does
not count). A term becomes a rule where enough held-out notes mention it and enough of
them had its code in gold; how many and how often is chosen so that the rules, checked
on notes their own counts never saw, meet `target_precision` (`fit_term_rules`). A
rule's code is then listed and accepted in every note that mentions its term
(`TermRules.accepted`).

Codes the review policy would send to review for want of support (most codes of a small
training set: `routing.min_support` asks for 20 validation positives per code) can so be
accepted on the strength of their words, where those words have been precise.

A term coded often, but not often enough to be a rule (`backing`: coded in at least
`backing_cut` of its held-out notes), backs its code: where the note mentions it, the
code is accepted from the backing threshold, the calibrated probability at which the
pairs so backed reach the target held out (`decisions.policy.backing_threshold`,
kept by the Coder). The words and the model then agree, and either alone is less sure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from autocode.knowledge.candidates import (
    CandidateIndex,
    Name,
    holding_names,
    icd10cm_index,
    name_words,
    named_more_specifically,
    names_around,
    renormalised,
    spans_of,
    worded_sentences,
)
from autocode.knowledge.context import saved_blocking
from autocode.knowledge.mined import MinedTerms, fingerprints

# 2: each rule keeps the words it was measured on; 3: uncertain mentions told apart
# from hypothetical ones (`context.UNCERTAIN`); 4: the code names that hold rule terms;
# 5: backing terms.
FORMAT_VERSION = 5
READS_FORMATS = (2, 3, 4, 5)
RULE_SYSTEM_PREFIX = "ICD10CM:"  # the system whose mined terms become rules
# The held-out precisions a term may be asked for, and how many held-out notes must
# mention it (from the configured `min_notes` up): the held-out check picks one of each.
PRECISION_CUTS = (0.8, 0.85, 0.9, 0.95, 1.0)
MIN_NOTES_STEPS = (3, 5, 8)
Key = tuple[str, tuple[str, ...]]  # a code and the normalised words of one of its terms
Span = tuple[int, int]  # characters of a note: [start, end)


@dataclass(frozen=True)
class TermRule:
    """A term that codes `code`: held out, `coded` of the `notes` mentioning it had it.
    `words`: the normalised words that were measured (`term` is how they were mined; its
    other variants, such as a head before "without", were measured apart or not at all)."""

    code: str
    term: str
    words: tuple[str, ...]
    notes: int
    coded: int

    @property
    def precision(self) -> float:
        return self.coded / self.notes


@dataclass
class TermRules:
    """The rules; the longer mined terms that can hold a rule's or backing term's mention
    (`terms`, code -> terms: a mention inside one does not count, as when it was
    measured); the contexts in which a mention does not count; the fit's report (its
    held-out check, kept even where no rule was chosen); and the backing terms (module
    docstring)."""

    rules: list[TermRule]
    terms: dict[str, list[str]]
    blocking: tuple[str, ...]
    report: dict[str, Any] = field(default_factory=dict)
    # The ICD-10-CM code names that can hold a rule's or backing term's mention
    # (`term_mentions`): those longer than the term and holding its words. None: no
    # mention is so held, as when rules saved before them (format 2 and 3) were measured.
    code_names: tuple[Name, ...] | None = None
    # Of the fit only, never saved: per training note (in the order given to
    # `fit_term_rules`), the codes that the rules chosen from the other folds' counts
    # accept in it, which the review policy is tuned beside (`train.fitting`).
    held_out_accepts: list[set[str]] = field(default_factory=list, compare=False, repr=False)
    backing: list[TermRule] = field(default_factory=list)
    # Of the fit only, as `held_out_accepts`: per training note, the codes that backing
    # terms chosen from the other folds' counts back in it.
    held_out_backed: list[set[str]] = field(default_factory=list, compare=False, repr=False)

    @cached_property
    def index(self) -> CandidateIndex:
        names = {code: list(terms) for code, terms in self.terms.items()}
        for rule in (*self.rules, *self.backing):
            names.setdefault(rule.code, []).append(rule.term)
        return CandidateIndex(names, self.blocking)

    @cached_property
    def code_name_index(self) -> CandidateIndex | None:
        if self.code_names is None:
            return None
        return CandidateIndex.of_names(self.code_names, ())

    @cached_property
    def _rule_keys(self) -> frozenset[Key]:
        return _keys(self.rules)

    @cached_property
    def _backing_keys(self) -> frozenset[Key]:
        return _keys(self.backing)

    def accepted(
        self, texts: Sequence[str], backable: Sequence[Collection[str]] | None = None
    ) -> list[dict[str, Span]]:
        """Per note, the codes whose rule terms it mentions (affirmed, in order, not
        inside a longer mined term), each with the characters of its first such mention:
        what an auditor reads to see why the code was accepted. `backable[i]`: the codes
        note i's backing terms may accept too (those the model scores at the Coder's
        backing threshold); None: rules only."""
        if not self.rules and not (self.backing and backable is not None):
            return [{} for _ in texts]
        rule_keys, backing_keys = self._rule_keys, self._backing_keys
        accepted: list[dict[str, Span]] = []
        for i, text in enumerate(texts):
            backed = () if backable is None else backable[i]
            spans: dict[str, Span] = {}
            found = term_mentions(self.index, text, self.code_name_index)
            for (code, words), span in sorted(found.items(), key=_at):
                key = (code, words)
                if key in rule_keys or (code in backed and key in backing_keys):
                    spans.setdefault(code, span)
            accepted.append(spans)
        return accepted

    def backed(self, texts: Sequence[str]) -> list[set[str]]:
        """Per note, the codes whose backing terms it mentions (as `accepted` reads
        mentions), whatever the model scores them."""
        keys = self._backing_keys
        if not keys:
            return [set() for _ in texts]
        return [
            {key[0] for key in term_mentions(self.index, text, self.code_name_index) if key in keys}
            for text in texts
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "blocking": list(self.blocking),
            "rules": _rows(self.rules),
            "backing": _rows(self.backing),
            "terms": self.terms,
            "report": self.report,
            "code_names": None
            if self.code_names is None
            else [name.to_row() for name in self.code_names],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TermRules:
        if state.get("format") not in READS_FORMATS:
            raise ValueError(
                f"term rules format {state.get('format')!r}, expected one of {READS_FORMATS}"
            )
        terms = {code: list(found) for code, found in state["terms"].items()}
        blocking = saved_blocking(state["blocking"], uncertain_apart=state["format"] >= 3)
        report = dict(state.get("report", {}))
        rows = state.get("code_names")
        code_names = None if rows is None else tuple(Name.from_row(row) for row in rows)
        return cls(
            _from_rows(state["rules"]),
            terms,
            blocking,
            report,
            code_names,
            backing=_from_rows(state.get("backing", [])),
        )


def _keys(rules: Sequence[TermRule]) -> frozenset[Key]:
    # The words as measured, and renormalised: words saved by an earlier autocode meet
    # today's index. Both, as normalising twice can read further: "metástasis" passes
    # the word table with its accent, and read again as "metastasis" it is rewritten.
    return frozenset(
        key for r in rules for key in ((r.code, r.words), (r.code, renormalised(r.words)))
    )


def _rows(rules: Sequence[TermRule]) -> list[list[Any]]:
    return [[r.code, r.term, list(r.words), r.notes, r.coded] for r in rules]


def _from_rows(rows: Sequence[Sequence[Any]]) -> list[TermRule]:
    return [TermRule(code, term, tuple(words), int(n), int(k)) for code, term, words, n, k in rows]


def term_mentions(
    index: CandidateIndex, text: str, code_names: CandidateIndex | None = None
) -> dict[Key, Span]:
    """(code, words of its term) for every term the note mentions affirmed and in order,
    where no longer term found in order holds the mention; each with its first mention.
    Given `code_names` (ICD-10-CM code names, `icd10cm_names`), nor does a longer code
    name that names other codes: "fever" in "dengue fever" (A90) is not fever (R50.9),
    nor "pain" in "abdominal pain" (R10.9) pain (R52), as a coder codes the most
    specific term."""
    # A rule is its words in their order.
    sentences = worded_sentences(text)
    found_terms = index.mentions_in(text, sentences, reordered=False)
    mentions = [m for m in found_terms if not index.is_blocked(m)]
    named = names_around(code_names, text, sentences, mentions)
    around = spans_of(mentions)
    found: dict[Key, Span] = {}
    for mention in sorted(mentions, key=lambda m: (m.start, m.end)):
        if not index.inside_longer(mention, around):
            name = index.names[mention.name]
            for code in name.codes:
                if not named_more_specifically(mention, name, code, named):
                    found.setdefault((code, name.words), (mention.start, mention.end))
    return found


def _at(item: tuple[Key, Span]) -> Span:
    return item[1]


def fit_term_rules(
    texts: Sequence[str],
    code_lists: Sequence[Sequence[str]],
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    mined: MinedTerms,
    *,
    blocking: Sequence[str],
    target_precision: float,
    min_support: int,
    min_notes: int = 2,
    codes: Collection[str] | None = None,
    code_names: bool = False,
    backing_cut: float | None = None,
) -> TermRules:
    """Rules from held-out mentions of terms mined from the other folds (module docstring).
    `codes`: those a rule may accept (the Coder's label space; None: any ICD-10-CM code
    of the training notes), so that the check counts only what the Coder will accept.
    `backing_cut`: the held-out share of coded notes (over `min_notes` or more) that
    makes a term that is no rule a backing term; None: no backing terms.

    Which held-out precision a term needs (`cut`), and on how many held-out notes
    (`min_notes` or more), is itself chosen held out: a term's precision measured on a
    few notes flatters the terms picked for it, so each fold's notes are scored by the
    rules the other folds' counts pick. Of the choices whose rules so reach
    `target_precision` over at least `min_support` (note, code) pairs, the one accepting
    the most pairs is used. Where none does, there are no rules.
    """
    names = icd10cm_index(frozenset()) if code_names else None
    per_fold = [
        held_out_counts(texts, code_lists, fit_rows, held_rows, mined, blocking, codes, names)
        for fit_rows, held_rows in folds
    ]
    notes: Counter[Key] = Counter()
    coded: Counter[Key] = Counter()
    spelling: dict[Key, str] = {}
    for fold in per_fold:
        notes.update(fold.notes)
        coded.update(fold.coded)
        spelling.update({k: v for k, v in fold.spelling.items() if k not in spelling})
    # Each (notes a term needs, precision it needs) is checked held out; the one that
    # accepts the most pairs at the target is used.
    checked = {
        (needed, cut): _checked_precision(per_fold, notes, coded, cut, needed)
        for needed in sorted({min_notes, *(m for m in MIN_NOTES_STEPS if m > min_notes)})
        for cut in PRECISION_CUTS
    }
    reaching = [
        (pairs, cut, needed)
        for (needed, cut), (pairs, precision) in checked.items()
        if pairs >= min_support and precision >= target_precision
    ]
    chosen = max(reaching) if reaching else None
    rules = [] if chosen is None else _terms(notes, coded, spelling, chosen[1], chosen[2])
    report = {
        "held_out_terms": len(notes),
        "rules": len(rules),
        "cut": None if chosen is None else chosen[1],
        "min_notes": None if chosen is None else chosen[2],
        "checked": {
            f"{needed} notes, {cut}": {"pairs": n, "precision": p}
            for (needed, cut), (n, p) in checked.items()
        },
    }
    held_out_accepts: list[set[str]] = [set() for _ in texts]
    if chosen is not None:
        held_out_accepts = _held_out(folds, per_fold, notes, coded, chosen[1], chosen[2])
    backing: list[TermRule] = []
    held_out_backed: list[set[str]] = [set() for _ in texts]
    if backing_cut is not None:
        rule_keys = {(rule.code, rule.words) for rule in rules}
        backing = [
            term
            for term in _terms(notes, coded, spelling, backing_cut, min_notes)
            if (term.code, term.words) not in rule_keys
        ]
        # What the rules accept is theirs: backed are the other codes.
        held_out_backed = [
            backed - accepted
            for backed, accepted in zip(
                _held_out(folds, per_fold, notes, coded, backing_cut, min_notes),
                held_out_accepts,
                strict=True,
            )
        ]
        report |= {"backing_terms": len(backing), "backing_cut": backing_cut}
    terms = [*rules, *backing]
    return TermRules(
        rules,
        _holding_terms(terms, texts, code_lists, mined),
        tuple(blocking),
        report,
        None if names is None else holding_code_names(terms, names),
        held_out_accepts,
        backing=backing,
        held_out_backed=held_out_backed,
    )


def _terms(
    notes: Counter[Key], coded: Counter[Key], spelling: dict[Key, str], cut: float, min_notes: int
) -> list[TermRule]:
    """The terms mentioned in `min_notes` or more held-out notes and coded in `cut` of them,
    in key order."""
    return [
        TermRule(key[0], spelling[key], key[1], notes[key], coded[key])
        for key in sorted(notes)
        if _is_rule(notes[key], coded[key], cut, min_notes)
    ]


def _held_out(
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    per_fold: Sequence[FoldCounts],
    notes: Counter[Key],
    coded: Counter[Key],
    cut: float,
    min_notes: int,
) -> list[set[str]]:
    """Per training note, the codes its terms get accepted by the terms that the other
    folds' counts make at `cut` (`_fold_accepts`)."""
    accepted: list[set[str]] = [set() for _ in range(sum(len(held) for _, held in folds))]
    for (_, held_rows), fold in zip(folds, per_fold, strict=True):
        for row, codes in zip(
            held_rows, _fold_accepts(fold, notes, coded, cut, min_notes), strict=True
        ):
            accepted[row] = codes
    return accepted


def _holding_terms(
    rules: Sequence[TermRule],  # and backing terms
    texts: Sequence[str],
    code_lists: Sequence[Sequence[str]],
    mined: MinedTerms,
) -> dict[str, list[str]]:
    """The mined terms of all training notes that can hold a rule's (or backing term's)
    mention (their words include its): a term found inside one does not count, as when
    measured. Only these are kept with the rules, not every mined phrase."""
    if not rules:
        return {}
    every_note = fingerprints(texts)
    rule_words = [(frozenset(rule.words), len(rule.words)) for rule in rules]
    codes = sorted({c for codes in code_lists for c in codes if c.startswith(RULE_SYSTEM_PREFIX)})
    holding: dict[str, list[str]] = {}
    for code in codes:
        for term in mined.terms(code, every_note):
            # As long as a rule's words or longer, and holding them all (a term of the
            # same words may bring contexts of its own to the index).
            if any(
                len(words) >= length and needed <= set(words)
                for words in name_words(term)
                for needed, length in rule_words
            ):
                holding.setdefault(code, []).append(term)
    return holding


def holding_code_names(rules: Sequence[TermRule], names: CandidateIndex) -> tuple[Name, ...]:
    """The code names that can hold a rule's mention (`holding_names`): only these are
    kept with the rules, so that a loaded Coder never indexes every code."""
    return holding_names({w for r in rules for w in (r.words, renormalised(r.words)) if w}, names)


@dataclass
class FoldCounts:
    """Of one held-out fold: per (code, term words), the notes mentioning it and those
    among them whose gold has the code; and per note, the keys it mentioned and its gold."""

    notes: Counter[Key]
    coded: Counter[Key]
    spelling: dict[Key, str]
    per_note: list[tuple[set[Key], set[str]]]


def held_out_counts(
    texts: Sequence[str],
    code_lists: Sequence[Sequence[str]],
    fit_rows: np.ndarray,
    held_rows: np.ndarray,
    mined: MinedTerms,
    blocking: Sequence[str],
    codes: Collection[str] | None,
    code_names: CandidateIndex | None = None,
) -> FoldCounts:
    """The mined terms of `fit_rows`' notes (and codes), looked for in `held_rows`' notes
    (`term_mentions`)."""
    counts = FoldCounts(Counter(), Counter(), {}, [])
    fit_notes = fingerprints(texts[i] for i in fit_rows)
    seen = {c for i in fit_rows for c in code_lists[i] if c.startswith(RULE_SYSTEM_PREFIX)}
    if codes is not None:
        seen &= set(codes)
    names = {code: terms for code in sorted(seen) if (terms := mined.terms(code, fit_notes))}
    if not names:  # no term to look for: every held-out note mentions none
        counts.per_note = [(set(), set(code_lists[i])) for i in held_rows]
        return counts
    index = CandidateIndex(names, blocking)
    for code, terms in names.items():
        for term in terms:
            for words in name_words(term):
                counts.spelling.setdefault((code, words), term)
    for i in held_rows:
        gold = set(code_lists[i])
        mentioned = set(term_mentions(index, texts[i], code_names))
        counts.per_note.append((mentioned, gold))
        for key in mentioned:
            counts.notes[key] += 1
            counts.coded[key] += key[0] in gold
    return counts


def _is_rule(notes: int, coded: int, cut: float, min_notes: int) -> bool:
    return notes >= min_notes and coded >= cut * notes


def _checked_precision(
    per_fold: Sequence[FoldCounts],
    notes: Counter[Key],
    coded: Counter[Key],
    cut: float,
    min_notes: int,
) -> tuple[int, float]:
    """(Note, code) pairs that each fold's notes get accepted by the rules the other
    folds' counts (all folds' `notes` and `coded` less the fold's own) make at `cut`,
    and their precision, pooled over the folds (a note mentioning two rule terms of one
    code is one pair, as the Coder accepts it once)."""
    pairs = hits = 0
    for fold in per_fold:
        accepts = _fold_accepts(fold, notes, coded, cut, min_notes)
        for accepted, (_, gold) in zip(accepts, fold.per_note, strict=True):
            pairs += len(accepted)
            hits += len(accepted & gold)
    return pairs, hits / pairs if pairs else 0.0


def _fold_accepts(
    fold: FoldCounts, notes: Counter[Key], coded: Counter[Key], cut: float, min_notes: int
) -> list[set[str]]:
    """Per note of the fold, the codes the rules made at `cut` from the other folds'
    counts accept in it."""
    return [
        {
            key[0]
            for key in mentioned
            if _is_rule(notes[key] - fold.notes[key], coded[key] - fold.coded[key], cut, min_notes)
        }
        for mentioned, _ in fold.per_note
    ]
