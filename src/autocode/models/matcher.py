"""The matcher: how fully each code's own terms appear in one sentence of the note.

It reads what codes mean from the label space's `knowledge` (descriptions, inclusion
terms, families, and terms mined from annotated training notes: only those mined from
the notes it is fitted on) and learns only text and term statistics: word weights (idf)
from the training notes, and per code how often a full term match meant the code
(`CodeFacts`).
On its own its score is the best term coverage; in a stack (`stack.StackModel`) it gives
the re-ranker the features of each (note, code) pair listed in `MATCHER_FEATURES`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from autocode.knowledge import FULL_MATCH, CodeLexicon, LabelTerms, TermMatches
from autocode.knowledge.candidates import icd10cm_index
from autocode.knowledge.context import NOT_CODED
from autocode.knowledge.lexicon import Places
from autocode.labels import LabelSpace
from autocode.models.base import (
    Folds,
    LabelMatrix,
    NotFittedError,
    check_fit_input,
    constructor_params,
)
from autocode.models.evidence import EvidenceSpan, RecentBatches
from autocode.models.params import check_params, constructor_params_model
from autocode.models.rerank import group_max
from autocode.models.saved import read_arrays, read_json, write_arrays, write_json

PARAMS_FILE = "params.json"
STATE_FILE = "matcher.json"  # label codes and their terms
ARRAYS_FILE = "matcher.npz"  # the lexicon's idf and the code facts
# Of every file above; 2: Unicode words (`CodeLexicon`); version 1 files load with ASCII ones.
FORMAT_VERSION = 2
READS_VERSIONS = (1, 2)
PRIOR_MATCHES = 2.0  # pseudo-counts pulling a code's term precision toward all codes' own

MATCHER_FEATURES = (
    "term_coverage",
    "term_full_match",
    "term_log_full_sentences",
    "description_coverage",
    "group_coverage",
    "group_full_match",
    "term_gap_to_best_sibling",
    "log_train_count",
    "log_group_train_count",
    "has_terms",
    "is_unspecified",
    "is_other",
    "code_length",
    "full_match_x_log_train_count",
    "full_match_x_unspecified",
    "term_match_precision",
)
CONTEXT_FEATURES = ("name_affirmed_mentions", "name_mentioned_only_in_context")


class MatcherModel:
    """`candidate_coverage`: the term coverage (0 to 1, default 0.5) from which a pair is
    worth a stack's learning, and from which a term's words are shown as evidence.

    Parameters
    ----------
    candidate_coverage : float, default 0.5
        The best term coverage in one sentence (the share of a term's idf-weighted words
        found) from which a (note, code) pair is a candidate: a hard pair a stack's
        re-ranker learns from, and a code whose term words `evidence` shows; 0 to 1.
        It does not change `predict_proba`.
    context_features : bool, default False
        Adds `CONTEXT_FEATURES` to the pair features: how often the note mentions one of
        the code's names (over the whole ICD-10-CM name index, `knowledge.candidates`)
        outside negated, hypothetical, uncertain and family-history context
        (`context.NOT_CODED`), and whether it
        mentions them only inside such context ("no fever"). A stack's re-ranker learns
        how much that counts.
    """

    def __init__(self, *, candidate_coverage: float = 0.5, context_features: bool = False) -> None:
        self.candidate_coverage = candidate_coverage
        self.context_features = context_features

    @property
    def pair_feature_names(self) -> tuple[str, ...]:
        return MATCHER_FEATURES + (CONTEXT_FEATURES if self.context_features else ())

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    def fit(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        labels: LabelSpace,
        validation: tuple[Sequence[str], LabelMatrix] | None = None,
        groups: Sequence[str] | None = None,
    ) -> Self:
        """Terms from `labels.knowledge` (its mined terms: those mined from `texts`), idf
        and code facts from `texts` and `Y`. `validation` and `groups` are unused."""
        check_params(self, MatcherParams)
        check_fit_input(texts, Y, labels, groups, validation)
        terms = LabelTerms.build(labels.codes_, labels.knowledge, texts)
        gold = sp.csr_matrix(Y, dtype=bool)  # sparse: MIMIC-size Y stays small
        facts = CodeFacts.build(terms, gold, terms.full_matches(texts))
        return self._set_state(terms, facts)

    def fold_models(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        labels: LabelSpace,
        folds: Folds,
        groups: Sequence[str] | None = None,
    ) -> Iterator[MatcherModel]:
        """One matcher per fold whose code facts count only the fold's fit rows, and whose
        mined terms (`knowledge.mined`) come from the fit rows only: a held-out note's own
        annotated mentions never match it.

        The idf comes from every note: it reads no labels, so a held-out note's words may
        weigh terms as every training note's do. Without mined terms, every fold has the
        same terms, matched once.
        """
        check_params(self, MatcherParams)
        check_fit_input(texts, Y, labels, groups)
        gold = sp.csr_matrix(Y, dtype=bool)
        for (fit_rows, _), (terms, matched) in zip(
            folds, fold_terms(texts, labels, folds), strict=True
        ):
            facts = CodeFacts.build(terms, gold[fit_rows], matched)
            yield type(self)(**self.get_params())._set_state(terms, facts)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """The best coverage of any of each code's terms in any one sentence."""
        return self._match(texts)[0].best

    def pair_features(self, texts: Sequence[str]) -> np.ndarray:
        """(notes, labels, len(pair_feature_names)) features, in that order."""
        columns = np.broadcast_arrays(*self.pair_feature_columns(texts))
        return np.stack(columns, axis=-1, dtype=np.float32)

    def pair_feature_columns(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The features of `pair_features`, one column each, not stacked; a feature that
        is the same in every note (what is known of the code) is one (labels,) row."""
        terms, facts = self._fitted()
        own, group = self._match(texts)
        columns = matcher_feature_columns(own, group, facts)
        if self.context_features:
            columns += context_feature_columns(texts, terms.codes)
        return columns

    def candidates(self, features: np.ndarray) -> np.ndarray:
        return features[..., MATCHER_FEATURES.index("term_coverage")] >= self.candidate_coverage

    def evidence(
        self, text: str, label_indices: Sequence[int], top_n: int = 3
    ) -> list[list[EvidenceSpan]]:
        """Every word of the code's best-matching term (weight: its coverage) when that
        coverage reaches `candidate_coverage`: a term is shown whole or not at all, so
        `top_n` does not cut it."""
        return self.evidence_batch([text], [label_indices], top_n)[0]

    def evidence_batch(
        self, texts: Sequence[str], label_indices: Sequence[Sequence[int]], top_n: int = 3
    ) -> list[list[list[EvidenceSpan]]]:
        """`evidence` of each note: where each code's best term matched, as prediction found
        it for the same texts (remembered; else matched again)."""
        terms, _ = self._fitted()
        places = self._recent_places().find(texts)
        if places is None:
            places = terms.match(texts, places_from=self.candidate_coverage)[0].places
        assert places is not None
        result: list[list[list[EvidenceSpan]]] = []
        for note, (text, labels) in enumerate(zip(texts, label_indices, strict=True)):
            found = places.find(note, labels) if labels else []
            if not any(found):
                result.append([[] for _ in labels])
                continue
            spans = terms.lexicon.spans_at(text, found)
            result.append([self._term_spans(*label_spans) for label_spans in spans])
        return result

    def _term_spans(self, coverage: float, hits: list[tuple[int, int]]) -> list[EvidenceSpan]:
        if coverage < self.candidate_coverage:
            return []
        return [EvidenceSpan(start, end, coverage) for start, end in hits]

    def save(self, path: Path) -> None:
        terms, facts = self._fitted()
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / PARAMS_FILE, {"params": self.get_params()}, FORMAT_VERSION)
        state = {
            "labels": self.labels_,
            "terms": terms.lexicon.terms,
            "unicode_words": terms.lexicon.unicode_words,
            "typed_letters": terms.lexicon.typed_letters,
        }
        write_json(path / STATE_FILE, state, FORMAT_VERSION)
        arrays = {"lexicon.idf": terms.lexicon.idf_}
        arrays |= {f"facts.{name}": a for name, a in facts.as_arrays().items()}
        write_arrays(path / ARRAYS_FILE, arrays, FORMAT_VERSION)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Rebuilds the matcher from JSON and arrays: loading runs no saved code."""
        model = cls(**read_json(path / PARAMS_FILE, READS_VERSIONS)["params"])
        state = read_json(path / STATE_FILE, READS_VERSIONS)
        arrays = read_arrays(path / ARRAYS_FILE, READS_VERSIONS)
        unicode_words = state.get("unicode_words", False)  # version 1: ASCII words
        typed_letters = state.get("typed_letters", False)  # saved before: "A" a stop word
        lexicon = CodeLexicon(
            state["terms"], unicode_words=unicode_words, typed_letters=typed_letters
        )
        lexicon.set_idf(arrays["lexicon.idf"])
        facts = {
            name[len("facts.") :]: a for name, a in arrays.items() if name.startswith("facts.")
        }
        return model._set_state(
            LabelTerms.with_lexicon(state["labels"], lexicon), CodeFacts(**facts)
        )

    def _set_state(self, terms: LabelTerms, facts: CodeFacts) -> Self:
        self.terms_ = terms
        self.facts_ = facts
        self.labels_ = list(terms.codes)
        vars(self).pop("_evidence_places", None)  # evidence cache of the old terms
        return self

    def _match(self, texts: Sequence[str]) -> tuple[TermMatches, TermMatches]:
        """`terms_.match(texts)`; where the codes that show evidence matched is remembered."""
        terms, _ = self._fitted()
        own, group = terms.match(texts, places_from=self.candidate_coverage)
        assert own.places is not None
        self._recent_places().remember(texts, own.places)
        return own, group

    def _recent_places(self) -> RecentBatches[Places]:
        recent: RecentBatches[Places] = vars(self).setdefault("_evidence_places", RecentBatches())
        return recent

    def _fitted(self) -> tuple[LabelTerms, CodeFacts]:
        if not hasattr(self, "facts_"):
            raise NotFittedError(
                "MatcherModel is not fitted yet: call fit(texts, Y, labels=...) first"
            )
        return self.terms_, self.facts_


MatcherParams = constructor_params_model(
    MatcherModel,
    "MatcherParams",
    candidate_coverage=Annotated[float, Field(ge=0, le=1)],
    context_features=bool,
)


@dataclass
class CodeFacts:
    """What is known of each label before reading a note; arrays have one entry per label."""

    group: np.ndarray  # index of the label's group (code family)
    log_train_count: np.ndarray
    log_group_train_count: np.ndarray
    has_terms: np.ndarray
    is_unspecified: np.ndarray
    is_other: np.ndarray
    code_length: np.ndarray
    term_matches: np.ndarray  # training notes where a term of the label fully matched
    term_match_hits: np.ndarray  # ... of which the label was gold

    @classmethod
    def build(
        cls, terms: LabelTerms, gold: sp.csr_matrix, term_matched: sp.csr_matrix
    ) -> CodeFacts:
        """`gold` and `term_matched` are (training notes, labels) booleans."""
        codes, groups = terms.codes, terms.groups
        code_terms = terms.lexicon.terms[: len(codes)]
        train_counts = np.asarray(gold.sum(axis=0), np.float64).ravel()
        group = family_index(groups)
        group_counts = np.bincount(group, weights=train_counts, minlength=len(set(groups)))
        descriptions = [t[0].lower() if t else "" for t in code_terms]
        return cls(
            group=group,
            log_train_count=np.log1p(train_counts).astype(np.float32),
            log_group_train_count=np.log1p(group_counts[group]).astype(np.float32),
            has_terms=np.array([bool(t) for t in code_terms], np.float32),
            is_unspecified=np.array(["unspecified" in d for d in descriptions], np.float32),
            is_other=np.array(["other" in d.split() for d in descriptions], np.float32),
            code_length=np.array(
                [len(c.split(":", 1)[1].replace(".", "")) for c in codes], np.float32
            ),
            term_matches=np.asarray(term_matched.sum(axis=0), np.float32).ravel(),
            term_match_hits=np.asarray(term_matched.multiply(gold).sum(axis=0), np.float32).ravel(),
        )

    def term_precision(self) -> np.ndarray:
        """How often a full match of the label's term meant the label, smoothed toward the
        rate over all labels (`PRIOR_MATCHES` pseudo-matches)."""
        prior = self.term_match_hits.sum() / max(float(self.term_matches.sum()), 1.0)
        smoothed = (self.term_match_hits + PRIOR_MATCHES * prior) / (
            self.term_matches + PRIOR_MATCHES
        )
        return smoothed.astype(np.float32)

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def fold_terms(
    texts: Sequence[str], labels: LabelSpace, folds: Folds
) -> Iterator[tuple[LabelTerms, sp.csr_matrix]]:
    """Per fold, the terms its matcher uses and their full matches in its fit rows.
    Without mined terms every fold has the same terms, matched once; with them, each
    fold's mined terms are those of its fit rows."""
    knowledge = labels.knowledge
    if knowledge.mined is None:
        terms = LabelTerms.build(labels.codes_, knowledge, texts)
        matched = terms.full_matches(texts)
        for fit_rows, _ in folds:
            yield terms, matched[fit_rows]
        return
    for fit_rows, _ in folds:
        fit_texts = [texts[i] for i in fit_rows]
        terms = LabelTerms.build(labels.codes_, knowledge, texts, mined_from=fit_texts)
        yield terms, terms.full_matches(fit_texts)


def context_feature_columns(texts: Sequence[str], codes: Sequence[str]) -> list[np.ndarray]:
    """(notes, labels) columns of `CONTEXT_FEATURES`: log(1 + mentions of the code's names
    in no `NOT_CODED` context: negated, hypothetical, uncertain or about family), and 1
    where every mention is."""
    index = icd10cm_index(frozenset(NOT_CODED))
    column = {code: j for j, code in enumerate(codes)}
    affirmed = np.zeros((len(texts), len(codes)), np.float32)
    only_in_context = np.zeros_like(affirmed)
    for i, text in enumerate(texts):
        for code, candidate in index.mentioned(text).items():
            j = column.get(code)
            if j is not None:
                affirmed[i, j] = np.log1p(candidate.affirmed)
                only_in_context[i, j] = float(candidate.affirmed == 0)
    return [affirmed, only_in_context]


def family_index(groups: Sequence[str]) -> np.ndarray:
    """Each label's family as an index into the sorted family names."""
    index = {name: k for k, name in enumerate(sorted(set(groups)))}
    return np.array([index[g] for g in groups], dtype=np.int64)


def matcher_features(own: TermMatches, group: TermMatches, facts: CodeFacts) -> np.ndarray:
    """(notes, labels, len(MATCHER_FEATURES)) features; `own`/`group` match each label / its
    group. For a stack's training notes, `facts` must come from the other folds: a note's
    own labels may not count in the features it learns from."""
    columns = np.broadcast_arrays(*matcher_feature_columns(own, group, facts))
    return np.stack(columns, axis=-1, dtype=np.float32)


def matcher_feature_columns(
    own: TermMatches, group: TermMatches, facts: CodeFacts
) -> list[np.ndarray]:
    """The columns of `matcher_features`, in order; those that are what is known of each
    code, the same in every note, are (labels,) rows."""
    full = (own.best >= FULL_MATCH).astype(np.float32)
    return [
        own.best,
        full,
        np.log1p(own.full_sentences),
        own.best_description,
        group.best,
        (group.best >= FULL_MATCH).astype(np.float32),
        own.best - group_max(own.best, facts.group),
        facts.log_train_count,
        facts.log_group_train_count,
        facts.has_terms,
        facts.is_unspecified,
        facts.is_other,
        facts.code_length,
        full * facts.log_train_count,
        full * facts.is_unspecified,
        full * facts.term_precision(),
    ]
