"""Decision thresholds tuned on the validation split: one global, and one per code.

A code is predicted when its probability is >= its threshold. Thresholds are searched
over a fixed grid rather than every validation score, so a threshold never sits
exactly on one validation document's score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from autocode.decisions._inputs import (
    FloatArray,
    Matrix,
    as_gold,
    as_probs,
    check_fraction,
    check_partition,
)

THRESHOLD_GRID: FloatArray = np.round(np.linspace(0.01, 0.99, 99), 2)


def _check_grid(grid: npt.ArrayLike) -> FloatArray:
    values = np.asarray(grid, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"grid must be a non-empty 1-D sequence; got shape {values.shape}")
    if values.min() < 0 or values.max() > 1 or (np.diff(values) <= 0).any():
        raise ValueError(f"grid must be strictly increasing within [0, 1]; got {values}")
    return values


def _f1(tp: np.ndarray, predicted: np.ndarray, gold: np.ndarray | int) -> FloatArray:
    """2 TP / (predicted + gold), 0.0 where both counts are 0."""
    denominator = np.asarray(predicted + gold, dtype=np.float64)
    numerator = np.asarray(2 * tp, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def tune_global_threshold(
    y_true: Matrix, probs: np.ndarray, grid: npt.ArrayLike = THRESHOLD_GRID
) -> float:
    """The grid threshold with the best micro-F1 on validation (the lowest one on ties)."""
    values = as_probs(probs)
    gold = as_gold(y_true, values.shape)
    thresholds = _check_grid(grid)
    # Counts of entries at or above each threshold, from sorted copies: no per-threshold pass.
    everything = np.sort(values, axis=None)
    positives = np.sort(values[gold.nonzero()])
    predicted = everything.size - np.searchsorted(everything, thresholds, side="left")
    tp = positives.size - np.searchsorted(positives, thresholds, side="left")
    return float(thresholds[np.argmax(_f1(tp, predicted, positives.size))])


def _per_code_best(
    values: FloatArray, gold: sp.csr_array, thresholds: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Each code's best grid threshold by its own F1 (lowest on ties), and that F1."""
    rows, cols = gold.nonzero()
    positive_scores = values[rows, cols]
    n_labels = values.shape[1]
    support = np.bincount(cols, minlength=n_labels)
    f1 = np.empty((thresholds.size, n_labels))
    # One pass over the scores per grid value keeps memory at one boolean matrix.
    for i, threshold in enumerate(thresholds):
        predicted = np.count_nonzero(values >= threshold, axis=0)
        tp = np.bincount(cols[positive_scores >= threshold], minlength=n_labels)
        f1[i] = _f1(tp, predicted, support)
    best = np.argmax(f1, axis=0)
    return thresholds[best], f1[best, np.arange(n_labels)]


def tune_code_thresholds(
    y_true: Matrix,
    probs: np.ndarray,
    global_threshold: float,
    shrinkage: float = 10.0,
    grid: npt.ArrayLike = THRESHOLD_GRID,
) -> FloatArray:
    """Per-code thresholds, each code's F1-best grid value shrunk toward the global one.

    t_c = (n_c * t_best_c + shrinkage * t_global) / (n_c + shrinkage), with n_c the
    code's positives in validation. A code seen a handful of times has a best threshold
    that fits those few documents, not the code, so it stays near the global threshold;
    a frequent code earns its own. Codes with no validation positive, or whose positives
    no grid threshold catches, have no evidence at all and get the global threshold.
    """
    check_fraction(global_threshold, "global_threshold")
    if shrinkage < 0:
        raise ValueError(f"shrinkage must be >= 0; got {shrinkage!r}")
    values = as_probs(probs)
    gold = as_gold(y_true, values.shape)
    best, best_f1 = _per_code_best(values, gold, _check_grid(grid))
    support = np.asarray(gold.sum(axis=0), dtype=np.float64)
    # The same formula as n_c / (n_c + shrinkage) weight on the code's own best; zero
    # weight where there is no evidence, which also avoids 0 / 0 when shrinkage is 0.
    own = np.divide(support, support + shrinkage, out=np.zeros_like(support), where=best_f1 > 0)
    return own * best + (1 - own) * global_threshold


@dataclass(frozen=True, eq=False)
class Thresholds:
    """Decision thresholds saved with the Coder: a code is predicted when p >= per_code[c]."""

    global_threshold: float
    per_code: FloatArray

    def __post_init__(self) -> None:
        check_fraction(self.global_threshold, "global_threshold")
        per_code = np.array(self.per_code, dtype=np.float64)
        if per_code.ndim != 1 or per_code.size == 0:
            raise ValueError(f"per_code must be a non-empty 1-D array; got shape {per_code.shape}")
        outside = np.flatnonzero((per_code < 0) | (per_code > 1))
        if outside.size:
            first = int(outside[0])
            raise ValueError(
                f"per_code thresholds must lie in [0, 1]; label {first} has {per_code[first]}"
            )
        per_code.flags.writeable = False
        object.__setattr__(self, "per_code", per_code)

    def apply(self, probs: np.ndarray) -> npt.NDArray[np.bool_]:
        """Boolean (n_docs, n_labels) predictions."""
        values = as_probs(probs)
        if values.shape[1] != self.per_code.size:
            raise ValueError(
                f"probs have {values.shape[1]} labels; thresholds have {self.per_code.size}"
            )
        return values >= self.per_code

    def to_dict(self) -> dict[str, Any]:
        return {"global_threshold": self.global_threshold, "per_code": self.per_code.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        return cls(float(d["global_threshold"]), np.asarray(d["per_code"], dtype=np.float64))


def tune_thresholds(
    y_true: Matrix,
    probs: np.ndarray,
    shrinkage: float = 10.0,
    groups: Sequence[np.ndarray] | None = None,
) -> Thresholds:
    """The global threshold and the per-code thresholds shrunk toward it
    (`tune_code_thresholds`). With `groups` (column sets that together cover every
    column: `tune_decisions` passes each code system's codes), each set's codes shrink
    toward that set's own best threshold, so that one system's scores do not move another
    system's decisions; a set without a gold entry shrinks toward the pooled one, which is
    also the one stored as `global_threshold`."""
    values = as_probs(probs)
    gold = as_gold(y_true, values.shape)
    global_threshold = tune_global_threshold(gold, values)
    if groups is None:
        return Thresholds(
            global_threshold, tune_code_thresholds(gold, values, global_threshold, shrinkage)
        )
    check_partition(groups, values.shape[1])
    per_code = np.empty(values.shape[1])
    for columns in groups:
        group_gold, group_values = gold[:, columns], values[:, columns]
        # A set without a gold entry has no threshold of its own: the pooled one.
        group_threshold = (
            tune_global_threshold(group_gold, group_values) if group_gold.nnz else global_threshold
        )
        per_code[columns] = tune_code_thresholds(
            group_gold, group_values, group_threshold, shrinkage
        )
    return Thresholds(global_threshold, per_code)
