"""Metrics checked against hand-computed values on tiny matrices, and against sklearn."""

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import (
    average_precision_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from autocode import metrics
from autocode.config import dotted
from autocode.metrics import PRF

Converter = Callable[[np.ndarray], Any]

# The running example: 3 documents x 4 labels. Label 3 is in neither gold nor predicted.
Y_TRUE = np.array(
    [
        [1, 0, 1, 0],
        [0, 1, 0, 0],
        [1, 0, 0, 0],
    ]
)
Y_PRED = np.array(
    [
        [1, 1, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
    ]
)
Y_SCORE = np.array(
    [
        [0.9, 0.8, 0.3, 0.1],  # ranking 0,1,2,3; gold {0,2} at ranks 1 and 3
        [0.2, 0.7, 0.4, 0.6],  # ranking 1,3,2,0; gold {1} at rank 1
        [0.4, 0.1, 0.6, 0.5],  # ranking 2,3,0,1; gold {0} at rank 3
    ]
)


@pytest.fixture(params=["dense", "csr", "csc_matrix"])
def as_input(request: pytest.FixtureRequest) -> Converter:
    """Run a test once per accepted binary-matrix type."""
    converters = {"dense": np.asarray, "csr": sp.csr_array, "csc_matrix": sp.csc_matrix}
    return converters[request.param]


# -- set-based metrics ----------------------------------------------------------------


def test_micro_prf_by_hand(as_input: Converter) -> None:
    # tp: (d0,L0), (d1,L1) = 2; predicted = 4; gold = 4
    # P = 2/4, R = 2/4, F1 = 2*2 / (4 + 4) = 0.5
    assert metrics.micro_prf(as_input(Y_TRUE), as_input(Y_PRED)) == PRF(0.5, 0.5, 0.5)


def test_per_code_prf_by_hand(as_input: Converter) -> None:
    # L0: gold {d0,d2}, pred {d0}    -> tp 1: P 1/1, R 1/2, F1 2/(1+2) = 2/3
    # L1: gold {d1},    pred {d0,d1} -> tp 1: P 1/2, R 1/1, F1 2/(2+1) = 2/3
    # L2: gold {d0},    pred {d2}    -> tp 0: P 0,   R 0,   F1 0
    # L3: nothing                    -> 0/0 everywhere, reported as 0
    precision, recall, f1, support = metrics.per_code_prf(as_input(Y_TRUE), as_input(Y_PRED))
    np.testing.assert_allclose(precision, [1, 1 / 2, 0, 0])
    np.testing.assert_allclose(recall, [1 / 2, 1, 0, 0])
    np.testing.assert_allclose(f1, [2 / 3, 2 / 3, 0, 0])
    np.testing.assert_array_equal(support, [2, 1, 1, 0])


def test_macro_prf_excludes_codes_absent_from_gold_and_predicted(as_input: Converter) -> None:
    # Over L0..L2 only (L3 is in neither set):
    # P = (1 + 1/2 + 0)/3 = 1/2;  R = (1/2 + 1 + 0)/3 = 1/2;  F1 = (2/3 + 2/3 + 0)/3 = 4/9
    # (F1 of macro P and R would be 1/2: the mean of per-code F1 differs.)
    result = metrics.macro_prf(as_input(Y_TRUE), as_input(Y_PRED))
    assert result.precision == pytest.approx(1 / 2)
    assert result.recall == pytest.approx(1 / 2)
    assert result.f1 == pytest.approx(4 / 9)


def test_macro_counts_a_code_only_predicted() -> None:
    # L1 is predicted but never gold: it is kept, with P = R = F1 = 0.
    # L0: P 1, R 1, F1 1  ->  macro F1 = (1 + 0)/2 = 1/2
    result = metrics.macro_prf(np.array([[1, 0, 0]]), np.array([[1, 1, 0]]))
    assert result == PRF(0.5, 0.5, 0.5)


def test_micro_and_macro_agree_with_sklearn_on_seen_labels() -> None:
    rng = np.random.default_rng(0)
    y_true = (rng.random((40, 12)) < 0.2).astype(int)
    y_pred = (rng.random((40, 12)) < 0.2).astype(int)
    y_true[:, 11] = y_pred[:, 11] = 0  # a label in neither set, which macro must skip
    seen = np.flatnonzero((y_true + y_pred).sum(axis=0) > 0)

    micro = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    macro = precision_recall_fscore_support(
        y_true, y_pred, average="macro", labels=seen, zero_division=0
    )
    assert metrics.micro_prf(y_true, y_pred) == pytest.approx(PRF(*micro[:3]))
    assert metrics.macro_prf(y_true, y_pred) == pytest.approx(PRF(*macro[:3]))


def test_all_zero_predictions_score_zero() -> None:
    no_predictions = np.zeros_like(Y_TRUE)
    assert metrics.micro_prf(Y_TRUE, no_predictions) == PRF(0.0, 0.0, 0.0)
    # Seen codes L0..L2 all have recall 0 and precision 0/0 -> 0.
    assert metrics.macro_prf(Y_TRUE, no_predictions) == PRF(0.0, 0.0, 0.0)
    assert metrics.exact_match(Y_TRUE, no_predictions) == 0.0


def test_exact_match_by_hand(as_input: Converter) -> None:
    # d0: {0,2} vs {0,1} no; d1: {1} vs {1} yes; d2: {0} vs {2} no -> 1/3
    assert metrics.exact_match(as_input(Y_TRUE), as_input(Y_PRED)) == pytest.approx(1 / 3)
    # Two documents with no gold and no predicted codes match.
    assert metrics.exact_match(np.zeros((2, 3)), np.zeros((2, 3))) == 1.0


# -- ranking metrics ------------------------------------------------------------------


def test_precision_and_recall_at_k_by_hand(as_input: Converter) -> None:
    y_true = as_input(Y_TRUE)
    # Top 1: d0 -> L0 (gold), d1 -> L1 (gold), d2 -> L2 (not gold)
    # P@1 = (1 + 1 + 0)/3 = 2/3;  R@1 = (1/2 + 1/1 + 0/1)/3 = 1/2
    assert metrics.precision_at_k(y_true, Y_SCORE, 1) == pytest.approx(2 / 3)
    assert metrics.recall_at_k(y_true, Y_SCORE, 1) == pytest.approx(1 / 2)
    # Top 2: d0 {0,1} 1 hit, d1 {1,3} 1 hit, d2 {2,3} 0 hits
    # P@2 = (1/2 + 1/2 + 0)/3 = 1/3;  R@2 = (1/2 + 1 + 0)/3 = 1/2
    assert metrics.precision_at_k(y_true, Y_SCORE, 2) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(y_true, Y_SCORE, 2) == pytest.approx(1 / 2)


def test_k_above_n_labels_is_clamped() -> None:
    # k = 10 acts as k = 4: every gold code is found.
    # P = (2/4 + 1/4 + 1/4)/3 = 1/3;  R = 1
    assert metrics.precision_at_k(Y_TRUE, Y_SCORE, 10) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(Y_TRUE, Y_SCORE, 10) == 1.0


def test_documents_without_gold_count_for_precision_not_recall() -> None:
    y_true = np.vstack([Y_TRUE, [0, 0, 0, 0]])
    y_score = np.vstack([Y_SCORE, [0.1, 0.2, 0.3, 0.4]])
    # P@1 = (1 + 1 + 0 + 0)/4 = 1/2;  R@1 unchanged at 1/2 (d3 excluded)
    assert metrics.precision_at_k(y_true, y_score, 1) == pytest.approx(1 / 2)
    assert metrics.recall_at_k(y_true, y_score, 1) == pytest.approx(1 / 2)
    assert math.isnan(metrics.recall_at_k(np.zeros((2, 3)), np.ones((2, 3)), 1))


def test_mean_average_precision_by_hand(as_input: Converter) -> None:
    # trec_eval AP = (1/|gold|) * sum of precision@r at the ranks r of gold codes:
    # d0: gold at ranks 1, 3 -> (1/1 + 2/3)/2 = 5/6
    # d1: gold at rank 1     -> 1/1         = 1
    # d2: gold at rank 3     -> 1/3         = 1/3
    # MAP = (5/6 + 6/6 + 2/6)/3 = 13/18
    result = metrics.mean_average_precision(as_input(Y_TRUE), Y_SCORE)
    assert result == pytest.approx(13 / 18)


def test_map_matches_trec_eval_on_a_longer_list() -> None:
    # Ranked list of 8 codes with gold at ranks 2, 3, 6 and 8 (the last place):
    # AP = (1/4) * (1/2 + 2/3 + 3/6 + 4/8) = (1/4) * (13/6) = 13/24
    y_score = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]])
    y_true = np.array([[0, 1, 1, 0, 0, 1, 0, 1]])
    assert metrics.mean_average_precision(y_true, y_score) == pytest.approx(13 / 24)


def test_ties_are_broken_by_label_index() -> None:
    # All scores equal -> ranking 0,1,2,3; gold {2} sits at rank 3.
    y_true, y_score = np.array([[0, 0, 1, 0]]), np.full((1, 4), 0.5)
    assert metrics.precision_at_k(y_true, y_score, 2) == 0.0
    assert metrics.precision_at_k(y_true, y_score, 3) == pytest.approx(1 / 3)
    assert metrics.mean_average_precision(y_true, y_score) == pytest.approx(1 / 3)


def test_map_agrees_with_sklearn_average_precision_without_ties() -> None:
    rng = np.random.default_rng(1)
    y_score = rng.random((30, 15))
    y_true = (rng.random((30, 15)) < 0.3).astype(int)
    y_true[:, 0] = 1  # every document has a gold code
    expected = np.mean(
        [average_precision_score(t, s) for t, s in zip(y_true, y_score, strict=True)]
    )
    assert metrics.mean_average_precision(y_true, y_score) == pytest.approx(expected)


def test_auc_by_hand(as_input: Converter) -> None:
    y_true = as_input(Y_TRUE)
    # Macro: labels with both classes are L0..L2 (L3 has no positive, so is skipped).
    # L0: pos {0.9, 0.4} vs neg {0.2}      -> 2 of 2 pairs ordered -> 1
    # L1: pos {0.7}      vs neg {0.8, 0.1} -> 1 of 2               -> 1/2
    # L2: pos {0.3}      vs neg {0.4, 0.6} -> 0 of 2               -> 0
    # macro = (1 + 1/2 + 0)/3 = 1/2
    assert metrics.auc(y_true, Y_SCORE, "macro") == pytest.approx(1 / 2)
    # Micro: 4 positives {0.9, 0.3, 0.7, 0.4}, 8 negatives
    # {0.1, 0.1, 0.2, 0.4, 0.5, 0.6, 0.6, 0.8}. Negatives below each positive:
    # 0.9 -> 8; 0.3 -> 3; 0.7 -> 7; 0.4 -> 3 + 1/2 (tie with 0.4)  => 21.5 / 32
    assert metrics.auc(y_true, Y_SCORE, "micro") == pytest.approx(21.5 / 32)


def test_auc_agrees_with_sklearn() -> None:
    rng = np.random.default_rng(2)
    y_score = np.round(rng.random((50, 8)), 1)  # rounding makes ties
    y_true = (rng.random((50, 8)) < 0.3).astype(int)
    y_true[0], y_true[1] = 1, 0  # every label has both classes
    expected_micro = roc_auc_score(y_true, y_score, average="micro")
    expected_macro = roc_auc_score(y_true, y_score, average="macro")
    assert metrics.auc(y_true, y_score, "micro") == pytest.approx(expected_micro)
    assert metrics.auc(y_true, y_score, "macro") == pytest.approx(expected_macro)


def test_float32_scores_give_the_float64_results() -> None:
    report = metrics.evaluate(Y_TRUE, Y_SCORE, Y_PRED, ["CPT:1", "CPT:2", "CPT:3", "CPT:4"])
    report32 = metrics.evaluate(
        Y_TRUE, Y_SCORE.astype(np.float32), Y_PRED, ["CPT:1", "CPT:2", "CPT:3", "CPT:4"]
    )
    for key in report.keys() - {"per_system"}:
        assert report32[key] == pytest.approx(report[key]), key


def test_block_size_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    y_score = rng.random((7, 5))
    y_true = (rng.random((7, 5)) < 0.4).astype(int)
    labels = [f"CPT:{i}" for i in range(5)]
    whole = metrics.evaluate(y_true, y_score, y_true, labels, ks=(1, 3))
    # 6 cells per block: one row (of 5 labels) or one column (of 7 documents) at a time.
    monkeypatch.setattr(metrics, "_BLOCK_CELLS", 6)
    assert metrics.evaluate(y_true, y_score, y_true, labels, ks=(1, 3)) == whole


def test_auc_is_nan_only_when_nothing_is_defined() -> None:
    assert math.isnan(metrics.auc(np.zeros((2, 2)), np.ones((2, 2)), "micro"))
    assert math.isnan(metrics.auc(np.array([[1, 0], [1, 0]]), np.ones((2, 2)), "macro"))
    with pytest.raises(ValueError, match="average"):
        metrics.auc(Y_TRUE, Y_SCORE, "weighted")  # type: ignore[arg-type]


# -- calibration ----------------------------------------------------------------------


def test_ece_by_hand(as_input: Converter) -> None:
    y_true = as_input(np.array([[1, 0], [1, 1]]))
    y_prob = np.array([[0.8, 0.2], [0.6, 0.9]])
    # 2 bins: [0, 0.5) holds {0.2 (y=0)};  [0.5, 1] holds {0.8, 0.6, 0.9 (all y=1)}
    # bin 0: mean 0.2,       observed 0 -> gap 0.2,     weight 1/4
    # bin 1: mean 2.3/3,     observed 1 -> gap 0.7/3,   weight 3/4
    # ECE = 0.2/4 + 0.7/4 = 0.225
    assert metrics.expected_calibration_error(y_true, y_prob, n_bins=2) == pytest.approx(0.225)
    curve = metrics.reliability_curve(y_true, y_prob, n_bins=2)
    np.testing.assert_allclose(curve.mean_predicted, [0.2, 2.3 / 3])
    np.testing.assert_allclose(curve.observed_frequency, [0.0, 1.0])
    np.testing.assert_array_equal(curve.count, [1, 3])


def test_reliability_curve_bin_edges_and_empty_bins() -> None:
    # 4 bins of width 0.25: 0.0 -> bin 0, 0.25 -> bin 1 (left edge), 1.0 -> last bin;
    # bin 2 stays empty and reports NaN means with a zero count.
    curve = metrics.reliability_curve(np.array([[0, 1, 1]]), np.array([[0.0, 0.25, 1.0]]), 4)
    np.testing.assert_array_equal(curve.count, [1, 1, 0, 1])
    np.testing.assert_allclose(curve.mean_predicted, [0.0, 0.25, np.nan, 1.0])
    np.testing.assert_allclose(curve.observed_frequency, [0.0, 1.0, np.nan, 1.0])
    # Only bin 1 is miscalibrated: |1 - 0.25| * (1 of 3 entries) = 0.25
    assert metrics.expected_calibration_error(
        np.array([[0, 1, 1]]), np.array([[0.0, 0.25, 1.0]]), 4
    ) == pytest.approx(0.25)


def test_candidate_calibration_reads_only_the_probable_pairs_and_each_notes_top_k(
    as_input: Converter,
) -> None:
    y_true = as_input(np.array([[1, 0, 0, 0], [0, 0, 1, 0]]))
    y_prob = np.array([[0.9, 0.3, 0.005, 0.0], [0.004, 0.002, 0.001, 0.0]])
    # Top 2 per note, or p >= 0.01, and p > 0: note 0's 0.9 and 0.3 (0.005 is third);
    # note 1's 0.004 and 0.002 (its gold 0.001 is third, and 0.0 is never a candidate).
    # 2 bins: [0, 0.5) holds 0.3, 0.004, 0.002, none gold: gap 0.306/3, weight 3/4;
    # [0.5, 1] holds 0.9, gold: gap 0.1, weight 1/4. ECE = 0.306/4 + 0.1/4 = 0.1015.
    found = metrics.candidate_calibration(y_true, y_prob, n_bins=2, top_k=2)
    assert found == {"ece": pytest.approx(0.1015), "pairs": 4}
    # Over every pair instead, the near-zero negatives pull it down: 8 pairs.
    assert metrics.expected_calibration_error(y_true, y_prob, n_bins=2) < found["ece"]
    assert metrics.candidate_calibration(y_true, np.zeros((2, 4))) == {"ece": 0.0, "pairs": 0}
    assert metrics.candidate_calibration(np.zeros((2, 0)), np.zeros((2, 0)))["pairs"] == 0


def test_ece_rejects_values_outside_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.expected_calibration_error(np.array([[1]]), np.array([[1.5]]))


# -- reports --------------------------------------------------------------------------


def test_frequency_buckets_boundaries() -> None:
    buckets = metrics.frequency_buckets(np.array([0, 1, 5, 6, 50, 51, 1000]))
    assert buckets.tolist() == ["0", "1-5", "1-5", "6-50", "6-50", ">50", ">50"]
    with pytest.raises(ValueError, match="non-negative"):
        metrics.frequency_buckets(np.array([-1]))


LABELS = ["ICD10CM:A00", "ICD10CM:B01", "ICD10PCS:BN20"]
# 3 documents x 3 labels; the PCS column is gold only in d2 and predicted only in d0.
SYS_TRUE = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1]])
SYS_PRED = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]])
SYS_SCORE = np.array([[0.9, 0.2, 0.6], [0.3, 0.8, 0.1], [0.4, 0.1, 0.3]])


def test_evaluate_splits_by_system() -> None:
    report = metrics.evaluate(SYS_TRUE, SYS_SCORE, SYS_PRED, LABELS, ks=(1, 2))
    cm, pcs = report["per_system"]["ICD10CM"], report["per_system"]["ICD10PCS"]
    assert set(report["per_system"]) == {"ICD10CM", "ICD10PCS"}
    # Overall: tp 2 (d0 A00, d1 B01), predicted 3, gold 4 -> P 2/3, R 1/2, F1 4/7
    assert report["micro_precision"] == pytest.approx(2 / 3)
    assert report["micro_recall"] == pytest.approx(1 / 2)
    assert report["micro_f1"] == pytest.approx(4 / 7)
    # ICD10CM columns: tp 2, predicted 2, gold 3 -> P 1, R 2/3, F1 4/5
    assert cm["micro_precision"] == 1.0
    assert cm["micro_recall"] == pytest.approx(2 / 3)
    assert cm["micro_f1"] == pytest.approx(4 / 5)
    # ICD10CM P@1: d0 A00 hit, d1 B01 hit, d2 A00 hit -> 1; R@1: (1 + 1 + 1/1)/3 = 1
    assert cm["precision_at_k"]["1"] == 1.0
    assert cm["recall_at_k"]["1"] == 1.0
    # ICD10PCS alone is one column: P@1 counts all 3 documents -> 1/3, while R@1 only
    # counts d2, the one document with a PCS gold code -> 1/1.
    assert pcs["precision_at_k"]["1"] == pytest.approx(1 / 3)
    assert pcs["recall_at_k"]["1"] == 1.0
    # ICD10PCS: tp 0 -> everything 0; only d1 agrees (empty vs empty) -> exact match 1/3
    assert pcs["micro_f1"] == 0.0
    assert pcs["exact_match"] == pytest.approx(1 / 3)
    assert pcs["documents"] == 3


def test_evaluate_matches_the_single_metrics() -> None:
    report = metrics.evaluate(SYS_TRUE, SYS_SCORE, SYS_PRED, LABELS, ks=(1, 2))
    assert report["macro_f1"] == metrics.macro_prf(SYS_TRUE, SYS_PRED).f1
    assert report["precision_at_k"]["2"] == metrics.precision_at_k(SYS_TRUE, SYS_SCORE, 2)
    assert report["map"] == metrics.mean_average_precision(SYS_TRUE, SYS_SCORE)
    assert report["auc_macro"] == metrics.auc(SYS_TRUE, SYS_SCORE, "macro")
    assert report["ece"] == metrics.expected_calibration_error(SYS_TRUE, SYS_SCORE)
    cm = slice(0, 2)
    assert report["per_system"]["ICD10CM"]["map"] == metrics.mean_average_precision(
        SYS_TRUE[:, cm], SYS_SCORE[:, cm]
    )


def test_evaluate_per_bucket_and_json() -> None:
    report = metrics.evaluate(
        SYS_TRUE, SYS_SCORE, SYS_PRED, LABELS, train_counts=np.array([100, 3, 3])
    )
    # ">50" = {A00}: tp 1, predicted 1, gold 2 -> P 1, R 1/2, F1 2/3
    # "1-5" = {B01, BN20}: tp 1, predicted 2, gold 2 -> P 1/2, R 1/2, F1 1/2;
    #         per-code F1: B01 1, BN20 0 -> macro F1 1/2
    assert set(report["per_bucket"]) == {">50", "1-5"}
    assert report["per_bucket"][">50"]["micro_f1"] == pytest.approx(2 / 3)
    assert report["per_bucket"]["1-5"] == pytest.approx(
        {"micro_precision": 0.5, "micro_recall": 0.5, "micro_f1": 0.5, "macro_f1": 0.5, "codes": 2}
    )
    assert set(report["precision_at_k"]) == {"5", "8", "15"}
    assert json.loads(json.dumps(report)) == report


# Gold codes the model never saw: the evaluation appends them as unranked columns.
UNSEEN_LABELS = ["ICD10CM:A00", "ICD10CM:B01", "ICD9CM:428.0"]
UNSEEN_TRUE = np.array([[1, 0, 1], [0, 1, 1]])  # every note has the unseen ICD9CM code
UNSEEN_SCORE = np.array([[0.9, 0.2, 0.0], [0.6, 0.1, 0.0]])
UNSEEN_PRED = np.array([[1, 0, 0], [1, 0, 0]])
UNSEEN = np.array([False, False, True])


def test_a_system_the_model_never_saw_scores_zero_in_every_ranking_metric() -> None:
    report = metrics.evaluate(
        UNSEEN_TRUE, UNSEEN_SCORE, UNSEEN_PRED, UNSEEN_LABELS, unranked=UNSEEN
    )
    icd9 = report["per_system"]["ICD9CM"]
    # The model ranks no ICD9CM code, so it retrieves none at any k: before the fix its
    # one zero-score column ranked first and gave P@5 = R@5 = MAP = 1.
    assert icd9["micro_recall"] == 0.0
    assert icd9["precision_at_k"] == {"5": 0.0, "8": 0.0, "15": 0.0}
    assert icd9["recall_at_k"] == {"5": 0.0, "8": 0.0, "15": 0.0}
    assert icd9["map"] == 0.0
    # Every entry is an unranked positive: no negative to compare with.
    assert math.isnan(icd9["auc_micro"])


def test_unseen_gold_codes_are_never_retrieved_overall() -> None:
    report = metrics.evaluate(
        UNSEEN_TRUE, UNSEEN_SCORE, UNSEEN_PRED, UNSEEN_LABELS, ks=(1, 2, 5), unranked=UNSEEN
    )
    # Ranked columns only: d0 ranks A00, B01 (gold A00 + unseen); d1 ranks A00, B01
    # (gold B01 + unseen). |gold| is 2 in both notes.
    # P@1 = (1 + 0)/2 = 1/2;  P@2 = (1/2 + 1/2)/2 = 1/2;  P@5 clamps to the 2 ranked: 1/2
    # R@1 = (1/2 + 0)/2 = 1/4;  R@2 = R@5 = (1/2 + 1/2)/2 = 1/2
    # AP (trec_eval: a gold code never retrieved adds 0): d0 (1/1)/2 = 1/2, d1 (1/2)/2 = 1/4
    # MAP = (1/2 + 1/4)/2 = 3/8 (ranking the unseen code last instead gives 17/24).
    assert report["precision_at_k"] == pytest.approx({"1": 0.5, "2": 0.5, "5": 0.5})
    assert report["recall_at_k"] == pytest.approx({"1": 0.25, "2": 0.5, "5": 0.5})
    assert report["map"] == pytest.approx(3 / 8)
    cm = report["per_system"]["ICD10CM"]
    assert cm["map"] == pytest.approx((1 + 1 / 2) / 2)
    assert cm["recall_at_k"]["1"] == pytest.approx(1 / 2)


def test_an_unseen_column_loses_ties_with_ranked_zero_scores() -> None:
    # The unseen column comes first by index and ties at 0.0 with the ranked C02.
    labels = ["ICD10CM:A00", "ICD10CM:B01", "ICD10CM:C02"]
    y_true, y_score = np.array([[1, 0, 1]]), np.array([[0.0, 0.5, 0.0]])
    report = metrics.evaluate(
        y_true, y_score, np.zeros((1, 3)), labels, ks=(1, 2, 5), unranked=np.array([1, 0, 0], bool)
    )
    # Ranked list: B01, C02. Gold C02 at rank 2; A00 never retrieved.
    # P@1 = 0; P@2 = P@5 = 1/2; R@2 = 1/2; AP = (1/2)/2 = 1/4
    assert report["precision_at_k"] == pytest.approx({"1": 0.0, "2": 0.5, "5": 0.5})
    assert report["recall_at_k"] == pytest.approx({"1": 0.0, "2": 0.5, "5": 0.5})
    assert report["map"] == pytest.approx(1 / 4)


def test_unseen_entries_sit_below_every_ranked_entry_in_the_micro_auc() -> None:
    labels = ["ICD10CM:A00", "ICD10CM:B01", "ICD9CM:428.0"]
    y_true = np.array([[1, 0, 1], [0, 1, 0]])
    y_score = np.array([[0.5, 0.0, 0.0], [0.2, 0.4, 0.0]])
    report = metrics.evaluate(y_true, y_score, y_true, labels, unranked=UNSEEN)
    # Ranked positives {0.5, 0.4} beat ranked negatives {0.0, 0.2}: 4 pairs. The unseen
    # negative (d1) is below both ranked positives: 2 pairs; unseen positive vs unseen
    # negative tie: 1/2. The unseen positive beats no ranked negative, not even the 0.0.
    # AUC = (4 + 2 + 1/2) / (3 * 3) = 13/18 (a plain 0.0 score would give 7/9).
    assert report["auc_micro"] == pytest.approx(13 / 18)
    # Same as scoring the unseen column below every real score.
    below = np.where(UNSEEN, -1.0, y_score)
    assert report["auc_micro"] == pytest.approx(roc_auc_score(y_true.ravel(), below.ravel()))


def test_unranked_columns_without_gold_change_no_ranking_metric() -> None:
    rng = np.random.default_rng(4)
    y_true = (rng.random((20, 6)) < 0.3).astype(int)
    y_true[:, 4:] = 0
    y_score = rng.random((20, 6))
    unranked = np.array([0, 0, 0, 0, 1, 1], bool)
    labels = [f"ICD10CM:A0{i}" for i in range(6)]
    full = metrics.evaluate(y_true, y_score, y_true, labels, ks=(1, 3), unranked=unranked)
    ranked = metrics.evaluate(y_true[:, :4], y_score[:, :4], y_true[:, :4], labels[:4], ks=(1, 3))
    for key in ("precision_at_k", "recall_at_k", "map"):
        assert full[key] == pytest.approx(ranked[key])


def test_an_outer_code_ranks_only_in_the_documents_that_scored_it() -> None:
    # X lies outside the label space; an open part scored it in d0 only. d1's X is gold
    # but was never proposed there: unranked in that document alone.
    labels = ["ICD10CM:A00", "ICD10CM:X01"]
    y_true = np.array([[1, 1], [0, 1]])
    y_score = np.array([[0.5, 0.3], [0.2, 0.0]])
    hidden = np.array([[False, False], [False, True]])
    report = metrics.evaluate(y_true, y_score, y_true, labels, ks=(1, 5), unranked=hidden)
    # d0 ranks A00 .5, X01 .3, both gold: AP 1. d1 ranks A00 .2 only (not gold) and never
    # retrieves X01: AP 0. P@1 (1 + 0)/2; P@5 clamps to each list: (2/2 + 0/1)/2.
    assert report["map"] == pytest.approx(1 / 2)
    assert report["precision_at_k"] == pytest.approx({"1": 0.5, "5": 0.5})
    assert report["recall_at_k"] == pytest.approx({"1": 0.25, "5": 0.5})
    # Ranked positives .5 and .3 beat the one negative (.2); the hidden positive does not:
    # AUC 2/3, as with the hidden entry scored below everything.
    assert report["auc_micro"] == pytest.approx(2 / 3)
    below = np.where(hidden, -1.0, y_score)
    assert report["auc_micro"] == pytest.approx(roc_auc_score(y_true.ravel(), below.ravel()))


def test_a_column_mask_and_the_same_mask_per_document_give_one_report() -> None:
    rng = np.random.default_rng(5)
    y_true = (rng.random((12, 6)) < 0.3).astype(int)
    y_score = rng.random((12, 6))
    y_pred = y_score > 0.5
    labels = [f"ICD10CM:A0{i}" for i in range(3)] + [f"ICD10PCS:B0{i}" for i in range(3)]
    columns = np.array([0, 0, 1, 0, 0, 1], bool)
    by_column = metrics.evaluate(y_true, y_score, y_pred, labels, unranked=columns)
    by_entry = metrics.evaluate(y_true, y_score, y_pred, labels, unranked=np.tile(columns, (12, 1)))
    assert dotted(by_entry) == pytest.approx(dotted(by_column))


def test_unranked_must_be_a_boolean_mask_per_label() -> None:
    with pytest.raises(ValueError, match=r"boolean mask of shape \(3,\)"):
        metrics.evaluate(SYS_TRUE, SYS_SCORE, SYS_PRED, LABELS, unranked=np.array([0, 1, 0]))


def test_json_compatible_writes_undefined_metrics_as_null() -> None:
    report = metrics.evaluate(np.zeros((2, 3)), SYS_SCORE[:2], np.zeros((2, 3)), LABELS)
    assert math.isnan(report["map"])
    payload = json.dumps(metrics.json_compatible(report), allow_nan=False)
    parsed = json.loads(payload)
    assert parsed["map"] is None
    assert parsed["recall_at_k"]["5"] is None
    assert parsed["per_system"]["ICD10CM"]["map"] is None
    assert parsed["precision_at_k"]["5"] == 0.0
    assert metrics.json_compatible({"a": [float("inf"), np.float32("nan"), 1.5, 2]}) == {
        "a": [None, None, 1.5, 2]
    }


def test_evaluate_rejects_bad_labels() -> None:
    with pytest.raises(ValueError, match="2 labels for 3"):
        metrics.evaluate(SYS_TRUE, SYS_SCORE, SYS_PRED, LABELS[:2])
    with pytest.raises(ValueError, match="'A00' is not written SYSTEM:VALUE"):
        metrics.evaluate(SYS_TRUE, SYS_SCORE, SYS_PRED, ["A00", *LABELS[1:]])
    with pytest.raises(ValueError, match=r"train_counts has shape \(2,\)"):
        metrics.evaluate(SYS_TRUE, SYS_SCORE, SYS_PRED, LABELS, train_counts=np.array([1, 2]))


# -- input validation -----------------------------------------------------------------


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"y_true \(3, 4\) vs y_pred \(3, 3\)"):
        metrics.micro_prf(Y_TRUE, Y_PRED[:, :3])
    with pytest.raises(ValueError, match=r"y_true \(3, 4\) vs y_score \(2, 4\)"):
        metrics.precision_at_k(Y_TRUE, Y_SCORE[:2], 1)


def test_empty_and_malformed_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        metrics.micro_prf(np.zeros((0, 4)), np.zeros((0, 4)))
    with pytest.raises(ValueError, match="empty"):
        metrics.mean_average_precision(np.zeros((3, 0)), np.zeros((3, 0)))
    with pytest.raises(ValueError, match="2-D"):
        metrics.micro_prf(np.array([1, 0]), np.array([1, 0]))
    with pytest.raises(ValueError, match="binary"):
        metrics.micro_prf(np.array([[2, 0]]), np.array([[1, 0]]))
    with pytest.raises(ValueError, match="NaN"):
        metrics.auc(Y_TRUE, np.full(Y_TRUE.shape, np.nan), "micro")
    with pytest.raises(ValueError, match="positive integer"):
        metrics.precision_at_k(Y_TRUE, Y_SCORE, 0)


# -- properties -----------------------------------------------------------------------

binary_matrices = st.tuples(st.integers(1, 6), st.integers(1, 6)).flatmap(
    lambda shape: arrays(np.int8, shape, elements=st.integers(0, 1))
)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_scores_lie_in_unit_interval_and_sparse_equals_dense(data: st.DataObject) -> None:
    y_true = data.draw(binary_matrices)
    y_pred = data.draw(arrays(np.int8, y_true.shape, elements=st.integers(0, 1)))
    y_score = data.draw(arrays(np.float64, y_true.shape, elements=st.floats(0, 1)))
    report = metrics.evaluate(y_true, y_score, y_pred, ["ICD10CM:X"] * y_true.shape[1])
    sparse_report = metrics.evaluate(
        sp.csr_array(y_true), y_score, sp.csr_array(y_pred), ["ICD10CM:X"] * y_true.shape[1]
    )
    assert json.dumps(report) == json.dumps(sparse_report)
    for key in ("micro_f1", "macro_f1", "map", "auc_micro", "exact_match", "ece"):
        assert math.isnan(report[key]) or 0.0 <= report[key] <= 1.0


@settings(max_examples=50, deadline=None)
@given(binary_matrices)
def test_perfect_prediction_scores_one(y_true: np.ndarray) -> None:
    y_true[0, 0] = 1  # at least one gold code, so every ratio is defined
    y_score = y_true.astype(np.float64)
    n_labels = y_true.shape[1]
    assert metrics.micro_prf(y_true, y_true) == PRF(1.0, 1.0, 1.0)
    assert metrics.macro_prf(y_true, y_true) == PRF(1.0, 1.0, 1.0)
    assert metrics.exact_match(y_true, y_true) == 1.0
    assert metrics.mean_average_precision(y_true, y_score) == 1.0
    assert metrics.recall_at_k(y_true, y_score, n_labels) == 1.0
    assert metrics.expected_calibration_error(y_true, y_score) == 0.0
    for average in ("micro", "macro"):
        value = metrics.auc(y_true, y_score, average)
        assert math.isnan(value) or value == 1.0


# Evidence: five explained codes; gold is the characters behind each code.
EVIDENCE = [
    [(10, 20), (40, 50)],  # first span overlaps gold [15, 25): hit at 1 and 3
    [(0, 5), (30, 35), (60, 70)],  # third span overlaps [65, 80): hit at 3 only
    [(0, 5), (6, 9), (10, 12), (100, 110)],  # fourth overlaps [105, 106): past 3, a miss
    [(25, 30)],  # ends where gold [30, 40) starts: half-open spans share nothing, a miss
    [],  # no evidence: a miss
]
EVIDENCE_GOLD = [[(15, 25)], [(65, 80)], [(105, 106)], [(30, 40)], [(0, 100)]]


def test_evidence_hit_rates_by_hand() -> None:
    rates = metrics.evidence_hit_rates(EVIDENCE, EVIDENCE_GOLD, ks=(1, 3, 4))
    assert rates == {1: 1 / 5, 3: 2 / 5, 4: 3 / 5}


def test_evidence_hit_rates_count_any_piece_of_a_split_mention() -> None:
    # A mention in two pieces: a span inside the second piece is a hit.
    assert metrics.evidence_hit_rates([[(52, 55)]], [[(0, 4), (50, 60)]]) == {1: 1.0, 3: 1.0}
    assert metrics.evidence_hit_rates([[(5, 49)]], [[(0, 4), (50, 60)]]) == {1: 0.0, 3: 0.0}


def test_evidence_hit_rates_without_cases_are_nan_and_bad_input_is_named() -> None:
    assert all(math.isnan(v) for v in metrics.evidence_hit_rates([], []).values())
    with pytest.raises(ValueError, match="2 evidence lists but 1 gold lists"):
        metrics.evidence_hit_rates([[], []], [[]])
    with pytest.raises(ValueError, match="k must be a positive integer; got 0"):
        metrics.evidence_hit_rates([[]], [[]], ks=(0,))
