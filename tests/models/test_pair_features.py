"""The pair features a stack learns from (score features, the matcher's), and the
re-ranker's pass-through, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from autocode.knowledge import CodeKnowledge, LabelTerms
from autocode.labels import LabelSpace
from autocode.models.matcher import (
    CONTEXT_FEATURES,
    MATCHER_FEATURES,
    CodeFacts,
    MatcherModel,
    matcher_features,
)
from autocode.models.rerank import (
    SCORE_FEATURES,
    LabelRerankers,
    Reranker,
    group_max,
    score_features,
)

# ----------------------------------------------------------------------------- pair features


def test_group_max_takes_each_labels_family_maximum() -> None:
    # Interleaved families, and family 2 of one label.
    values = np.array([[0.2, 0.1, 0.7, 0.4, 0.5], [0.9, 0.3, 0.1, 0.0, 0.2]], np.float32)
    group = np.array([1, 0, 1, 0, 2])
    expected = np.array([[0.7, 0.4, 0.7, 0.4, 0.5], [0.9, 0.3, 0.9, 0.3, 0.2]], np.float32)
    assert np.array_equal(group_max(values, group), expected)


def test_pair_features_hold_hand_computed_values() -> None:
    codes = ["ICD10CM:L40.0", "ICD10CM:L40.9", "ICD10CM:R42"]
    # Four training notes: L40.0 gold in three, R42 in one; L40.0's term matched notes 0, 1
    # and 3 (two of them gold), L40.9's note 0 (not gold). All labels: 2 hits in 4 matches.
    gold = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 1], [1, 0, 0], [0, 0, 0]], bool))
    matched = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 0, 0]], bool))
    knowledge = CodeKnowledge()
    terms = LabelTerms.build(codes, knowledge, ["Psoriasis.", "Dizziness."])
    families = [knowledge.terms("ICD10CM:L40"), knowledge.terms("ICD10CM:R42")]
    assert terms.lexicon.terms == [*(knowledge.terms(c) for c in codes), *families]
    facts = CodeFacts.build(terms, gold, matched)
    own, group = terms.match(["Plaque psoriasis, dizzy."])
    scores = np.array([[0.5, 0.8, 0.2]], np.float32)

    from_scores = score_features(scores, facts.group)[0]
    column = {name: from_scores[:, i] for i, name in enumerate(SCORE_FEATURES)}
    assert column["logit"] == pytest.approx([0.0, math.log(4), math.log(0.25)], abs=1e-5)
    assert column["log_rank"] == pytest.approx([math.log(2), 0.0, math.log(3)])
    assert column["share_of_note_max"] == pytest.approx([0.625, 1.0, 0.25])
    assert column["gap_to_best_sibling"] == pytest.approx([-0.3, 0.0, 0.0])

    features = matcher_features(own, group, facts)[0]
    column = {name: features[:, i] for i, name in enumerate(MATCHER_FEATURES)}
    assert column["term_full_match"].tolist() == [1.0, 1.0, 0.0]  # plaque psoriasis / psoriasis
    assert column["group_full_match"].tolist() == [1.0, 1.0, 0.0]
    assert column["log_train_count"] == pytest.approx(np.log1p([3, 0, 1]))
    assert column["log_group_train_count"] == pytest.approx(np.log1p([3, 3, 1]))
    assert column["is_unspecified"].tolist() == [0.0, 1.0, 0.0]
    assert column["full_match_x_unspecified"].tolist() == [0.0, 1.0, 0.0]
    assert column["code_length"].tolist() == [4.0, 4.0, 3.0]
    # (hits + 2 * 0.5) / (matches + 2) where the term matched, else 0.
    assert column["term_match_precision"] == pytest.approx([0.6, 1 / 3, 0.0])
    assert column["full_match_x_log_train_count"] == pytest.approx([math.log(4), 0.0, 0.0])
    assert column["has_terms"].tolist() == [1.0, 1.0, 1.0]
    assert column["is_other"].tolist() == [0.0, 0.0, 0.0]
    # L40.9 ("Psoriasis") fully matches too: no sibling matches better than either.
    assert column["term_gap_to_best_sibling"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    assert column["group_coverage"][:2] == pytest.approx([1.0, 1.0], abs=1e-6)
    # L40.0's description "Psoriasis vulgaris" is half there; its inclusion term is whole.
    assert 0 < column["description_coverage"][0] < 1
    assert column["term_log_full_sentences"][:2] == pytest.approx([math.log(2), math.log(2)])


def test_the_passthrough_reranker_passes_one_models_probabilities_through() -> None:
    scores = np.array([[0.3, 0.9, 0.02]], np.float32)
    features = np.zeros((1, 3, 20), np.float32)
    features[..., 4] = np.log(scores / (1 - scores))
    assert Reranker.passthrough(20, 4).predict_proba(features) == pytest.approx(scores, abs=1e-6)


def test_label_rerankers_score_columns_as_each_systems_reranker_scores_the_stack() -> None:
    rng = np.random.default_rng(0)
    n_notes, n_features = 7, 5
    systems = {"CPT": np.array([1, 4]), "ICD10CM": np.array([0, 2, 3])}
    rerankers = {
        system: Reranker(
            rng.normal(size=n_features).astype(np.float32),
            rng.uniform(0.5, 2, size=n_features).astype(np.float32),
            rng.normal(size=n_features).astype(np.float32),
            float(rng.normal()),
        )
        for system in systems
    }
    features = rng.normal(size=(n_notes, 5, n_features)).astype(np.float32)
    features[..., 2] = rng.normal(size=5)  # one feature the same in every note
    expected = np.empty((n_notes, 5), np.float32)
    for system, columns in systems.items():
        expected[:, columns] = rerankers[system].predict_proba(features[:, columns])

    spread = LabelRerankers.spread(rerankers, systems, 5)
    columns = [features[..., f] for f in range(n_features)]
    columns[2] = features[0, :, 2]  # given once, as a (labels,) row
    assert np.allclose(spread.predict_proba(columns, n_notes), expected, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="4 feature columns; the re-rankers weigh 5"):
        spread.predict_proba(columns[:4], n_notes)


def test_context_features_count_affirmed_mentions_and_flag_negated_only_ones() -> None:
    codes = ["ICD10CM:I10", "ICD10CM:R50.9", "ICD10CM:Z83.3"]
    texts = [
        "Essential hypertension. Hypertension again.",
        "No fever.",
        "Family history of diabetes mellitus. Fever today.",
    ]
    Y = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 1]])
    model = MatcherModel(context_features=True).fit(texts, Y, labels=LabelSpace.from_codes(codes))
    assert model.pair_feature_names == MATCHER_FEATURES + CONTEXT_FEATURES
    features = model.pair_features(texts)
    assert features.shape == (3, 3, len(MATCHER_FEATURES) + 2)
    affirmed, only_in_context = features[..., -2], features[..., -1]
    # Two mentions of I10's names in note 0; "No fever" is negated; note 2 has both.
    assert affirmed[0].tolist() == pytest.approx([math.log(3), 0.0, 0.0])
    assert only_in_context[1].tolist() == [0.0, 1.0, 0.0]
    assert affirmed[2].tolist() == pytest.approx([0.0, math.log(2), math.log(2)])
    assert only_in_context[2].tolist() == [0.0, 0.0, 0.0]
    # Off by default: the features a saved stack learned stay as they were.
    assert MatcherModel().pair_feature_names == MATCHER_FEATURES
