"""Review policy: accept/reject bands by construction, classify, automation report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autocode.decisions.policy import (
    ABOVE_ONE,
    ReviewPolicy,
    automation_curve,
    automation_report,
    backing_threshold,
    code_automation,
    tune_review_bands,
)

# Pooled, by score: 0.95+ 0.90+ 0.85+ 0.80- 0.40- 0.30+ 0.10- 0.05-
Y = np.array([[1, 0], [1, 0], [0, 0], [1, 1]])
PROBS = np.array([[0.95, 0.10], [0.90, 0.40], [0.80, 0.05], [0.30, 0.85]])
NO_PER_CODE = 10**9


def test_global_accept_is_lowest_score_reaching_target_precision():
    # Cut at 0.85: 3/3 precise; at 0.30: 4/6 = 0.667.
    policy = tune_review_bands(Y, PROBS, 0.75, min_support=NO_PER_CODE, target_recall=1.0)
    np.testing.assert_array_equal(policy.accept, [0.85, 0.85])
    assert policy.reachable
    lower = tune_review_bands(Y, PROBS, 0.6, min_support=NO_PER_CODE, target_recall=1.0)
    np.testing.assert_array_equal(lower.accept, [0.30, 0.30])


def test_reject_bounds_missed_gold_share():
    # Recall 1.0 misses none: reject below the lowest positive, 0.30.
    full = tune_review_bands(Y, PROBS, 0.75, min_support=NO_PER_CODE, target_recall=1.0)
    np.testing.assert_array_equal(full.reject, [0.30, 0.30])
    # Recall 0.75 may miss 1 of 4 positives: reject at the 2nd lowest, 0.85 (= accept).
    partial = tune_review_bands(Y, PROBS, 0.75, min_support=NO_PER_CODE, target_recall=0.75)
    np.testing.assert_array_equal(partial.reject, [0.85, 0.85])


def test_per_code_accept_for_supported_codes():
    # Code 0 (3 positives) alone: 0.95+ 0.90+ 0.80- 0.30+, so 0.90 is its lowest 100% cut;
    # code 1 (1 positive) keeps the global 0.85.
    policy = tune_review_bands(Y, PROBS, 1.0, min_support=3, target_recall=1.0)
    np.testing.assert_array_equal(policy.accept, [0.90, 0.85])


def test_groups_are_tuned_each_on_their_own():
    # Code 0 alone: 0.95+ 0.90+ 0.80- 0.30+ reaches 0.75 at 0.30 (3/4); code 1 alone:
    # 0.85+ at 0.85. Pooled, code 1's negatives held both codes at 0.85.
    pooled = tune_review_bands(Y, PROBS, 0.75, min_support=NO_PER_CODE, target_recall=1.0)
    np.testing.assert_array_equal(pooled.accept, [0.85, 0.85])
    apart = tune_review_bands(
        Y, PROBS, 0.75, min_support=NO_PER_CODE, target_recall=1.0, groups=[[1], [0]]
    )
    np.testing.assert_array_equal(apart.accept, [0.30, 0.85])
    np.testing.assert_array_equal(apart.reject, [0.30, 0.85])  # each group's lowest gold
    assert apart.reachable


@pytest.mark.parametrize(
    ("groups", "message"),
    [([[0]], "column 1 is in 0"), ([[0, 1], [1]], "column 1 is in 2"), ([[0, 2]], "column 2")],
)
def test_groups_must_hold_every_column_once(groups: list[list[int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tune_review_bands(Y, PROBS, 0.75, groups=[np.array(g) for g in groups])


def test_classify_hand_example():
    policy = tune_review_bands(Y, PROBS, 0.75, min_support=NO_PER_CODE, target_recall=1.0)
    expected = [[1, 0], [1, -1], [-1, 0], [-1, 1]]
    decisions = policy.classify(PROBS)
    assert decisions.dtype == np.int8
    np.testing.assert_array_equal(decisions, expected)


def test_entries_settled_by_rules_count_as_accepted_at_every_threshold():
    # Rows 0-9 a rule settles (their score 0.3); 10-19 score 0.9 (all gold); 20-29 0.8
    # (8 gold, or 9 below); 30-39 0.1 (none).
    def tuned(rules_gold: int, gold_at_08: int, settled: bool) -> float:
        probs = np.array([[0.3]] * 10 + [[0.9]] * 10 + [[0.8]] * 10 + [[0.1]] * 10)
        gold = np.zeros((40, 1), int)
        gold[:rules_gold] = 1
        gold[10:20] = 1
        gold[20 : 20 + gold_at_08] = 1
        mask = np.zeros(probs.shape, bool)
        mask[:10] = settled
        policy = tune_review_bands(gold, probs, 0.92, min_support=NO_PER_CODE, settled=mask)
        return float(policy.accept[0])

    # Sure rules (10 of 10 gold): counted as the policy's own at their scores, they pull
    # its cut down to 0.3 (28 of 30); settled, 0.8 (10 + 18 of 30), not lower.
    assert tuned(10, 8, settled=False) == 0.3
    assert tuned(10, 8, settled=True) == 0.8
    # Weak rules (8 of 10): the policy's accepts must make up for them, or there are none.
    assert tuned(8, 9, settled=False) == 0.8  # 19 of 20 at 0.8
    assert tuned(8, 9, settled=True) == ABOVE_ONE  # 18 of 20 at 0.9, 27 of 30 at 0.8
    with pytest.raises(ValueError, match=r"settled has shape \(2, 1\); probs have \(3, 1\)"):
        tune_review_bands(np.ones((3, 1)), np.ones((3, 1)), settled=np.ones((2, 1), bool))


def test_a_backing_threshold_is_the_lowest_score_whose_backed_entries_reach_the_target():
    # Backed entries, by score: 0.9+ 0.8+ 0.7- 0.6+ 0.5-; not backed: a 0.85- and a 0.95+,
    # which the threshold never reads.
    probs = np.array([[0.9, 0.85], [0.8, 0.95], [0.7, 0.1], [0.6, 0.1], [0.5, 0.1]])
    gold = np.array([[1, 0], [1, 1], [0, 0], [1, 0], [0, 0]])
    backed = np.zeros(probs.shape, bool)
    backed[:, 0] = True
    # From 0.6: 3 of 4 gold; from 0.8: 2 of 2.
    assert backing_threshold(gold, probs, backed, 0.75, min_support=4) == 0.6
    assert backing_threshold(gold, probs, backed, 0.95, min_support=2) == 0.8
    # Too few entries from the threshold up, or no score reaching the target: none.
    assert backing_threshold(gold, probs, backed, 0.75, min_support=5) is None
    assert backing_threshold(np.zeros_like(gold), probs, backed, 0.5, min_support=1) is None
    assert backing_threshold(gold, probs, np.zeros_like(backed), 0.5, min_support=1) is None
    with pytest.raises(ValueError, match=r"backed has shape \(5, 1\); probs have \(5, 2\)"):
        backing_threshold(gold, probs, backed[:, :1])


def test_review_lists_keep_only_the_most_probable_uncertain_codes():
    probs = np.array([[0.5, 0.2, 0.4, 0.95, 0.3], [0.25, 0.01, 0.02, 0.03, 0.3]])
    band = ReviewPolicy(np.full(5, 0.9), np.full(5, 0.1), 0.95, 0.95, True, max_review_codes=2)
    # Row 0: 0.5, 0.4, 0.3 and 0.2 are uncertain; only 0.5 and 0.4 stay; 0.95 is accepted.
    # Row 1: two uncertain entries, within the cap.
    expected = [[-1, 0, -1, 1, 0], [-1, 0, 0, 0, -1]]
    np.testing.assert_array_equal(band.classify(probs), expected)
    # What the cap cut: row 0's 0.2 and 0.3, in the band but turned to rejections.
    cut = [[False, True, False, False, True], [False] * 5]
    np.testing.assert_array_equal(band.cut_by_cap(probs), cut)
    np.testing.assert_array_equal(band.cut_by_cap(probs, band.classify(probs)), cut)
    uncapped = ReviewPolicy(band.accept, band.reject, 0.95, 0.95, True)
    assert (uncapped.classify(probs) == -1).sum(axis=1).tolist() == [4, 2]
    assert not uncapped.cut_by_cap(probs).any()
    restored = ReviewPolicy.from_dict(json.loads(json.dumps(band.to_dict())))
    assert restored.max_review_codes == 2
    # What it accepts, asked alone, is what it classifies as accepted, cap or no cap.
    accepted = [[False, False, False, True, False], [False] * 5]
    np.testing.assert_array_equal(band.accepts(probs), accepted)
    np.testing.assert_array_equal(uncapped.accepts(probs), accepted)


def test_the_review_cap_breaks_ties_by_label_order():
    probs = np.array([[0.5, 0.5, 0.5, 0.2], [0.3, 0.6, 0.3, 0.3], [0.3, 0.3, 0.95, 0.05]])
    band = ReviewPolicy(np.full(4, 0.9), np.full(4, 0.1), 0.95, 0.95, True, max_review_codes=2)
    # Row 0: three tied at 0.5, the first two stay. Row 1: 0.6, then the first 0.3.
    # Row 2: two uncertain, within the cap; 0.95 accepted, 0.05 rejected.
    expected = [[-1, -1, 0, 0], [-1, -1, 0, 0], [-1, -1, 1, 0]]
    np.testing.assert_array_equal(band.classify(probs), expected)


@pytest.mark.parametrize("cap", [0, 1.5, True, "3"])
def test_a_bad_review_cap_is_named(cap: object) -> None:
    with pytest.raises(
        ValueError, match=rf"max_review_codes must be an integer >= 1 or None, got {cap!r}"
    ):
        ReviewPolicy(np.full(2, 0.9), np.full(2, 0.1), 0.95, 0.95, True, max_review_codes=cap)  # type: ignore[arg-type]


def test_tuned_policies_carry_the_cap():
    rng = np.random.default_rng(3)
    probs = rng.uniform(0.0, 1.0, size=(50, 30))
    y = (rng.random(probs.shape) < probs).astype(np.int8)
    uncapped = tune_review_bands(y, probs, 0.95, min_support=NO_PER_CODE, max_review_codes=None)
    assert ((uncapped.classify(probs) == -1).sum(axis=1) > 3).all()  # the cap has work to do
    policy = tune_review_bands(y, probs, 0.95, min_support=NO_PER_CODE, max_review_codes=3)
    assert policy.max_review_codes == 3
    assert ((policy.classify(probs) == -1).sum(axis=1) == 3).all()


@pytest.fixture(scope="module")
def calibrated() -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that are calibrated by construction: y ~ Bernoulli(p)."""
    rng = np.random.default_rng(0)
    probs = rng.beta(0.3, 3.0, size=(500, 40))
    return (rng.random(probs.shape) < probs).astype(np.int8), probs


def precision_of_accepted(y: np.ndarray, probs: np.ndarray, policy: ReviewPolicy) -> float:
    accepted = policy.classify(probs) == 1
    return float(y[accepted].mean())


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95])
def test_precision_target_met_on_validation(calibrated, target):
    y, probs = calibrated
    pooled_only = tune_review_bands(y, probs, target, min_support=NO_PER_CODE)
    assert pooled_only.reachable
    assert precision_of_accepted(y, probs, pooled_only) >= target
    policy = tune_review_bands(y, probs, target, min_support=30)
    assert precision_of_accepted(y, probs, policy) >= target
    supported = np.flatnonzero(y.sum(axis=0) >= 30)
    for code in supported:
        taken = probs[:, code] >= policy.accept[code]
        assert not taken.any() or y[taken, code].mean() >= target
    # Reject misses at most 5% of the gold codes.
    assert (probs[y == 1] < policy.reject[0]).mean() <= 0.05


def test_unreachable_target_accepts_nothing():
    y = np.array([[1, 0], [0, 1], [0, 0]])
    probs = np.array([[0.1, 0.9], [0.9, 0.1], [0.9, 0.9]])  # positives score lowest
    policy = tune_review_bands(y, probs, 0.95)
    assert not policy.reachable
    np.testing.assert_array_equal(policy.accept, [ABOVE_ONE, ABOVE_ONE])
    assert not (policy.classify(np.ones((1, 2))) == 1).any()


def test_round_trip_gives_identical_decisions():
    policy = tune_review_bands(Y, PROBS, 0.75, min_support=3, target_recall=1.0)
    restored = ReviewPolicy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert (restored.target_precision, restored.target_recall, restored.reachable) == (
        0.75,
        1.0,
        True,
    )
    np.testing.assert_array_equal(restored.classify(PROBS), policy.classify(PROBS))


def test_policy_rejects_inverted_bands():
    with pytest.raises(ValueError, match="reject <= accept"):
        ReviewPolicy(np.array([0.5]), np.array([0.6]), 0.95, 0.95, True)


def test_automation_report_hand_example():
    policy = ReviewPolicy(np.array([0.8, 0.8]), np.array([0.2, 0.2]), 0.95, 0.95, True)
    y = np.array([[1, 1], [1, 1], [1, 1]])
    probs = np.array([[0.9, 0.1], [0.85, 0.9], [0.5, 0.95]])
    # Docs 0 and 1 are auto ([1, 0] and [1, 1]); doc 2 has 0.5 in the band.
    # Accepted in auto docs: 3, all gold; gold in auto docs: 4.
    # Over every note: 4 of the 6 gold codes accepted, all gold.
    assert automation_report(y, probs, policy) == {
        "documents": 3,
        "auto_documents": 2,
        "automation_rate": pytest.approx(2 / 3),
        "auto_precision": 1.0,
        "auto_recall": 0.75,
        "code_automation_rate": pytest.approx(4 / 6),
        "code_auto_precision": 1.0,
    }
    # A term rule accepting doc 2's first code (0.5, in the band) makes doc 2 auto too:
    # 5 accepted of the 6 gold codes of the three auto docs (doc 0's 0.1 is rejected).
    by_rule = np.array([[False, False], [False, False], [True, False]])
    assert automation_report(y, probs, policy, by_rule) == {
        "documents": 3,
        "auto_documents": 3,
        "automation_rate": 1.0,
        "auto_precision": 1.0,
        "auto_recall": pytest.approx(5 / 6),
        "code_automation_rate": pytest.approx(5 / 6),
        "code_auto_precision": 1.0,
    }


def test_a_precision_of_nothing_accepted_is_undefined_not_zero():
    policy = ReviewPolicy(np.array([0.8, 0.8]), np.array([0.2, 0.2]), 0.95, 0.95, True)
    y = np.array([[1, 0], [0, 1]])
    probs = np.array([[0.5, 0.1], [0.1, 0.5]])  # both gold codes in the band: no accept
    assert automation_report(y, probs, policy) == {
        "documents": 2,
        "auto_documents": 0,
        "automation_rate": 0.0,
        "auto_precision": None,
        "auto_recall": None,
        "code_automation_rate": 0.0,
        "code_auto_precision": None,
    }


def test_held_accepts_go_to_review_unless_a_rule_accepts_them():
    policy = ReviewPolicy(np.array([0.8, 0.8]), np.array([0.2, 0.2]), 0.95, 0.95, True)
    y = np.array([[1, 1], [1, 1], [1, 1]])
    probs = np.array([[0.9, 0.1], [0.85, 0.9], [0.5, 0.95]])
    # (1, 1) is named only negated: the policy's accept of it goes to review, and doc 1
    # with it; (0, 0) is held too but a rule accepts it, which stands.
    held = np.array([[True, False], [False, True], [False, False]])
    by_rule = np.array([[True, False], [False, False], [False, False]])
    report = automation_report(y, probs, policy, by_rule, held)
    # Auto: doc 0 only ([1, 0]); its 1 accept is gold; its gold codes 2.
    assert report["auto_documents"] == 1
    assert (report["auto_precision"], report["auto_recall"]) == (1.0, 0.5)
    # Over every note: (0, 0), (1, 0) and (2, 1) accepted, all gold, of 6 gold codes.
    assert report["code_automation_rate"] == pytest.approx(3 / 6)
    assert report["code_auto_precision"] == 1.0


def test_a_rule_accepting_a_code_that_is_not_gold_lowers_both_precisions():
    policy = ReviewPolicy(np.array([0.8, 0.8]), np.array([0.2, 0.2]), 0.95, 0.95, True)
    y = np.array([[1, 0], [1, 1], [1, 1]])
    probs = np.array([[0.9, 0.1], [0.85, 0.9], [0.5, 0.95]])
    # The rule accepts (0, 1), not gold (0.1 was rejected), and (2, 0), gold.
    by_rule = np.array([[False, True], [False, False], [True, False]])
    report = automation_report(y, probs, policy, by_rule)
    # Every doc auto; accepted: all 6 entries, 5 gold; gold codes 5, all accepted.
    assert report["auto_documents"] == 3
    assert report["auto_precision"] == pytest.approx(5 / 6)
    assert report["auto_recall"] == 1.0
    assert report["code_automation_rate"] == 1.0
    assert report["code_auto_precision"] == pytest.approx(5 / 6)


def test_code_automation_counts_accepted_gold_codes_over_every_note():
    policy = ReviewPolicy(np.array([0.8, 0.8]), np.array([0.2, 0.2]), 0.95, 0.95, True)
    y = np.array([[1, 1], [0, 1], [1, 1]])
    probs = np.array([[0.9, 0.1], [0.85, 0.9], [0.5, 0.95]])
    # Accepted: (0,0) gold, (1,0) not gold, (1,1) gold, (2,1) gold, though note 2 goes to
    # review (0.5 is in the band): 3 of 5 gold codes, 3 of 4 accepted codes.
    assert code_automation(y, probs, policy) == {
        "code_automation_rate": pytest.approx(3 / 5),
        "code_auto_precision": pytest.approx(3 / 4),
    }


def test_automation_curve_rows_match_tuned_reports():
    curve = automation_curve(Y, PROBS, targets=[0.6, 0.75], min_support=NO_PER_CODE)
    assert [row["target_precision"] for row in curve] == [0.6, 0.75]
    for row in curve:
        policy = tune_review_bands(
            Y, PROBS, row["target_precision"], min_support=NO_PER_CODE, target_recall=0.95
        )
        report = automation_report(Y, PROBS, policy) | code_automation(Y, PROBS, policy)
        assert row == {"reachable": True, "target_precision": row["target_precision"], **report}
    assert len(automation_curve(Y, PROBS)) == 20


def test_a_grouped_curve_is_the_curve_of_the_grouped_policy():
    groups = [np.array([1]), np.array([0])]
    (row,) = automation_curve(Y, PROBS, targets=[0.75], min_support=NO_PER_CODE, groups=groups)
    policy = tune_review_bands(
        Y, PROBS, 0.75, min_support=NO_PER_CODE, target_recall=0.95, groups=groups
    )
    np.testing.assert_array_equal(policy.accept, [0.30, 0.85])
    report = automation_report(Y, PROBS, policy) | code_automation(Y, PROBS, policy)
    assert row == {"reachable": True, "target_precision": 0.75, **report}


def test_a_group_without_gold_keeps_the_pooled_bands():
    # Code 1 has no gold entry here: nothing of its own to tune on.
    y = np.array([[1, 0], [1, 0], [0, 0], [1, 0]])
    pooled = tune_review_bands(y, PROBS, 0.75, min_support=NO_PER_CODE, target_recall=1.0)
    apart = tune_review_bands(
        y, PROBS, 0.75, min_support=NO_PER_CODE, target_recall=1.0, groups=[[0], [1]]
    )
    assert apart.accept[1] == pooled.accept[1] and apart.reject[1] == pooled.reject[1]
    assert apart.reachable


def test_groups_must_be_column_indices():
    with pytest.raises(ValueError, match="column indices; got float64"):
        tune_review_bands(Y, PROBS, 0.75, groups=[np.array([0.0]), np.array([1.0])])
