"""`descending_order`: the stable descending argsort, by sortable keys."""

from __future__ import annotations

import numpy as np

from autocode.models.rerank import descending_order


def test_descending_order_breaks_ties_by_column_as_a_stable_sort() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.0], [0.0, -0.0, 1.0, 0.0]], np.float32)
    assert descending_order(scores).tolist() == [[1, 0, 2, 3], [2, 0, 1, 3]]


def test_descending_order_is_the_stable_argsort_of_many_tied_scores() -> None:
    rng = np.random.default_rng(3)
    scores = rng.choice(np.array([0.0, 1e-7, 0.25, 0.5, 1.0, 3e-39], np.float32), (20, 300))
    expected = np.argsort(-scores, axis=1, kind="stable")
    assert np.array_equal(descending_order(scores), expected)
    doubles = scores.astype(np.float64) + 1e-12  # float64: the plain stable argsort
    assert np.array_equal(descending_order(doubles), np.argsort(-doubles, axis=1, kind="stable"))
