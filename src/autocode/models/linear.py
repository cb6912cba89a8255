"""One linear layer over sparse features, trained jointly for all labels.

Fitting thousands of independent one-vs-rest problems costs labels × solver
time. Here every label shares each pass over the data: a minibatch touches
only the feature rows present in its notes, so an epoch costs about
nnz(batch features) × labels, and the whole label space learns at once.
Optimiser: row-wise AdaGrad (one step-size accumulator per feature row, as
large embedding tables use), so memory is the weight matrix plus one vector.

With many labels (MIMIC: ~10k) most labels are negative for every note of a
batch. `sampled_negatives` then computes only the batch's positive labels plus
a uniform sample of the others, up-weighting the sampled ones by the inverse
sampling rate: the gradient stays unbiased while a step costs
nnz(batch) × (positives + sample) instead of nnz(batch) × labels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinearSettings:
    """The optimiser's settings, checked on construction. `TfidfModel` passes its own
    hyperparameters of the same names (documented there, with its own defaults): epochs
    (>= 1), batch_size (>= 1), learning_rate (AdaGrad step, > 0), l2 (>= 0), pos_weight
    (> 0), sampled_negatives (>= 1, None: every label) and seed."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 0.5
    l2: float = 1e-5
    pos_weight: float = 1.0
    sampled_negatives: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_rate", "pos_weight"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if self.sampled_negatives is not None and self.sampled_negatives < 1:
            raise ValueError(f"sampled_negatives must be >= 1, got {self.sampled_negatives}")


@dataclass
class LinearWeights:
    coef: np.ndarray  # (n_features, n_labels), float32
    intercept: np.ndarray  # (n_labels,), float32

    def decision_function(self, X: sp.csr_matrix) -> np.ndarray:
        return np.asarray(X @ self.coef) + self.intercept

    def predict_proba(self, X: sp.csr_matrix) -> np.ndarray:
        return expit(self.decision_function(X)).astype(np.float32)

    @property
    def n_labels(self) -> int:
        return int(self.coef.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """(n_features, n_labels)"""
        return (int(self.coef.shape[0]), int(self.coef.shape[1]))

    def at(self, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """coef[features[k], labels[k]] for each k (evidence weighs pairs, not blocks)."""
        return np.asarray(self.coef[features, labels], np.float32)

    def label_blocks(self, per_block: int) -> Iterator[tuple[int, np.ndarray]]:
        """coef by blocks of `per_block` labels: (first label, its columns)."""
        for start in range(0, self.n_labels, per_block):
            yield start, np.asarray(self.coef[:, start : start + per_block], np.float32)


def train_linear(X: sp.csr_matrix, Y: sp.csr_matrix, settings: LinearSettings) -> LinearWeights:
    """Minimise the (positive-weighted) binary cross-entropy of every label jointly."""
    X = sp.csr_matrix(X, dtype=np.float32)
    Y = sp.csr_matrix(Y, dtype=np.float32)
    n_notes, n_features = X.shape
    weights = LinearWeights(
        coef=np.zeros((n_features, Y.shape[1]), dtype=np.float32),
        intercept=_prior_logits(Y),
    )
    row_accumulator = np.full(n_features, 1e-8, dtype=np.float32)
    intercept_accumulator = np.full(Y.shape[1], 1e-8, dtype=np.float32)
    rng = np.random.default_rng(settings.seed)
    scratch = _Scratch()
    for epoch in range(settings.epochs):
        # DEBUG: the CLI shows epochs on its live status line, not as permanent lines.
        logger.debug("linear layer epoch %d/%d", epoch + 1, settings.epochs)
        order = rng.permutation(n_notes)
        for start in range(0, n_notes, settings.batch_size):
            batch = order[start : start + settings.batch_size]
            labels, label_weights = _label_subset(Y[batch], settings.sampled_negatives, rng)
            _step(
                X[batch],
                Y[batch][:, labels],
                weights,
                (labels, label_weights),
                (row_accumulator, intercept_accumulator),
                settings,
                scratch,
            )
    return weights


class _Scratch:
    """Two (rows, labels) float32 buffers reused by every step, grown when a batch touches
    more feature rows than any before. A fresh array of this size (tens of MB) is mapped
    from the OS and page-faulted in on each step: reusing it is most of a step's saving."""

    def __init__(self) -> None:
        self._buffers: list[np.ndarray] = []

    def arrays(self, n_rows: int, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
        if not self._buffers or self._buffers[0].shape[0] < n_rows:
            self._buffers = [np.empty((n_rows, n_labels), np.float32) for _ in range(2)]
        first, second = (buffer[:n_rows] for buffer in self._buffers)
        return first, second


def _label_subset(
    Y: sp.csr_matrix, sampled_negatives: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Labels to update this step and their importance weights (1 unless sampled)."""
    n_labels = Y.shape[1]
    positives = np.unique(Y.indices)
    negatives = n_labels - len(positives)
    if sampled_negatives is None or negatives <= sampled_negatives:
        return np.arange(n_labels), np.ones(n_labels, dtype=np.float32)
    others = np.setdiff1d(np.arange(n_labels), positives, assume_unique=True)
    sampled = rng.choice(others, size=sampled_negatives, replace=False)
    labels = np.concatenate([positives, sampled])
    label_weights = np.ones(len(labels), dtype=np.float32)
    label_weights[len(positives) :] = negatives / sampled_negatives
    return labels, label_weights


def _step(
    X: sp.csr_matrix,
    Y: sp.csr_matrix,
    weights: LinearWeights,
    label_subset: tuple[np.ndarray, np.ndarray],
    accumulators: tuple[np.ndarray, np.ndarray],
    settings: LinearSettings,
    scratch: _Scratch,
) -> None:
    labels, label_weights = label_subset
    row_accumulator, intercept_accumulator = accumulators
    every_label = len(labels) == weights.coef.shape[1]
    # 1. Restrict to the feature rows this batch touches: the rest get no gradient.
    rows, local_indices = np.unique(X.indices, return_inverse=True)
    X_local = sp.csr_matrix((X.data, local_indices, X.indptr), shape=(X.shape[0], len(rows)))
    block = np.ix_(rows, labels)
    if every_label:
        coef_block, scaled = scratch.arrays(len(rows), len(labels))
        np.take(weights.coef, rows, axis=0, out=coef_block)
    else:
        coef_block = weights.coef[block]
        scaled = np.empty_like(coef_block)
    intercept = weights.intercept[labels]
    # 2. Weighted BCE gradient w.r.t. the logits: p - y, scaled up on positives.
    probabilities = expit(np.asarray(X_local @ coef_block) + intercept)
    targets = Y.toarray().astype(np.float32, copy=False)
    gradient = probabilities - targets
    if settings.pos_weight != 1.0:
        gradient += (settings.pos_weight - 1.0) * targets * (probabilities - 1.0)
    gradient *= label_weights / X.shape[0]
    # 3. L2 only on touched rows (lazy regularisation), then row-wise AdaGrad steps,
    #    in place: these k × labels arrays dominate a step's memory traffic. X_local.T
    #    as CSR writes each gradient row once (as CSC it scatters into all k rows for
    #    every note), summing the notes in the same order: the same numbers, 3× faster.
    coef_gradient = np.asarray(X_local.T.tocsr() @ gradient, dtype=np.float32)
    if settings.l2:
        coef_gradient += np.multiply(coef_block, np.float32(settings.l2), out=scaled)
    row_accumulator[rows] += np.einsum("ij,ij->i", coef_gradient, coef_gradient) / len(labels)
    np.multiply(
        coef_gradient,
        (settings.learning_rate / np.sqrt(row_accumulator[rows]))[:, None],
        out=scaled,
    )
    coef_block -= scaled
    if every_label:
        weights.coef[rows] = coef_block
    else:
        weights.coef[block] = coef_block
    intercept_gradient = gradient.sum(axis=0)
    intercept_accumulator[labels] += intercept_gradient**2
    weights.intercept[labels] = intercept - settings.learning_rate * intercept_gradient / np.sqrt(
        intercept_accumulator[labels]
    )


def _prior_logits(Y: sp.csr_matrix) -> np.ndarray:
    """Start each label at its base rate, so rare labels begin near zero probability."""
    rate = np.clip(np.asarray(Y.mean(axis=0)).ravel(), 1e-4, 1 - 1e-4)
    return np.log(rate / (1 - rate)).astype(np.float32)
