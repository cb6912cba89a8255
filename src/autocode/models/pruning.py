"""Lean linear weights: each feature's common level plus the sparse departures that matter.

The joint linear layer (`linear.train_linear`) updates every label of every feature row a
minibatch touches, so its (features, labels) weight matrix is dense in fact, and most of
it is noise around one level per feature: whenever a note holding the feature is negative
for a label, which it is for nearly every label, that label's weight of the feature is
pushed down like all the others. `prune_weights` splits each feature row into that common
level (its median over labels, kept exactly) and the departures from it, and keeps only
the departures that could move a logit by at least `tolerance`:

    kept(i, j)  ⇔  |coef[i, j] − median_j coef[i, :]| × max_train x[:, i]  ≥  tolerance

where `max_train x[:, i]` is feature i's largest value in any training note: the left side
is the most that departure added to any training note's logit. Intercepts and levels are
kept whole, so at tolerance 0 only exact zeros are dropped and the scores are unchanged
(up to float32 rounding of a different summation order).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from autocode.models.linear import LinearWeights

# Dense rows handled at once while pruning: at most ~64 MB of float32 per block, so the
# 50k × 10k scale model's pruning does not double its 1.9 GB matrix.
BLOCK_BUDGET = 64 * 2**20 // 4
# Rows with at least this share of the labels kept are multiplied as one dense block (at
# most ~16 MB of them, the fullest first): per kept weight a sparse × sparse product costs
# several times a dense row's multiply-add, and the fullest rows are the most frequent
# n-grams. On CodiEsp 1,067 rows (9.6 MB) make the product ~30% faster; the rest stays
# sparse.
DENSE_ROW_SHARE = 1 / 4
DENSE_ROWS_BUDGET = 16 * 2**20 // 4


@dataclass
class PrunedWeights:
    """coef[i, j] = level[i] + departures[i, j], with most departures dropped (zero)."""

    level: np.ndarray  # (n_features,) float32: each feature's median weight over labels
    departures: sp.csr_matrix  # (n_features, n_labels) float32, the kept departures only
    intercept: np.ndarray  # (n_labels,) float32

    @property
    def n_labels(self) -> int:
        return int(self.intercept.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """(n_features, n_labels)"""
        return (int(self.level.shape[0]), self.n_labels)

    def decision_function(self, X: sp.csr_matrix) -> np.ndarray:
        # The fullest rows dense, the others sparse × sparse: the departures are never
        # densified whole; the levels add one number per note, X @ level, to every label.
        X = sp.csr_matrix(X)
        dense_rows, dense_block, sparse_rest = self._split
        scores = (X @ sparse_rest).toarray()
        if dense_rows.size:
            scores += np.asarray(X[:, dense_rows] @ dense_block)
        scores += (X @ self.level)[:, None]
        scores += self.intercept
        return np.asarray(scores, np.float32)

    def predict_proba(self, X: sp.csr_matrix) -> np.ndarray:
        return expit(self.decision_function(X)).astype(np.float32)

    @cached_property
    def _split(self) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
        """The dense rows' indices and block, and the departures without those rows."""
        kept = np.diff(self.departures.indptr)
        full = np.flatnonzero(kept >= DENSE_ROW_SHARE * max(self.n_labels, 1))
        fullest_first = full[np.argsort(-kept[full], kind="stable")]
        dense_rows = np.sort(fullest_first[: DENSE_ROWS_BUDGET // max(self.n_labels, 1)])
        is_sparse = np.ones(self.departures.shape[0], np.float32)
        is_sparse[dense_rows] = 0
        sparse_rest = sp.csr_matrix(sp.diags(is_sparse) @ self.departures)
        sparse_rest.eliminate_zeros()
        return dense_rows, self.departures[dense_rows].toarray(), sparse_rest

    def at(self, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """coef[features[k], labels[k]] for each k: the level plus the kept departure.

        Each label is looked for in its feature's row of departures (its columns sorted)
        by a binary search run for every pair at once: nothing is densified or copied, so
        a few pairs cost a few lookups.
        """
        features = np.asarray(features, np.int64)
        labels = np.asarray(labels, np.int64)
        found = self.level[features].astype(np.float32)
        departures = self._sorted_departures
        if not features.size or not departures.nnz:
            return found
        indices = departures.indices
        lo, end = departures.indptr[features], departures.indptr[features + 1]
        hi = end.copy()
        for _ in range(max(1, int(np.ceil(np.log2(self.n_labels + 1))))):
            searching = lo < hi
            mid = (lo + hi) // 2
            smaller = indices[np.where(searching, mid, 0)] < labels
            lo = np.where(searching & smaller, mid + 1, lo)
            hi = np.where(searching & ~smaller, mid, hi)
        hit = lo < end
        hit[hit] = indices[lo[hit]] == labels[hit]
        found[hit] += departures.data[lo[hit]]
        return found

    def label_blocks(self, per_block: int) -> Iterator[tuple[int, np.ndarray]]:
        """coef by blocks of `per_block` labels, densified: (first label, its columns)."""
        by_label = sp.csc_matrix(self.departures)  # for this pass only: columns are cheap
        for start in range(0, self.n_labels, per_block):
            columns = by_label[:, start : start + per_block].toarray()
            yield start, np.asarray(columns + self.level[:, None], np.float32)

    @cached_property
    def _sorted_departures(self) -> sp.csr_matrix:
        """The departures with each row's columns sorted, as `at` searches them."""
        if not self.departures.has_sorted_indices:
            self.departures.sort_indices()
        return self.departures


def prune_weights(weights: LinearWeights, X: sp.csr_matrix, tolerance: float) -> PrunedWeights:
    """`weights` as levels and the departures kept at `tolerance` (see the module
    docstring); `X` are the (notes, features) training features `weights` learned from."""
    if not tolerance >= 0:  # also refuses NaN
        raise ValueError(f"prune tolerance must be >= 0, got {tolerance}")
    coef = weights.coef
    if X.shape[1] != coef.shape[0]:
        raise ValueError(f"X has {X.shape[1]} features; the weights have {coef.shape[0]}")
    largest = np.asarray(sp.csr_matrix(X).max(axis=0).toarray(), np.float32).ravel()
    level = np.empty(coef.shape[0], np.float32)
    blocks = []
    rows_per_block = max(1, BLOCK_BUDGET // max(coef.shape[1], 1))
    for start in range(0, coef.shape[0], rows_per_block):
        stop = start + rows_per_block
        level[start:stop] = np.median(coef[start:stop], axis=1)
        departures = coef[start:stop] - level[start:stop, None]
        dropped = np.abs(departures) * largest[start:stop, None] < tolerance
        departures[dropped] = 0  # and csr_matrix drops the exact zeros
        blocks.append(sp.csr_matrix(departures))
    kept = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix(coef.shape, np.float32)
    return PrunedWeights(level, kept.astype(np.float32), weights.intercept.copy())
