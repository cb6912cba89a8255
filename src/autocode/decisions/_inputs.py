"""Input checks shared by calibration, thresholds and the routing policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from autocode.metrics import Matrix, as_binary

FloatArray: TypeAlias = npt.NDArray[np.float64]


def as_probs(probs: np.ndarray, name: str = "probs") -> FloatArray:
    """``probs`` as a C-contiguous float64 (n_docs, n_labels) array of values in [0, 1]."""
    if sp.issparse(probs):
        raise ValueError(f"{name} must be a dense numpy array, not {type(probs).__name__}")
    values = np.ascontiguousarray(probs, dtype=np.float64)
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(
            f"{name} must be a non-empty 2-D (n_docs, n_labels) array; got shape {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if values.min() < 0 or values.max() > 1:
        raise ValueError(f"{name} must lie in [0, 1]; got range [{values.min()}, {values.max()}]")
    return values


def as_gold(y_true: Matrix, shape: tuple[int, ...]) -> sp.csr_array:
    """The gold multi-hot matrix as a canonical boolean CSR array of the given shape."""
    gold = as_binary(y_true, "y_true")
    if gold.shape != shape:
        raise ValueError(f"y_true has shape {gold.shape}; expected {shape} to match the scores")
    return gold


def check_fraction(value: float, name: str) -> None:
    """Reject a target or threshold outside [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {value!r}")


def check_partition(groups: Sequence[npt.ArrayLike], n_labels: int) -> None:
    """Reject column groups that do not hold each of `n_labels` columns exactly once."""
    arrays = [np.asarray(group).ravel() for group in groups]
    for array in arrays:
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"groups must hold column indices; got {array.dtype} values")
    columns = np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, np.int64)
    outside = columns[(columns < 0) | (columns >= n_labels)]
    if outside.size:
        raise ValueError(f"groups name column {int(outside[0])}; there are {n_labels} labels")
    counts = np.bincount(columns, minlength=n_labels)
    problem = np.flatnonzero(counts != 1)
    if problem.size:
        first = int(problem[0])
        raise ValueError(
            f"groups must hold each of the {n_labels} label columns once; "
            f"column {first} is in {int(counts[first])} of them"
        )
