"""What a stack learns from: features of one (note, code) pair, and the linear re-ranker.

A base model's scores know which words co-occurred with a code in training; the matcher's
features know what the code is called. With a few hundred training notes most codes are
seen once or twice, so the first signal is thin and the second decides: a logistic
regression weighs them per pair, with what a coder also weighs (is a sibling code a better
match? is this the "unspecified" default of its family? how common is the code?).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

# The features `score_features` derives from one base model's scores, in order.
SCORE_FEATURES = ("logit", "log_rank", "share_of_note_max", "gap_to_best_sibling")
LOGIT_CLIP = 12.0


def score_features(scores: np.ndarray, group: np.ndarray) -> np.ndarray:
    """(notes, labels, len(SCORE_FEATURES)) features of one model's (notes, labels) scores;
    `group[j]` is label j's family index."""
    return np.stack(score_feature_columns(scores, group), axis=-1, dtype=np.float32)


def score_feature_columns(scores: np.ndarray, group: np.ndarray) -> list[np.ndarray]:
    """The (notes, labels) columns of `score_features`, one per feature, not stacked."""
    clipped = np.clip(scores, 1e-6, 1 - 1e-6)
    logit = np.clip(np.log(clipped / (1 - clipped)), -LOGIT_CLIP, LOGIT_CLIP)
    order = descending_order(scores)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(scores.shape[1])[None, :], axis=1)
    note_max = scores.max(axis=1, keepdims=True)
    return [
        logit,
        np.log1p(rank),
        scores / np.maximum(note_max, 1e-12),
        scores - group_max(scores, group),
    ]


def descending_order(scores: np.ndarray) -> np.ndarray:
    """Per row, the column indices from the highest score down, ties in column order: what
    `np.argsort(-scores, axis=1, kind="stable")` gives, 4× faster. Each score's float32 bits
    become an unsigned key that sorts as the float does, with the column index in the low
    32 bits, so every key is distinct and an unstable (vectorised) sort is exact."""
    if scores.dtype != np.float32:  # float32 keys could tie distinct float64 scores
        return np.argsort(-scores, axis=1, kind="stable")
    negated = np.ascontiguousarray(-scores, np.float32) + np.float32(0)  # -0.0 becomes 0.0
    bits = negated.view(np.uint32)
    sign = np.uint32(0x80000000)
    ordered = np.where(bits & sign, ~bits, bits | sign).astype(np.uint64)
    keys = (ordered << np.uint64(32)) | np.arange(scores.shape[1], dtype=np.uint64)
    keys.sort(axis=1)
    return (keys & np.uint64(0xFFFFFFFF)).astype(np.intp)


def group_max(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For each label, the largest value among the labels of its group (itself included)."""
    order = np.argsort(group, kind="stable")
    groups, first = np.unique(group[order], return_index=True)
    per_group = np.zeros((values.shape[0], int(group.max()) + 1), values.dtype)
    per_group[:, groups] = np.maximum.reduceat(values[:, order], first, axis=1)
    return per_group[:, group]


@dataclass
class Reranker:
    """A standardised logistic regression over a stack's pair features."""

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
    def passthrough(cls, n_features: int, logit_column: int) -> Reranker:
        """Passes one base model's probability (its logit feature) through: for a code
        system with nothing to learn from."""
        coef = np.zeros(n_features, np.float32)
        coef[logit_column] = 1.0
        ones = np.ones(n_features, np.float32)
        return cls(np.zeros(n_features, np.float32), ones, coef, 0.0)

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


@dataclass
class LabelRerankers:
    """Each code system's re-ranker spread over the label columns, so that a stack scores
    its pairs one feature column at a time: feature f of label j is standardised and
    weighed by the re-ranker of j's code system. Rows are features, columns labels.

    The same logistic regression as `Reranker.predict_proba` on the stacked (notes,
    labels, features) array, without building that array: its float32 terms are the
    same, summed in float64 (probabilities agree to float32 rounding).
    """

    mean: np.ndarray  # (features, labels)
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray  # (labels,)

    @classmethod
    def spread(
        cls, rerankers: dict[str, Reranker], system_columns: dict[str, np.ndarray], n_labels: int
    ) -> LabelRerankers:
        n_features = next(iter(rerankers.values())).coef.size
        arrays = {name: np.zeros((n_features, n_labels), np.float32) for name in ("m", "s", "c")}
        intercept = np.zeros(n_labels, np.float64)
        for system, columns in system_columns.items():
            reranker = rerankers[system]
            arrays["m"][:, columns] = reranker.mean[:, None]
            arrays["s"][:, columns] = reranker.scale[:, None]
            arrays["c"][:, columns] = reranker.coef[:, None]
            intercept[columns] = reranker.intercept
        return cls(arrays["m"], arrays["s"], arrays["c"], intercept)

    def predict_proba(self, columns: Iterable[np.ndarray], n_notes: int) -> np.ndarray:
        """(notes, labels) probabilities from the feature columns, in feature order; a
        column is (notes, labels), or (labels,) for a feature that is the same in every note."""
        z = np.broadcast_to(self.intercept, (n_notes, self.intercept.size)).copy()
        n_seen = 0
        for f, column in enumerate(columns):
            standardised = (np.asarray(column, np.float32) - self.mean[f]) / self.scale[f]
            z += standardised * self.coef[f]
            n_seen += 1
        if n_seen != self.coef.shape[0]:
            raise ValueError(f"{n_seen} feature columns; the re-rankers weigh {self.coef.shape[0]}")
        return (1 / (1 + np.exp(-z))).astype(np.float32)
