"""The terms of a label space's codes and of their families, and where notes match them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from autocode.knowledge.code_knowledge import CodeKnowledge
from autocode.knowledge.lexicon import FULL_MATCH, CodeLexicon, TermMatches
from autocode.knowledge.mined import fingerprints
from autocode.knowledge.terms import code_group

logger = logging.getLogger(__name__)

# Notes matched at once: one dense (notes, terms) block for 50k notes would take gigabytes.
MATCH_BUDGET = 2**22  # (notes x labels) cells per block


@dataclass(frozen=True)
class LabelTerms:
    """The lexicon of the labels' terms, then of each label family's (`code_group`) terms:
    `group_rows[j]` is the lexicon row of label j's family, `groups[j]` its name."""

    codes: list[str]
    lexicon: CodeLexicon
    group_rows: np.ndarray
    groups: list[str]

    @classmethod
    def build(
        cls,
        codes: Sequence[str],
        knowledge: CodeKnowledge,
        texts: Sequence[str],
        mined_from: Sequence[str] | None = None,
    ) -> LabelTerms:
        """Terms from `knowledge`; word weights (idf) from the training notes `texts`.

        Where `knowledge` holds mined terms, each code's and family's terms mined from the
        notes `mined_from` (default: `texts`) follow its listed terms: a model fitted on
        some notes uses only what was mined from those notes.
        """
        group_names = sorted({code_group(code) for code in codes})
        terms = [knowledge.terms(code) for code in [*codes, *group_names]]
        if knowledge.mined is not None:
            notes = fingerprints(texts if mined_from is None else mined_from)
            mined = [knowledge.mined.terms(code, notes) for code in codes]
            mined += [knowledge.mined.family_terms(group, notes) for group in group_names]
            # Counts only: a fit whose notes are not the mined ones (English translations of
            # Spanish notes) finds none, which should be visible.
            logger.info(
                "mined terms: %d kept for %d of %d codes and families (from %d fit notes)",
                sum(map(len, mined)),
                sum(1 for found in mined if found),
                len(mined),
                len(notes),
            )
            terms = [_with_mined(listed, found) for listed, found in zip(terms, mined, strict=True)]
        return cls.with_lexicon(codes, CodeLexicon(terms).fit(texts))

    @classmethod
    def with_lexicon(cls, codes: Sequence[str], lexicon: CodeLexicon) -> LabelTerms:
        """From a fitted lexicon whose rows are `codes`, then their sorted families."""
        groups = [code_group(code) for code in codes]
        row = {name: len(codes) + k for k, name in enumerate(sorted(set(groups)))}
        if len(lexicon) != len(codes) + len(row):
            raise ValueError(
                f"lexicon has {len(lexicon)} rows; {len(codes)} codes and {len(row)} families"
            )
        group_rows = np.array([row[g] for g in groups], dtype=np.int64)
        return cls(codes=list(codes), lexicon=lexicon, group_rows=group_rows, groups=groups)

    def match(
        self, texts: Sequence[str], places_from: float | None = None
    ) -> tuple[TermMatches, TermMatches]:
        """How well each label's own terms, and its family's, matched each note; with
        `places_from`, the labels' own matches also say where (`TermMatches.places`)."""
        matches = self.lexicon.match(texts, places_from)
        own = _columns(matches, np.arange(len(self.codes)))
        if matches.places is not None:  # the lexicon's first rows are the labels'
            own.places = matches.places.codes_below(len(self.codes))
        return own, _columns(matches, self.group_rows)

    def full_matches(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(notes, labels) True where a term of the label fully matched a sentence."""
        blocks = [
            sp.csr_matrix(
                self.lexicon.match([texts[i] for i in rows]).best[:, : len(self.codes)]
                >= FULL_MATCH
            )
            for rows in note_blocks(len(texts), len(self.codes), MATCH_BUDGET)
        ]
        if not blocks:
            return sp.csr_matrix((0, len(self.codes)), dtype=bool)
        return sp.vstack(blocks, format="csr")


def _with_mined(listed: list[str], mined: list[str]) -> list[str]:
    """Listed terms, then mined ones. A code without a listed description gets an empty
    one first: a lexicon's first term of a code is its description, and a mined mention
    is not."""
    if not mined:
        return listed
    return [*(listed or [""]), *(term for term in mined if term not in listed)]


def note_blocks(n_notes: int, n_labels: int, budget: int) -> list[np.ndarray]:
    """Consecutive note indices, at most `budget` (note, label) cells per block."""
    per_block = max(1, budget // max(1, n_labels))
    return [np.arange(a, min(a + per_block, n_notes)) for a in range(0, n_notes, per_block)]


def _columns(matches: TermMatches, columns: np.ndarray) -> TermMatches:
    return TermMatches(
        best=matches.best[:, columns],
        full_sentences=matches.full_sentences[:, columns],
        best_description=matches.best_description[:, columns],
    )
