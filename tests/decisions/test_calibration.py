"""Calibrators: recovery of a known miscalibration, monotonicity, round trips, sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit

from autocode.decisions.calibration import (
    CALIBRATORS,
    PlattCalibrator,
    calibrator_from_dict,
    make_calibrator,
    pooled_sample,
)

TRUE_A, TRUE_B = 2.0, -1.0


@pytest.fixture(scope="module")
def miscalibrated() -> tuple[np.ndarray, np.ndarray]:
    """Scores s with P(y = 1 | s) = sigmoid(2 logit(s) - 1): too flat and biased upward."""
    rng = np.random.default_rng(0)
    z = rng.normal(-3.0, 1.5, size=(400, 250))
    y = (rng.random(z.shape) < expit(z)).astype(np.int8)
    scores = expit((z - TRUE_B) / TRUE_A)
    return scores, y


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1).ravel()
    total = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        total += in_bin.sum() * abs(y.ravel()[in_bin].mean() - p.ravel()[in_bin].mean())
    return total / p.size


def test_platt_recovers_known_miscalibration_while_subsampling(miscalibrated):
    scores, y = miscalibrated
    assert (y == 0).sum() > 20_000  # the fit below really samples negatives
    platt = PlattCalibrator(max_negatives=20_000, seed=1).fit(scores, y)
    assert platt.a_ == pytest.approx(TRUE_A, abs=0.15)
    assert platt.b_ == pytest.approx(TRUE_B, abs=0.15)
    calibrated = platt.transform(scores)
    assert log_loss(y, calibrated) < log_loss(y, scores)
    assert ece(y, calibrated) < 0.01 < ece(y, scores)


def test_platt_accepts_sparse_gold(miscalibrated):
    scores, y = miscalibrated
    dense = PlattCalibrator(max_negatives=5_000).fit(scores, y)
    sparse = PlattCalibrator(max_negatives=5_000).fit(scores, sp.csr_matrix(y))
    assert (sparse.a_, sparse.b_) == (dense.a_, dense.b_)


def test_isotonic_is_monotone_in_unit_interval_and_calibrates(miscalibrated):
    scores, y = miscalibrated
    isotonic = make_calibrator("isotonic", max_negatives=20_000).fit(scores, y)
    calibrated = isotonic.transform(scores)
    order = np.argsort(scores, axis=None)
    assert (np.diff(calibrated.ravel()[order]) >= 0).all()
    assert calibrated.min() >= 0.0 and calibrated.max() <= 1.0
    assert ece(y, calibrated) < 0.01 < ece(y, scores)
    # Scores outside the fitted range are clipped to the end values.
    edges = isotonic.transform(np.array([[0.0] * 250, [1.0] * 250]))
    np.testing.assert_array_equal(edges[:, 0], [calibrated.min(), calibrated.max()])


def test_none_is_identity(miscalibrated):
    scores, y = miscalibrated
    np.testing.assert_array_equal(make_calibrator("none").fit(scores, y).transform(scores), scores)


@pytest.mark.parametrize("name", sorted(CALIBRATORS))
def test_json_round_trip_gives_identical_outputs(miscalibrated, name):
    scores, y = miscalibrated
    fitted = make_calibrator(name).fit(scores[:100], y[:100])
    restored = calibrator_from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert type(restored) is type(fitted)
    np.testing.assert_array_equal(restored.transform(scores), fitted.transform(scores))


@pytest.mark.parametrize("name", sorted(CALIBRATORS))
def test_unfitted_transform_raises(name):
    with pytest.raises(RuntimeError, match="not fitted"):
        make_calibrator(name).transform(np.full((2, 3), 0.5))


def test_transform_rejects_other_label_count():
    calibrator = make_calibrator("none").fit(np.full((2, 3), 0.5), np.eye(2, 3))
    with pytest.raises(ValueError, match="4 labels; calibrator fitted on 3"):
        calibrator.transform(np.full((2, 4), 0.5))


def test_unknown_method_lists_valid_names():
    with pytest.raises(ValueError, match="'beta'; valid: isotonic, none, platt"):
        make_calibrator("beta")
    with pytest.raises(ValueError, match="valid: isotonic, none, platt"):
        calibrator_from_dict({"method": "beta"})


def test_fit_rejects_gold_without_positives():
    with pytest.raises(ValueError, match="needs both positive and negative"):
        make_calibrator("platt").fit(np.full((2, 3), 0.5), np.zeros((2, 3)))


def test_pooled_sample_keeps_positives_and_weights_sampled_negatives():
    probs = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    gold = sp.csr_array(np.array([[0, 1, 0], [0, 0, 1]], dtype=bool))
    scores, labels, weights = pooled_sample(probs, gold, max_negatives=2, seed=0)
    np.testing.assert_array_equal(scores[:2], [0.2, 0.6])
    np.testing.assert_array_equal(labels, [1, 1, 0, 0])
    # 4 negatives, 2 drawn: each stands for 2, and both are distinct real negatives.
    np.testing.assert_array_equal(weights, [1, 1, 2, 2])
    assert len(set(scores[2:])) == 2 and set(scores[2:]) <= {0.1, 0.3, 0.4, 0.5}


def test_pooled_sample_keeps_every_negative_when_few():
    probs = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    gold = sp.csr_array(np.array([[1, 0, 0], [0, 0, 1]], dtype=bool))
    scores, labels, weights = pooled_sample(probs, gold, max_negatives=10, seed=0)
    assert sorted(scores[labels == 0]) == [0.2, 0.3, 0.4, 0.5]
    np.testing.assert_array_equal(weights, np.ones(6))
