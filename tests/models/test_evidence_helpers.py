"""The evidence helpers against the slow definitions they replace."""

from __future__ import annotations

import gc
import pickle
import random
import re

import numpy as np
import pytest
import scipy.sparse as sp

from autocode.collector import collector_paused
from autocode.models import evidence
from autocode.models.evidence import (
    NgramLocator,
    RecentBatches,
    StrongestFeatures,
    top_weighted_features,
)
from autocode.models.linear import LinearWeights
from autocode.models.pruning import prune_weights
from autocode.models.tfidf import TOKEN_PATTERN


def top_weighted_features_the_slow_way(
    rows: sp.csr_matrix, coef: np.ndarray, notes: np.ndarray, labels: np.ndarray, top_n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, a stable argsort of the label's weights of the note's features, the
    positive ones only."""
    features = np.full((len(notes), top_n), -1, np.int64)
    values = np.zeros((len(notes), top_n), coef.dtype)
    for p, (note, label) in enumerate(zip(notes, labels, strict=True)):
        columns = rows.indices[rows.indptr[note] : rows.indptr[note + 1]]
        weights = coef[columns, label]
        best = [k for k in np.argsort(-weights, kind="stable")[:top_n] if weights[k] > 0]
        features[p, : len(best)] = columns[best]
        values[p, : len(best)] = weights[best]
    return features, values


@pytest.mark.parametrize("stages", [evidence.RANK_STAGES, (1, 3, 8)])
@pytest.mark.parametrize("ranked", [None, 2, 12, 40])
@pytest.mark.parametrize("n_notes", [7, 60])
def test_top_weighted_features_are_each_pairs_stable_argsort(
    n_notes: int, ranked: int | None, stages: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(n_notes)
    # Few distinct values: many ties, zeros and negatives; notes with few or no features.
    rows = sp.random(n_notes, 40, density=0.1, random_state=n_notes, format="csr", dtype=np.float32)
    rows.data = rng.integers(1, 3, rows.nnz).astype(np.float32)
    coef = rng.integers(-2, 3, (40, 9)).astype(np.float32)
    notes = rng.integers(0, n_notes, 3 * n_notes)
    labels = rng.integers(0, 9, notes.size)
    monkeypatch.setattr(evidence, "WEIGHTS_BUDGET", 16)  # many chunks, many presence blocks
    monkeypatch.setattr(evidence, "RANKING_BUDGET", 80)  # two labels ranked at a time
    monkeypatch.setattr(evidence, "RANK_STAGES", stages)  # (1, 3, 8): rankings read in stages
    weights = LinearWeights(coef, np.zeros(9, np.float32))
    # `ranked` features per label: 2 and 12 settle some pairs and leave others to the exact
    # path; 40 ranks every feature, so the ranking settles every pair.
    strongest = None if ranked is None else StrongestFeatures.of_weights(weights, ranked)
    for top_n in (1, 2, 5, 3):
        found = top_weighted_features(rows, weights.at, notes, labels, top_n, strongest)
        expected = top_weighted_features_the_slow_way(rows, coef, notes, labels, top_n)
        assert np.array_equal(found[0], expected[0]), top_n
        assert np.array_equal(found[1], expected[1]), top_n
    assert (found[0] == -1).any() and (found[1] > 0).any()  # short rows and real picks seen
    if strongest is not None:
        settled = strongest.top_of_pairs(rows, notes, labels, 3)[2]
        assert settled.all() if ranked == 40 else not settled.all()
        if ranked == 12:
            assert settled.any()
        wider = sp.hstack([rows, sp.csr_matrix((n_notes, 1), dtype=np.float32)]).tocsr()
        with pytest.raises(ValueError, match="rows have 41 features; the ranking has 40"):
            strongest.top_of_pairs(wider, notes, labels, 3)


def test_strongest_features_rank_each_labels_positive_weights() -> None:
    coef = np.array([[0.5, -1.0], [2.0, 0.0], [0.5, 3.0], [-0.1, 1.0]], np.float32)
    strongest = StrongestFeatures.of_weights(LinearWeights(coef, np.zeros(2, np.float32)), 2)
    # Label 0: 2.0 (feature 1), then the tie 0.5 of features 0 and 2, the lower first; three
    # positive weights do not fit in two. Label 1: 3.0, 1.0, and nothing else positive.
    assert strongest.features.tolist() == [[1, 0], [2, 3]]
    assert strongest.weights.tolist() == [[2.0, 0.5], [3.0, 1.0]]
    assert strongest.complete.tolist() == [False, True]
    saved = StrongestFeatures.from_arrays(strongest.as_arrays())
    assert saved.features.tolist() == strongest.features.tolist()
    assert saved.n_features == 4
    # Only the first features (evidence reads the word n-grams, not the char ones): feature
    # 3 is past them, and the padding (3 = n_features) marks the short ranking.
    words = StrongestFeatures.of_weights(LinearWeights(coef, np.zeros(2, np.float32)), 2, 3)
    assert words.features.tolist() == [[1, 0], [2, 3]]
    assert words.weights.tolist() == [[2.0, 0.5], [3.0, 0.0]]
    assert words.complete.tolist() == [False, True]


def test_pruned_weights_rank_as_their_dense_weights() -> None:
    rng = np.random.default_rng(3)
    coef = rng.normal(0, 1, (30, 7)).astype(np.float32)
    coef[:, 0] = -1  # a label without a positive weight: an empty, complete ranking
    X = sp.random(20, 30, density=0.3, random_state=3, format="csr", dtype=np.float32)
    pruned = prune_weights(LinearWeights(coef, np.zeros(7, np.float32)), X, tolerance=0.0)
    dense = LinearWeights(pruned.departures.toarray() + pruned.level[:, None], pruned.intercept)
    for k in (3, 30):
        from_pruned = StrongestFeatures.of_weights(pruned, k)
        from_dense = StrongestFeatures.of_weights(dense, k)
        assert np.array_equal(from_pruned.features, from_dense.features)
        assert np.allclose(from_pruned.weights, from_dense.weights, atol=1e-6)
        assert np.array_equal(from_pruned.complete, from_dense.complete)
    assert from_dense.complete[0] and (from_dense.features[0] == 30).all()


def test_recent_batches_find_the_same_texts_and_travel_empty() -> None:
    recent: RecentBatches[int] = RecentBatches()
    texts = ["a note", "another note"]
    recent.remember(texts, 1)
    recent.remember(["third"], 2)
    assert recent.find(texts) == 1
    assert recent.find(["a note", "another note"]) == 1  # equal strings, other objects
    assert recent.find(["a note"]) is None
    assert recent.find(["third"]) == 2
    assert pickle.loads(pickle.dumps(recent)).find(texts) is None  # no note text travels
    recent.remember(["x"] * (evidence.REMEMBERED_NOTES + 1), 3)  # too large to keep
    assert recent.find(["x"] * (evidence.REMEMBERED_NOTES + 1)) is None
    for k in range(evidence.REMEMBERED_BATCHES):
        recent.remember([str(k)], k)
    assert recent.find(texts) is None  # the oldest batches are forgotten
    assert recent.find(["1"]) == 1
    # Bounded by notes as well: a large batch pushes out older ones it would not fit beside.
    large = [f"note {k}" for k in range(evidence.REMEMBERED_NOTES - 2)]
    recent.remember(large, 4)
    assert recent.find(large) == 4
    assert recent.find(["1"]) is None and recent.find([str(evidence.REMEMBERED_BATCHES - 1)]) == 31


def test_the_collector_is_paused_and_restored_as_it_was() -> None:
    assert gc.isenabled()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def first_span_the_slow_way(text: str, ngram: str) -> tuple[int, int] | None:
    """The vectorizer's tokens of the lowercased text, where lowercasing keeps offsets ("Σ"
    lowercases by what follows it); else the text's tokens, each lowercased."""
    lowered = text.lower()
    if len(lowered) == len(text):
        tokens = [(m.group(), m.start(), m.end()) for m in re.finditer(TOKEN_PATTERN, lowered)]
    else:
        tokens = [(m.group().lower(), m.start(), m.end()) for m in re.finditer(TOKEN_PATTERN, text)]
    words = ngram.split(" ")
    for i in range(len(tokens) - len(words) + 1):
        window = tokens[i : i + len(words)]
        if [token for token, _, _ in window] == words:
            return window[0][1], window[-1][2]
    return None


@pytest.mark.parametrize("asked", [None, 1])  # indexing the note, searching for each n-gram
def test_the_locator_finds_each_ngrams_first_occurrence(asked: int | None) -> None:
    text = "Gout a gout; GOUT flare.\nAcute gout flare, x acute  gout. Ölçü gout_x 2b"
    ngrams = ["gout", "gout flare", "acute gout", "gout gout", "flare acute", "ölçü", "gout_x"]
    ngrams += ["2b", "missing", "flare x", "a gout"]
    # "İ" lowercases to two characters: offsets in the lowercased text would be off by one.
    for note in (text, "İİ " + text):
        located = NgramLocator(note, TOKEN_PATTERN, asked)
        for ngram in ngrams:
            assert located.first(ngram) == first_span_the_slow_way(note, ngram), ngram
    assert NgramLocator("İİ " + text, TOKEN_PATTERN).first("acute gout") == (28, 38)
    assert NgramLocator("", TOKEN_PATTERN).first("gout") is None


@pytest.mark.parametrize("asked", [None, 1])
def test_the_locator_agrees_with_the_token_definition_on_random_texts(asked: int | None) -> None:
    rng = random.Random(0)
    pieces = ["ab", "b", "ba", "abab", "é", "_", "1", " ", "  ", "-", ".", "\n", "中", "\u0301"]
    pieces += ["AB", "Ab", "ß", "ΟΔΟΣ", "Σ", "'", "Β"]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        candidates = ("ab", "ba", "abab", "b1", "ab_", "ß", "中中", "οδος", "οδοσ", "σβ", "ςβ")
        words = [w for w in candidates if rng.random() < 0.7]
        located = NgramLocator(text, TOKEN_PATTERN, asked)
        assert located._searching == (asked is not None)  # the path this case tests
        for n in (1, 2, 3):
            for _ in range(3):
                ngram = " ".join(rng.choice(words or ["ab"]) for _ in range(n))
                assert located.first(ngram) == first_span_the_slow_way(text, ngram), (text, ngram)


def test_the_locators_faster_pattern_splits_as_the_vectorizers_does() -> None:
    pattern = TOKEN_PATTERN.removeprefix("(?u)")  # a flag may not follow "("
    faster = evidence._split_pattern(pattern)
    plain = re.compile(f"({pattern})")
    assert faster.pattern != plain.pattern  # the faster one is used
    rng = random.Random(1)
    characters = ["a", "b", "é", "1", "_", " ", "-", ".", "İ", "ß", "\u0301", "中", "\n", "'"]
    for _ in range(20000):
        text = "".join(rng.choice(characters) for _ in range(rng.randint(0, 20)))
        assert faster.split(text) == plain.split(text), repr(text)
