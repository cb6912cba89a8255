"""Threshold tuning: hand-checked micro-F1 choice, shrinkage formula, Thresholds round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from autocode.decisions.thresholds import (
    Thresholds,
    tune_code_thresholds,
    tune_global_threshold,
    tune_thresholds,
)

# Positives score 0.9, 0.6, 0.7; negatives 0.2, 0.3, 0.4.
Y = np.array([[1, 0], [0, 1], [1, 0]])
PROBS = np.array([[0.9, 0.2], [0.3, 0.6], [0.7, 0.4]])


def test_global_threshold_picks_best_micro_f1():
    # micro-F1: t=0.25 -> 6/8, t=0.5 -> 1.0, t=0.75 -> 2/4.
    assert tune_global_threshold(Y, PROBS, grid=[0.25, 0.5, 0.75]) == 0.5
    assert tune_global_threshold(sp.csr_matrix(Y), PROBS, grid=[0.25, 0.5, 0.75]) == 0.5


def test_global_threshold_takes_lowest_on_ties():
    assert tune_global_threshold(Y, PROBS, grid=[0.45, 0.5, 0.55]) == 0.45
    assert tune_global_threshold(Y, PROBS) == pytest.approx(0.41)  # default 0.01 grid


def test_code_thresholds_shrink_toward_global_by_support():
    # Code 0: 2 positives (0.8, 0.75) above its negatives (0.6, 0.65): best t = 0.7.
    # Code 1: no positives, so the global threshold.
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    probs = np.array([[0.8, 0.9], [0.75, 0.1], [0.6, 0.2], [0.65, 0.3]])
    grid = [0.3, 0.5, 0.7]
    shrunk = tune_code_thresholds(y, probs, global_threshold=0.5, shrinkage=2.0, grid=grid)
    # (2 * 0.7 + 2 * 0.5) / (2 + 2) = 0.6
    np.testing.assert_allclose(shrunk, [0.6, 0.5])
    unshrunk = tune_code_thresholds(y, probs, global_threshold=0.5, shrinkage=0.0, grid=grid)
    np.testing.assert_allclose(unshrunk, [0.7, 0.5])
    # (2 * 0.7 + 198 * 0.5) / 200 = 0.502
    heavy = tune_code_thresholds(y, probs, global_threshold=0.5, shrinkage=198.0, grid=grid)
    np.testing.assert_allclose(heavy, [0.502, 0.5])


def test_each_group_shrinks_toward_its_own_best_threshold():
    # Pooled (0.9+ 0.8+ 0.6- 0.35+ 0.3+ 0.2-), micro-F1 is best from just above 0.2: the
    # lowest such grid value is 0.21. Code 0 alone (0.9+ 0.8+ 0.6-) is perfect from 0.61;
    # code 1 alone (0.35+ 0.3+ 0.2-) from 0.21.
    y = np.array([[1, 1], [1, 1], [0, 0]])
    probs = np.array([[0.9, 0.3], [0.8, 0.35], [0.6, 0.2]])
    # With no own-evidence weight (huge shrinkage) each code gets its group's threshold.
    apart = tune_thresholds(y, probs, shrinkage=1e9, groups=[np.array([0]), np.array([1])])
    pooled = tune_thresholds(y, probs, shrinkage=1e9)
    np.testing.assert_allclose(pooled.per_code, [0.21, 0.21], atol=1e-6)
    np.testing.assert_allclose(apart.per_code, [0.61, 0.21], atol=1e-6)
    assert apart.global_threshold == pooled.global_threshold  # the pooled one, kept


def test_a_group_without_gold_shrinks_toward_the_pooled_threshold():
    y = np.array([[1, 0], [1, 0], [0, 0]])  # code 1: no gold entry
    probs = np.array([[0.9, 0.3], [0.8, 0.35], [0.6, 0.2]])
    apart = tune_thresholds(y, probs, shrinkage=1e9, groups=[np.array([0]), np.array([1])])
    assert apart.per_code[1] == pytest.approx(apart.global_threshold)
    assert apart.global_threshold == tune_global_threshold(y, probs)


def test_code_whose_positives_no_grid_value_catches_gets_global():
    y = np.array([[1], [0]])
    probs = np.array([[0.005], [0.001]])
    np.testing.assert_array_equal(tune_code_thresholds(y, probs, 0.3, shrinkage=0.0), [0.3])


def test_thresholds_apply_and_round_trip():
    thresholds = Thresholds(0.5, np.array([0.6, 0.5]))
    expected = [[True, False], [False, True], [True, False]]
    np.testing.assert_array_equal(thresholds.apply(PROBS), expected)
    restored = Thresholds.from_dict(json.loads(json.dumps(thresholds.to_dict())))
    assert restored.global_threshold == 0.5
    np.testing.assert_array_equal(restored.apply(PROBS), thresholds.apply(PROBS))


def test_thresholds_reject_bad_values():
    with pytest.raises(ValueError, match="per_code thresholds must lie in"):
        Thresholds(0.5, np.array([1.5]))
    with pytest.raises(ValueError, match="3 labels; thresholds have 2"):
        Thresholds(0.5, np.array([0.5, 0.5])).apply(np.full((1, 3), 0.5))
    with pytest.raises(ValueError, match="strictly increasing"):
        tune_global_threshold(Y, PROBS, grid=[0.5, 0.4])
    with pytest.raises(ValueError, match="binary"):
        tune_global_threshold(Y * 2, PROBS)
