"""Calibrators: map raw model scores to probabilities that match observed frequencies.

Fitted on the validation split's scores (never on test) and saved with the Coder as a
plain JSON-serialisable dict. Every calibrator here is *pooled*: one mapping fitted on
all (document, label) entries together and applied to every code, because most codes
are too rare to calibrate one by one.

Big label spaces (2,000 documents x 10,000 labels = 20M entries) would make a pooled
fit slow, so it runs on every positive entry plus at most ``max_negatives`` negatives
drawn uniformly without replacement. Each drawn negative is weighted by
(negatives in total) / (negatives drawn), so that weighted sums over the sample, and
hence the log-loss Platt minimises and the squared error isotonic regression
minimises, are unbiased estimates of the sums over all entries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression

from autocode.decisions._inputs import FloatArray, Matrix, as_gold, as_probs

# Platt works on logit(score); clipping keeps scores of exactly 0 or 1 finite.
_SCORE_CLIP = 1e-6


def pooled_sample(
    probs: FloatArray, gold: sp.csr_array, max_negatives: int, seed: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(scores, labels, weights) of every positive entry and a weighted negative sample.

    Keeps all negatives (weight 1) when there are at most ``max_negatives``; see the
    module docstring for why the weights make the fit unbiased.
    """
    rows, cols = gold.nonzero()
    positive_flat = np.sort(rows.astype(np.int64) * probs.shape[1] + cols)
    n_negatives = probs.size - positive_flat.size
    drawn = min(max_negatives, n_negatives)
    # 1. Draw ranks among the negatives, never materialising a mask over all entries.
    ranks = np.random.default_rng(seed).choice(n_negatives, size=drawn, replace=False)
    # 2. The negative of rank k sits at flat index k + (positives before it); positive j
    #    has positive_flat[j] - j negatives before it, a non-decreasing sequence.
    skipped = np.searchsorted(positive_flat - np.arange(positive_flat.size), ranks, side="right")
    negative_flat = ranks + skipped
    flat = probs.ravel()
    scores = np.concatenate([flat[positive_flat], flat[negative_flat]])
    labels = np.concatenate([np.ones(positive_flat.size), np.zeros(drawn)])
    weights = np.concatenate([np.ones(positive_flat.size), np.full(drawn, n_negatives / drawn)])
    return scores, labels, weights


class Calibrator(ABC):
    """Learns a score -> probability mapping on validation data; ``n_labels_`` when fitted."""

    method: ClassVar[str]

    def fit(self, scores: np.ndarray, y_true: Matrix) -> Self:
        """Fit on raw (n_docs, n_labels) scores and the gold multi-hot matrix."""
        probs = as_probs(scores, "scores")
        self._fit(probs, as_gold(y_true, probs.shape))
        self.n_labels_ = probs.shape[1]
        return self

    def transform(self, scores: np.ndarray) -> FloatArray:
        """Calibrated probabilities, same shape as ``scores``."""
        n_labels = self._fitted_n_labels()
        probs = as_probs(scores, "scores")
        if probs.shape[1] != n_labels:
            raise ValueError(
                f"scores have {probs.shape[1]} labels; calibrator fitted on {n_labels}"
            )
        return self._calibrate(probs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; ``calibrator_from_dict`` restores it."""
        return {"method": self.method, "n_labels": self._fitted_n_labels(), **self._state()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        if d.get("method") != cls.method:
            raise ValueError(
                f"{cls.__name__} restores method {cls.method!r}; got {d.get('method')!r}"
            )
        calibrator = cls._from_state(d)
        calibrator.n_labels_ = int(d["n_labels"])
        return calibrator

    def _fitted_n_labels(self) -> int:
        if not hasattr(self, "n_labels_"):
            raise RuntimeError(
                f"{type(self).__name__} is not fitted; call fit(scores, y_true) first"
            )
        return self.n_labels_

    @abstractmethod
    def _fit(self, probs: FloatArray, gold: sp.csr_array) -> None: ...

    @abstractmethod
    def _calibrate(self, probs: FloatArray) -> FloatArray: ...

    @abstractmethod
    def _state(self) -> dict[str, Any]: ...

    @classmethod
    @abstractmethod
    def _from_state(cls, d: dict[str, Any]) -> Self: ...


class IdentityCalibrator(Calibrator):
    """Leaves scores unchanged: the baseline that the other calibrators must beat."""

    method = "none"

    def _fit(self, probs: FloatArray, gold: sp.csr_array) -> None:
        """Nothing to learn beyond the label count."""

    def _calibrate(self, probs: FloatArray) -> FloatArray:
        return probs.copy()

    def _state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> Self:
        return cls()


class _SampledCalibrator(Calibrator):
    """A pooled calibrator fitted on all positives and a weighted sample of negatives."""

    def __init__(self, max_negatives: int = 500_000, seed: int = 0) -> None:
        if max_negatives < 1:
            raise ValueError(f"max_negatives must be >= 1; got {max_negatives}")
        self.max_negatives = max_negatives
        self.seed = seed

    def _fit(self, probs: FloatArray, gold: sp.csr_array) -> None:
        if gold.nnz in (0, probs.size):
            raise ValueError(
                f"y_true has {gold.nnz} positives among {probs.size} entries; "
                "calibration needs both positive and negative entries"
            )
        self._fit_entries(*pooled_sample(probs, gold, self.max_negatives, self.seed))

    @abstractmethod
    def _fit_entries(self, scores: FloatArray, labels: FloatArray, weights: FloatArray) -> None: ...

    def _params(self) -> dict[str, Any]:
        return {"max_negatives": self.max_negatives, "seed": self.seed}


class PlattCalibrator(_SampledCalibrator):
    """p = sigmoid(a * logit(s) + b), one (a, b) for all codes, fitted by weighted log-loss."""

    method = "platt"

    def _fit_entries(self, scores: FloatArray, labels: FloatArray, weights: FloatArray) -> None:
        x = _clipped_logit(scores)
        w = weights / weights.sum()

        def loss_and_grad(params: FloatArray) -> tuple[float, FloatArray]:
            z = params[0] * x + params[1]
            # log(1 + e^z) - y z is the log-loss of sigmoid(z), stable for large |z|.
            loss = float(w @ (np.logaddexp(0.0, z) - labels * z))
            residual = w * (expit(z) - labels)
            return loss, np.array([residual @ x, residual.sum()])

        result = minimize(loss_and_grad, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
        self.a_, self.b_ = float(result.x[0]), float(result.x[1])

    def _calibrate(self, probs: FloatArray) -> FloatArray:
        return np.asarray(expit(self.a_ * _clipped_logit(probs) + self.b_), dtype=np.float64)

    def _state(self) -> dict[str, Any]:
        return {**self._params(), "a": self.a_, "b": self.b_}

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> Self:
        calibrator = cls(max_negatives=int(d["max_negatives"]), seed=int(d["seed"]))
        calibrator.a_, calibrator.b_ = float(d["a"]), float(d["b"])
        return calibrator


def _clipped_logit(scores: FloatArray) -> FloatArray:
    return np.asarray(logit(np.clip(scores, _SCORE_CLIP, 1 - _SCORE_CLIP)), dtype=np.float64)


class IsotonicCalibrator(_SampledCalibrator):
    """A monotone step-wise map from score to probability, one for all codes.

    Stored as the fitted breakpoints and applied by linear interpolation between them,
    clipped to the end values outside the fitted score range (as sklearn's
    ``out_of_bounds="clip"``), so no sklearn object needs to be saved.
    """

    method = "isotonic"

    def _fit_entries(self, scores: FloatArray, labels: FloatArray, weights: FloatArray) -> None:
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        isotonic.fit(scores, labels, sample_weight=weights)
        self.x_thresholds_ = np.asarray(isotonic.X_thresholds_, dtype=np.float64)
        self.y_thresholds_ = np.asarray(isotonic.y_thresholds_, dtype=np.float64)

    def _calibrate(self, probs: FloatArray) -> FloatArray:
        return np.interp(probs, self.x_thresholds_, self.y_thresholds_)

    def _state(self) -> dict[str, Any]:
        return {
            **self._params(),
            "x_thresholds": self.x_thresholds_.tolist(),
            "y_thresholds": self.y_thresholds_.tolist(),
        }

    @classmethod
    def _from_state(cls, d: dict[str, Any]) -> Self:
        calibrator = cls(max_negatives=int(d["max_negatives"]), seed=int(d["seed"]))
        calibrator.x_thresholds_ = np.asarray(d["x_thresholds"], dtype=np.float64)
        calibrator.y_thresholds_ = np.asarray(d["y_thresholds"], dtype=np.float64)
        return calibrator


CALIBRATORS: dict[str, type[Calibrator]] = {
    IdentityCalibrator.method: IdentityCalibrator,
    PlattCalibrator.method: PlattCalibrator,
    IsotonicCalibrator.method: IsotonicCalibrator,
}


def _calibrator_class(name: object) -> type[Calibrator]:
    if not isinstance(name, str) or name not in CALIBRATORS:
        raise ValueError(f"unknown calibrator {name!r}; valid: {', '.join(sorted(CALIBRATORS))}")
    return CALIBRATORS[name]


def make_calibrator(name: str, **params: Any) -> Calibrator:
    """A new, unfitted calibrator; ``params`` go to its constructor (``platt`` and
    ``isotonic`` take ``max_negatives`` and ``seed``)."""
    return _calibrator_class(name)(**params)


def calibrator_from_dict(d: dict[str, Any]) -> Calibrator:
    """Restore a fitted calibrator from ``Calibrator.to_dict`` output."""
    return _calibrator_class(d.get("method")).from_dict(d)
