"""Metrics for multi-label medical coding.

Conventions shared by every function here:

- ``y_true`` and ``y_pred`` are binary (n_docs, n_labels) matrices, dense numpy or
  scipy.sparse. Counting metrics stay sparse, so a 10k-wide label space is never
  densified as a whole.
- ``y_score`` / ``y_prob`` is a dense float (n_docs, n_labels) numpy array.
- A ratio with a zero denominator is 0.0 (precision, recall, F1), as in sklearn's
  ``zero_division=0``. An *average* over an empty set (no document with a gold code,
  no label with both classes) is NaN, so that "undefined" never reads as "bad".
- Ranking ties are broken by label index: among equal scores the lower column ranks
  first (a stable sort), so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.stats import rankdata

Matrix: TypeAlias = "np.ndarray | sp.spmatrix | sp.sparray"
FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.int64]

# Ranking work densifies a block of rows (or columns); this bounds a block to ~4M cells.
_BLOCK_CELLS = 1 << 22
BUCKETS = ("0", "1-5", "6-50", ">50")


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 of one averaging scheme."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per-bin calibration summary; empty bins hold NaN means and a zero count."""

    mean_predicted: FloatArray
    observed_frequency: FloatArray
    count: IntArray


# -- input checks ---------------------------------------------------------------------


def _as_binary(y: Matrix, name: str) -> sp.csr_array:
    """Return ``y`` as a boolean CSR array, rejecting non-2-D or non-0/1 input."""
    matrix = sp.csr_array(y) if sp.issparse(y) else sp.csr_array(np.asarray(y))
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_docs, n_labels); got shape {matrix.shape}")
    bad = matrix.data[(matrix.data != 0) & (matrix.data != 1)]
    if bad.size:
        raise ValueError(f"{name} must be binary (0/1); found value {bad[0]!r}")
    return matrix != 0


def _as_scores(y_score: np.ndarray, name: str) -> FloatArray:
    if sp.issparse(y_score):
        raise ValueError(f"{name} must be a dense numpy array, not {type(y_score).__name__}")
    scores = np.asarray(y_score, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_docs, n_labels); got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return scores


def _check_shapes(first: tuple[str, Any], second: tuple[str, Any]) -> None:
    (name_a, a), (name_b, b) = first, second
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {name_a} {a.shape} vs {name_b} {b.shape}")
    if 0 in a.shape:
        raise ValueError(f"{name_a} and {name_b} are empty: shape {a.shape}")


def _binary_pair(y_true: Matrix, y_pred: Matrix) -> tuple[sp.csr_array, sp.csr_array]:
    true, pred = _as_binary(y_true, "y_true"), _as_binary(y_pred, "y_pred")
    _check_shapes(("y_true", true), ("y_pred", pred))
    return true, pred


def _true_and_scores(
    y_true: Matrix, y_score: np.ndarray, name: str = "y_score"
) -> tuple[sp.csr_array, FloatArray]:
    true, scores = _as_binary(y_true, "y_true"), _as_scores(y_score, name)
    _check_shapes(("y_true", true), (name, scores))
    return true, scores


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> FloatArray:
    """Elementwise numerator / denominator, 0.0 where the denominator is 0."""
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


# -- set-based metrics ----------------------------------------------------------------


def _code_counts(true: sp.csr_array, pred: sp.csr_array) -> tuple[IntArray, IntArray, IntArray]:
    """Per code: true positives, predicted count, gold count."""
    tp = np.asarray(true.multiply(pred).sum(axis=0), dtype=np.int64)
    return tp, np.asarray(pred.sum(axis=0), np.int64), np.asarray(true.sum(axis=0), np.int64)


def _prf(
    tp: np.ndarray, predicted: np.ndarray, gold: np.ndarray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    return _ratio(tp, predicted), _ratio(tp, gold), _ratio(2 * tp, predicted + gold)


def micro_prf(y_true: Matrix, y_pred: Matrix) -> PRF:
    """Micro-averaged precision, recall and F1, pooling every (document, code) decision."""
    tp, predicted, gold = _code_counts(*_binary_pair(y_true, y_pred))
    p, r, f = _prf(tp.sum(keepdims=True), predicted.sum(keepdims=True), gold.sum(keepdims=True))
    return PRF(float(p[0]), float(r[0]), float(f[0]))


def per_code_prf(
    y_true: Matrix, y_pred: Matrix
) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Per-code (precision, recall, f1, support); support is the gold count per code."""
    tp, predicted, gold = _code_counts(*_binary_pair(y_true, y_pred))
    return (*_prf(tp, predicted, gold), gold)


def _macro(tp: IntArray, predicted: IntArray, gold: IntArray) -> PRF:
    seen = (predicted + gold) > 0
    if not seen.any():
        return PRF(0.0, 0.0, 0.0)
    p, r, f = _prf(tp[seen], predicted[seen], gold[seen])
    return PRF(float(p.mean()), float(r.mean()), float(f.mean()))


def macro_prf(y_true: Matrix, y_pred: Matrix) -> PRF:
    """Macro-averaged precision, recall and F1 over codes in the gold OR predicted sets.

    Codes absent from both are excluded (Edin et al. 2023): counting them as F1=0 or 1
    would make the score depend on how wide the label space is. Macro-F1 is the mean
    of per-code F1, not the F1 of macro precision and macro recall. With no code seen
    at all, every value is 0.0.
    """
    return _macro(*_code_counts(*_binary_pair(y_true, y_pred)))


def exact_match(y_true: Matrix, y_pred: Matrix) -> float:
    """Share of documents whose predicted code set equals the gold set exactly."""
    true, pred = _binary_pair(y_true, y_pred)
    differing = sp.csr_array(true != pred)
    return float((np.diff(differing.indptr) == 0).mean())
