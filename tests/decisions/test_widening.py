"""A Coder's decisions widened with the codes outside its label space: gold codes it
lacks and its open part's proposals, scored by hand-computed figures."""

from __future__ import annotations

import numpy as np
import pytest

from autocode.decisions.open_codes import OpenCodes, OpenProposal
from autocode.decisions.policy import ABOVE_ONE, ReviewPolicy
from autocode.decisions.widening import widen, widened_policy
from autocode.labels import LabelSpace
from autocode.train.evaluation import open_report, scored_report

SPACE = LabelSpace.from_codes(["ICD10CM:A00", "ICD10CM:B01"], counts=[7, 3])
PCS = "ICD10PCS:0DTJ4ZZ"  # gold outside the label space, in a system no open part proposes
# Three notes: gold codes, the label space's calibrated probabilities and decisions, and
# the open part's proposals.
GOLD = [["ICD10CM:A00", "ICD10CM:C02"], ["ICD10CM:B01", "ICD10CM:C02"], [PCS]]
PROBS = np.array([[0.9, 0.2], [0.3, 0.7], [0.1, 0.4]])
PREDICTED = PROBS >= 0.5
PROPOSALS = [
    [OpenProposal("ICD10CM:C02", 0.6, ((0, 5),))],  # gold: a hit outside the label space
    [OpenProposal("ICD10CM:D03", 0.5, ((0, 5),))],  # not gold
    [],
]
# Label space: accepted from 0.8, in review from 0.25. Open part: listed from 0.45,
# accepted from 0.55.
POLICY = ReviewPolicy(
    accept=np.array([0.8, 0.8]),
    reject=np.array([0.25, 0.25]),
    target_precision=0.9,
    target_recall=0.9,
    reachable=True,
)


def open_part(
    threshold: float, accept_threshold: float | None, system: str = "ICD10CM"
) -> OpenCodes:
    """An open part of `system` with these thresholds (its calibration is not used here)."""
    none = np.zeros(0)
    return OpenCodes((), none, none, none, 0.0, threshold, accept_threshold, {}, system=system)


def test_the_widened_columns_are_the_label_space_then_the_other_codes_sorted() -> None:
    wide = widen(SPACE, GOLD, PROBS, PREDICTED, PROPOSALS)
    assert wide.codes == ["ICD10CM:A00", "ICD10CM:B01", "ICD10CM:C02", "ICD10CM:D03", PCS]
    assert wide.known == 2
    assert wide.train_counts.tolist() == [7, 3, 0, 0, 0]
    outer = [[0.6, 0, 0], [0, 0.5, 0], [0, 0, 0]]
    assert wide.probs[:, 2:] == pytest.approx(np.array(outer, np.float32))
    assert wide.proposed.sum() == 2
    # An outer code ranks only in the notes it was proposed for.
    assert wide.unranked.tolist() == [
        [False, False, False, True, True],
        [False, False, True, False, True],
        [False, False, True, True, True],
    ]
    # Without proposals, the outer columns are unranked in every note.
    bare = widen(SPACE, GOLD, PROBS, PREDICTED)
    assert bare.codes == ["ICD10CM:A00", "ICD10CM:B01", "ICD10CM:C02", PCS]
    assert bare.unranked.tolist() == [False, False, True, True]


def test_the_open_part_counts_as_the_coder_codes_and_the_label_space_alone_does_not() -> None:
    coded = scored_report(widen(SPACE, GOLD, PROBS, PREDICTED, PROPOSALS))
    alone = scored_report(widen(SPACE, GOLD, PROBS, PREDICTED))
    # As coded: hits A00 (n0), C02 (n0, proposed), B01 (n1); predicted 4 (D03 a false
    # positive); gold 5 (C02 in n1 and the PCS code in n2 missed).
    # P = 3/4, R = 3/5, F1 = 2*3/(4+5) = 2/3.
    assert coded["micro_precision"] == pytest.approx(3 / 4)
    assert coded["micro_recall"] == pytest.approx(3 / 5)
    assert coded["micro_f1"] == pytest.approx(2 / 3)
    # Label space alone: hits A00, B01 of 2 predicted, 5 gold: P 1, R 2/5, F1 4/7.
    assert alone["micro_precision"] == 1.0
    assert alone["micro_recall"] == pytest.approx(2 / 5)
    assert alone["micro_f1"] == pytest.approx(4 / 7)
    # MAP as coded: n0 ranks A00 .9, C02 .6, B01 .2: AP (1/1 + 2/2)/2 = 1; n1 ranks B01 .7,
    # D03 .5, A00 .3 and never C02: AP (1/1)/2 = 1/2; n2 never retrieves its PCS code: 0.
    # MAP = (1 + 1/2 + 0)/3 = 1/2. Alone, n0 never retrieves C02: (1/2 + 1/2 + 0)/3 = 1/3.
    assert coded["map"] == pytest.approx(1 / 2)
    assert alone["map"] == pytest.approx(1 / 3)
    # P@1 as coded: n0 A00 gold, n1 B01 gold, n2 B01 not gold: 2/3. P@5 is clamped to
    # each note's ranked list: n0 2/3, n1 1/3, n2 0/2: 1/3.
    assert coded["precision_at_k"]["5"] == pytest.approx(1 / 3)
    # Per system: ICD10CM as coded: 3 hits, 4 predicted, 4 gold; ICD10PCS: its one gold
    # code missed.
    cm = coded["per_system"]["ICD10CM"]
    assert (cm["micro_precision"], cm["micro_recall"]) == pytest.approx((3 / 4, 3 / 4))
    assert alone["per_system"]["ICD10CM"]["micro_recall"] == pytest.approx(2 / 4)
    assert coded["per_system"]["ICD10PCS"]["micro_recall"] == 0.0
    # The training-count bucket "0" is the outer codes: 1 hit of 3 gold, 2 predicted.
    unseen = coded["per_bucket"]["0"]
    assert (unseen["micro_precision"], unseen["micro_recall"]) == pytest.approx((1 / 2, 1 / 3))
    assert alone["per_bucket"]["0"]["micro_recall"] == 0.0


def test_open_figures_are_the_proposals_precision_and_the_recall_outside_the_space() -> None:
    report = open_report(widen(SPACE, GOLD, PROBS, PREDICTED, PROPOSALS))
    # 2 proposals, 1 gold (C02 in n0); outer gold: C02 twice and the PCS code: 1 of 3.
    assert report["proposals"] == 2
    assert report["proposals_gold"] == 1
    assert report["proposal_precision"] == pytest.approx(1 / 2)
    assert report["unseen_gold"] == 3
    assert report["unseen_recall"] == pytest.approx(1 / 3)
    cm, pcs = report["per_system"]["ICD10CM"], report["per_system"]["ICD10PCS"]
    assert (cm["unseen_gold"], cm["unseen_recall"]) == (2, pytest.approx(1 / 2))
    assert (pcs["proposals"], pcs["unseen_gold"], pcs["unseen_recall"]) == (0, 1, 0.0)
    # Nothing proposed: the precision is undefined (None, not 0.0 or NaN); the recall on
    # the 3 outer gold codes is a real 0.
    bare = open_report(widen(SPACE, GOLD, PROBS, PREDICTED))
    assert (bare["proposals"], bare["proposal_precision"], bare["unseen_recall"]) == (0, None, 0.0)


def test_open_proposals_are_routed_as_decide_routes_them() -> None:
    part = open_part(threshold=0.45, accept_threshold=0.55)
    coded = widen(SPACE, GOLD, PROBS, PREDICTED, PROPOSALS, policy=POLICY, open_parts=[part])
    alone = widen(SPACE, GOLD, PROBS, PREDICTED, policy=POLICY, open_parts=[part])
    # n0: A00 .9 accepted, B01 .2 rejected, C02 .6 accepted (>= .55): nothing uncertain.
    # n1: B01 .7 and A00 .3 in review; D03 .5 too (listed, below .55). n2: B01 .4 in review.
    assert coded.accepted.tolist() == [
        [True, False, True, False, False],
        [False, False, False, False, False],
        [False, False, False, False, False],
    ]
    coded_report, alone_report = scored_report(coded), scored_report(alone)
    # One note of three is auto-coded either way; its accepted codes are all gold. As coded
    # they are both its gold codes; alone, C02 is missed: auto recall 1/2.
    assert coded_report["automation_rate"] == pytest.approx(1 / 3)
    assert alone_report["automation_rate"] == pytest.approx(1 / 3)
    assert coded_report["auto_precision"] == alone_report["auto_precision"] == 1.0
    assert coded_report["auto_recall"] == 1.0
    assert alone_report["auto_recall"] == pytest.approx(1 / 2)


def test_outer_codes_are_never_accepted_without_an_open_part_or_its_precise_cut() -> None:
    outer = widened_policy(POLICY, ["ICD10CM:C02", "ICD10CM:D03"])
    assert outer.accept[2:].tolist() == outer.reject[2:].tolist() == [ABOVE_ONE] * 2
    never = widened_policy(POLICY, ["ICD10CM:C02"], [open_part(0.45, accept_threshold=None)])
    # Listed from .45 and always in review; a code never proposed (0) is rejected.
    assert (never.reject[2], never.accept[2]) == (0.45, ABOVE_ONE)
    assert never.classify(np.array([[0.9, 0.2, 0.99], [0.9, 0.2, 0.0]]))[:, 2].tolist() == [-1, 0]


def test_each_outer_code_has_the_band_of_the_open_part_of_its_system() -> None:
    diagnoses = open_part(threshold=0.45, accept_threshold=0.55)
    procedures = open_part(threshold=0.2, accept_threshold=None, system="ICD10PCS")
    outer = ["ICD10CM:C02", PCS, "HCPCS:A0021"]
    both = widened_policy(POLICY, outer, [diagnoses, procedures])
    assert both.reject[2:].tolist() == [0.45, 0.2, ABOVE_ONE]
    assert both.accept[2:].tolist() == [0.55, ABOVE_ONE, ABOVE_ONE]
    # Without a PCS part, a PCS code is never accepted and never uncertain.
    cm_only = widened_policy(POLICY, outer, [diagnoses])
    assert cm_only.reject[3] == cm_only.accept[3] == ABOVE_ONE


def test_a_proposal_of_a_label_space_code_is_refused() -> None:
    proposals = [[OpenProposal("ICD10CM:A00", 0.6, ())], [], []]
    with pytest.raises(ValueError, match="open proposal ICD10CM:A00 is a code of the label"):
        widen(SPACE, GOLD, PROBS, PREDICTED, proposals)
