"""Features of one (note, code) pair for the re-ranker, and the linear re-ranker itself.

Stage-1 scores know which words co-occurred with a code in training; the code's own terms
know what it is called. With a few hundred training notes most codes are seen once or twice,
so the first signal is thin and the second decides: these features let a logistic
regression weigh them per pair, with what a coder also weighs (is a sibling code a better
match? is this the "unspecified" default of its family? how common is the code?).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from autocode.models.lexicon import FULL_MATCH, TermMatches

FEATURES = (
    "stage1_logit",
    "stage1_log_rank",
    "stage1_share_of_note_max",
    "stage1_gap_to_best_sibling",
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
LOGIT_CLIP = 12.0
PRIOR_MATCHES = 2.0  # pseudo-counts pulling a code's term precision toward all codes' own


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
        cls,
        codes: Sequence[str],
        groups: Sequence[str],
        terms: Sequence[Sequence[str]],
        gold: sp.csr_matrix,
        term_matched: sp.csr_matrix,
    ) -> CodeFacts:
        """`gold` and `term_matched` are (training notes, labels) booleans."""
        train_counts = np.asarray(gold.sum(axis=0), np.float64).ravel()
        index = {name: k for k, name in enumerate(sorted(set(groups)))}
        group = np.array([index[g] for g in groups], dtype=np.int64)
        group_counts = np.bincount(group, weights=train_counts, minlength=len(index))
        descriptions = [t[0].lower() if t else "" for t in terms]
        return cls(
            group=group,
            log_train_count=np.log1p(train_counts).astype(np.float32),
            log_group_train_count=np.log1p(group_counts[group]).astype(np.float32),
            has_terms=np.array([bool(t) for t in terms], np.float32),
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


def pair_features(
    scores: np.ndarray, own: TermMatches, group: TermMatches, facts: CodeFacts
) -> np.ndarray:
    """(notes, labels, len(FEATURES)) features; `own`/`group` match each label / its group.

    For training notes, `facts` must come from the other folds, as their scores do: a
    note's own labels may not count in the features it learns from.
    """
    clipped = np.clip(scores, 1e-6, 1 - 1e-6)
    logit = np.clip(np.log(clipped / (1 - clipped)), -LOGIT_CLIP, LOGIT_CLIP)
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(scores.shape[1])[None, :], axis=1)
    note_max = scores.max(axis=1, keepdims=True)
    full = (own.best >= FULL_MATCH).astype(np.float32)
    columns = [
        logit,
        np.log1p(rank),
        scores / np.maximum(note_max, 1e-12),
        scores - _group_max(scores, facts.group),
        own.best,
        full,
        np.log1p(own.full_sentences),
        own.best_description,
        group.best,
        (group.best >= FULL_MATCH).astype(np.float32),
        own.best - _group_max(own.best, facts.group),
        *(
            np.broadcast_to(value, scores.shape)
            for value in (
                facts.log_train_count,
                facts.log_group_train_count,
                facts.has_terms,
                facts.is_unspecified,
                facts.is_other,
                facts.code_length,
            )
        ),
        full * facts.log_train_count,
        full * facts.is_unspecified,
        full * facts.term_precision(),
    ]
    return np.stack(columns, axis=-1, dtype=np.float32)


def _group_max(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For each label, the largest value among the labels of its group (itself included)."""
    order = np.argsort(group, kind="stable")
    groups, first = np.unique(group[order], return_index=True)
    per_group = np.zeros((values.shape[0], int(group.max()) + 1), values.dtype)
    per_group[:, groups] = np.maximum.reduceat(values[:, order], first, axis=1)
    return per_group[:, group]


@dataclass
class Reranker:
    """A standardised logistic regression over `FEATURES`."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def fit(
        cls, X: np.ndarray, y: np.ndarray, weights: np.ndarray, *, regularization: float
    ) -> Reranker:
        mean = np.average(X, axis=0, weights=weights)
        scale = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=weights))
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=regularization, max_iter=2000)
        model.fit((X - mean) / scale, y, sample_weight=weights)
        return cls(mean, scale, model.coef_.ravel(), float(model.intercept_[0]))

    @classmethod
    def stage1_only(cls) -> Reranker:
        """Passes the stage-1 probability through: for labels with nothing to learn from."""
        coef = np.zeros(len(FEATURES), np.float32)
        coef[FEATURES.index("stage1_logit")] = 1.0
        ones = np.ones(len(FEATURES), np.float32)
        return cls(np.zeros(len(FEATURES), np.float32), ones, coef, 0.0)

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean,
            "scale": self.scale,
            "coef": self.coef,
            "intercept": np.array(self.intercept, np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Reranker:
        # A Python float intercept, as fitted: a NumPy float64 would promote float32 sums.
        return cls(arrays["mean"], arrays["scale"], arrays["coef"], float(arrays["intercept"]))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = ((X - self.mean) / self.scale) @ self.coef + self.intercept
        return (1 / (1 + np.exp(-z))).astype(np.float32)
