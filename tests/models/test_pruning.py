"""Pruned TF-IDF weights: hand-computed kept entries, lossless at 0, sparse when saved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import scipy.sparse as sp

from autocode.models import TfidfModel, pruning
from autocode.models.linear import LinearWeights
from autocode.models.pruning import PrunedWeights, prune_weights
from autocode.models.tfidf import PRUNED_WEIGHTS_FILE, WEIGHTS_FILE

if TYPE_CHECKING:
    from conftest import TinyCorpus

TINY_PARAMS = {"min_df": 1, "epochs": 30, "batch_size": 8}


def test_a_hand_built_matrix_keeps_the_departures_that_move_a_logit_enough() -> None:
    coef = np.array(
        [
            [-1.0, -1.0, -1.0, 2.0],  # median -1: departures 0, 0, 0, 3
            [0.5, -0.5, 0.1, 0.3],  # median 0.2: departures .3, -.7, -.1, .1
            [4.0, 0.0, 0.0, 0.0],  # never in a training note: largest value 0
        ],
        np.float32,
    )
    # Largest training value of each feature: 0.5, 1.0 and 0 (column 2 is all zero).
    X = sp.csr_matrix(np.array([[0.5, 0.2, 0], [0.1, 1.0, 0]], np.float32))
    weights = LinearWeights(coef, np.array([0.1, 0.2, 0.3, 0.4], np.float32))

    pruned = prune_weights(weights, X, tolerance=0.25)

    # Kept: |departure| × largest >= 0.25, i.e. 3 × 0.5 = 1.5, .3 × 1, and .7 × 1; not
    # .1 × 1 (twice), nor feature 2's 4 × 0.
    assert np.allclose(pruned.level, [-1.0, 0.2, 0.0])
    expected = np.array([[0, 0, 0, 3.0], [0.3, -0.7, 0, 0], [0, 0, 0, 0]], np.float32)
    assert np.allclose(pruned.departures.toarray(), expected)
    assert pruned.departures.nnz == 3
    assert np.array_equal(pruned.intercept, weights.intercept)
    # Scores: X @ (level + departures) + intercept, by hand for the first note.
    note = sp.csr_matrix(np.array([[0.5, 0.2, 0]], np.float32))
    by_hand = [
        0.5 * -1 + 0.2 * (0.2 + 0.3) + 0.1,
        0.5 * -1 + 0.2 * (0.2 - 0.7) + 0.2,
        0.5 * -1 + 0.2 * 0.2 + 0.3,
        0.5 * (-1 + 3) + 0.2 * 0.2 + 0.4,
    ]
    assert np.allclose(pruned.decision_function(note), [by_hand], atol=1e-6)


def test_pruning_at_tolerance_zero_is_lossless() -> None:
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(30, 7)).astype(np.float32)
    X = sp.random(12, 30, density=0.3, format="csr", dtype=np.float32, random_state=1)
    weights = LinearWeights(coef, rng.normal(size=7).astype(np.float32))

    pruned = prune_weights(weights, X, tolerance=0.0)

    restored = pruned.departures.toarray() + pruned.level[:, None]
    assert np.allclose(restored, coef, atol=1e-6)
    assert np.allclose(pruned.predict_proba(X), weights.predict_proba(X), atol=1e-6)
    features, labels = np.array([3, 0, 29, 3]), np.array([6, 1, 0, 6])
    assert np.array_equal(weights.at(features, labels), coef[features, labels])
    assert np.allclose(pruned.at(features, labels), coef[features, labels], atol=1e-6)


def test_weights_at_pairs_read_the_kept_departures_and_the_levels() -> None:
    # Feature 0: level 1, one departure kept (+2 for label 1); feature 1: level -1, none.
    departures = sp.csr_matrix(np.array([[0, 2, 0], [0, 0, 0]], np.float32))
    pruned = PrunedWeights(np.array([1, -1], np.float32), departures, np.zeros(3, np.float32))
    features, labels = np.array([0, 0, 1, 0, 1]), np.array([1, 0, 2, 2, 1])
    assert pruned.at(features, labels).tolist() == [3.0, 1.0, -1.0, 1.0, -1.0]


def test_a_negative_or_nan_tolerance_is_refused() -> None:
    weights = LinearWeights(np.zeros((2, 2), np.float32), np.zeros(2, np.float32))
    X = sp.csr_matrix(np.ones((1, 2), np.float32))
    for tolerance in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="prune tolerance must be >= 0"):
            prune_weights(weights, X, tolerance)


def test_a_pruned_model_saves_sparse_and_loads_the_same_probabilities(
    tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    dense = TfidfModel(**TINY_PARAMS).fit(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
    )
    pruned = TfidfModel(**TINY_PARAMS, prune_tolerance=0.05).fit(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
    )
    assert isinstance(pruned.weights_, PrunedWeights)
    n_weights = dense.weights_.coef.size
    assert 0 < pruned.weights_.departures.nnz < n_weights  # something dropped, not all

    pruned.save(tmp_path)
    loaded = TfidfModel.load(tmp_path)

    assert (tmp_path / PRUNED_WEIGHTS_FILE).is_file()
    assert not (tmp_path / WEIGHTS_FILE).exists()
    # Held sparse after loading too: prediction never builds the dense matrix.
    assert isinstance(loaded.weights_, PrunedWeights)
    assert sp.issparse(loaded.weights_.departures)
    texts = tiny_corpus.heldout_texts + tiny_corpus.texts
    assert np.array_equal(loaded.predict_proba(texts), pruned.predict_proba(texts))
    # Each held-out note names one code: pruning leaves the code ranked first.
    heldout = tiny_corpus.heldout_texts
    top = np.argmax(pruned.predict_proba(heldout), axis=1)
    assert np.array_equal(top, np.argmax(dense.predict_proba(heldout), axis=1))
    assert loaded.evidence(texts[0], [0, 1]) == pruned.evidence(texts[0], [0, 1])


def test_a_pruned_model_saved_as_format_3_still_loads(
    tiny_corpus: TinyCorpus, tmp_path: Path
) -> None:
    # Format 4 only added `single_characters`: every Coder pruned before it must load.
    pruned = TfidfModel(**TINY_PARAMS, prune_tolerance=0.05).fit(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
    )
    pruned.save(tmp_path)
    for path in tmp_path.iterdir():
        if path.suffix == ".json":
            state = json.loads(path.read_text())
            state.get("params", {}).pop("single_characters", None)  # as format 3 wrote
            path.write_text(json.dumps({**state, "format_version": 3}))
        else:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            np.savez(path, **{**arrays, "format_version": np.int64(3)})
    loaded = TfidfModel.load(tmp_path)
    assert isinstance(loaded.weights_, PrunedWeights) and not loaded.single_characters
    texts = tiny_corpus.heldout_texts + tiny_corpus.texts
    assert np.array_equal(loaded.predict_proba(texts), pruned.predict_proba(texts))


def test_a_model_pruned_at_zero_predicts_as_the_dense_one(tiny_corpus: TinyCorpus) -> None:
    dense = TfidfModel(**TINY_PARAMS).fit(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
    )
    lossless = TfidfModel(**TINY_PARAMS, prune_tolerance=0.0).fit(
        tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels
    )
    texts = tiny_corpus.heldout_texts
    assert np.allclose(lossless.predict_proba(texts), dense.predict_proba(texts), atol=1e-6)
    evidence = [(s.start, s.end) for s in lossless.evidence(texts[0], [0])[0]]
    assert evidence == [(s.start, s.end) for s in dense.evidence(texts[0], [0])[0]]


def test_the_fullest_rows_are_multiplied_dense_and_the_scores_stay_the_same() -> None:
    departures = np.zeros((5, 8), np.float32)
    departures[1] = np.arange(1, 9)  # every label kept: a dense row
    departures[3, :2] = [0.5, -0.5]  # 2 of 8 labels: exactly the 1/4 share, dense too
    departures[4, 0] = 2.0  # 1 of 8: stays sparse
    level = np.array([0.1, -0.2, 0.0, 0.3, -0.1], np.float32)
    weights = PrunedWeights(level, sp.csr_matrix(departures), np.full(8, 0.5, np.float32))
    X = sp.csr_matrix(np.array([[1.0, 0.5, 0, 0.2, 0.4], [0, 0, 1.0, 0, 0.3]], np.float32))

    dense_rows, dense_block, sparse_rest = weights._split

    assert dense_rows.tolist() == [1, 3]
    assert np.array_equal(dense_block, departures[[1, 3]])
    assert sparse_rest.nnz == 1
    expected = X.toarray() @ (departures + level[:, None]) + 0.5
    assert np.allclose(weights.decision_function(X), expected, atol=1e-6)


def test_tfidf_fold_models_learn_nothing_of_their_held_out_labels(
    tiny_corpus: TinyCorpus,
) -> None:
    from autocode.models.crossfit import fold_splits

    folds = fold_splits(len(tiny_corpus.texts), folds=3, seed=0)
    model = TfidfModel(**TINY_PARAMS, prune_tolerance=0.05)
    fold_models = list(
        model.fold_models(tiny_corpus.texts, tiny_corpus.Y, labels=tiny_corpus.labels, folds=folds)
    )
    for k, (_, held_rows) in enumerate(folds):
        scrambled = tiny_corpus.Y.copy()
        scrambled[held_rows] = 1 - scrambled[held_rows]  # every held-out label flipped
        again = list(
            model.fold_models(tiny_corpus.texts, scrambled, labels=tiny_corpus.labels, folds=folds)
        )[k]
        texts = tiny_corpus.heldout_texts
        assert np.array_equal(again.predict_proba(texts), fold_models[k].predict_proba(texts))
    # The vocabulary is fitted once, on every note, and shared by the folds.
    vocabularies = [m.vectorizers_[0].vocabulary_ for m in fold_models]
    assert all(v is vocabularies[0] for v in vocabularies)
    assert isinstance(fold_models[0].weights_, PrunedWeights)


def test_weights_at_pairs_are_the_same_read_in_blocks_of_labels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(3)
    coef = rng.normal(size=(40, 9)).astype(np.float32)
    X = sp.random(20, 40, density=0.3, format="csr", dtype=np.float32, random_state=2)
    pruned = prune_weights(LinearWeights(coef, np.zeros(9, np.float32)), X, tolerance=0.3)
    features, labels = rng.integers(0, 40, 200), rng.integers(0, 9, 200)
    dense = pruned.departures.toarray() + pruned.level[:, None]
    expected = dense[features, labels]
    assert np.array_equal(pruned.at(features, labels), expected)
    monkeypatch.setattr(pruning, "BLOCK_BUDGET", 2 * 40)  # two labels' columns at a time
    fresh = PrunedWeights(pruned.level, pruned.departures, pruned.intercept)
    assert np.array_equal(fresh.at(features, labels), expected)
