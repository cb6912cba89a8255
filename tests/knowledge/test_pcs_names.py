"""ICD-10-PCS prefixes named by operation and body part, found in hand-written sentences."""

from __future__ import annotations

import pytest

from autocode.codes import ICD10PCS
from autocode.decisions.open_codes import SLACK
from autocode.knowledge.candidates import CandidateIndex
from autocode.knowledge.context import FAMILY, HYPOTHETICAL, NEGATED
from autocode.knowledge.pcs_names import (
    ONE_WORD_PROCEDURES,
    operation_and_part,
    operations,
    pcs_index,
    pcs_prefix_names,
)

BLOCKING = frozenset({NEGATED, HYPOTHETICAL, FAMILY})


@pytest.fixture(scope="module")
def index() -> CandidateIndex:
    return pcs_index(BLOCKING)


def found(index: CandidateIndex, text: str) -> set[str]:
    """The prefixes found as the open part searches: within its slack for procedures."""
    return {code.split(":", 1)[1] for code in index.candidates(text, slack=SLACK[ICD10PCS])}


def test_a_prefix_is_read_as_its_operation_and_body_part() -> None:
    assert operation_and_part("0VTB") == ("Resection", "Left Testis")
    assert operation_and_part("BW40") == ("Ultrasonography", "Abdomen")
    # The approach every code under the prefix shares is cut; a body part's comma is not.
    assert operation_and_part("0HTT") == ("Resection", "Right Breast")
    assert operation_and_part("0DT7") == ("Resection", "Stomach, Pylorus")
    # 0B1 holds only the trachea, so its codes share "Bypass Trachea": the operation is
    # the one other prefixes share, "Bypass".
    assert operation_and_part("0B11") == ("Bypass", "Trachea")
    # 02B7's codes share only "Excision of Left" (Atrium, Atrial Appendage): no body part.
    assert operation_and_part("02B7") is None
    assert "Bypass Trachea" not in operations()
    assert {"Computerized Tomography (CT Scan)", "Excision", "Drainage"} <= operations()


def test_every_one_word_procedure_names_a_prefix() -> None:
    names = pcs_prefix_names()
    named = {word for listed in names.values() for word in listed}
    assert set(ONE_WORD_PROCEDURES) <= named
    assert {"nephrectomy", "Left nephrectomy"} <= set(names["ICD10PCS:0TT1"])
    assert "ultrasound Abdomen" in names["ICD10PCS:BW40"]


@pytest.mark.parametrize(
    ("sentence", "prefixes"),
    [
        ("An abdominal ultrasound was normal.", {"BW40"}),  # adjective and note word
        ("Chest X-ray showed no infiltrate.", {"BW03"}),
        ("Skull CT showed no fracture.", {"BN20"}),
        ("A thyroid ultrasound was requested.", {"BG44"}),  # "Thyroid Gland" without "Gland"
        ("Cholecystectomy was uneventful.", {"0FT4"}),  # one word: operation and body part
        ("The liver abscess was drained.", {"0F90"}),  # a verb, two words apart
        ("Renal ultrasound: normal kidneys.", {"BT41", "BT42", "BT43"}),  # side not said
    ],
)
def test_a_named_procedure_gives_its_prefixes(
    index: CandidateIndex, sentence: str, prefixes: set[str]
) -> None:
    assert found(index, sentence) == prefixes


def test_a_side_named_makes_the_longer_name_of_that_side(index: CandidateIndex) -> None:
    candidates = index.candidates("A left orchiectomy was performed.")
    left, right = candidates["ICD10PCS:0VTB"], candidates["ICD10PCS:0VT9"]
    assert (left.longest_name, left.whole) == (2, 1)
    assert (right.longest_name, right.whole) == (1, 0)  # inside the longer "left orchiectomy"


def test_a_negated_or_family_procedure_proposes_nothing(index: CandidateIndex) -> None:
    assert found(index, "No liver biopsy was performed.") == set()
    assert found(index, "Her mother had a cholecystectomy.") == set()


def test_slack_lets_a_reordered_name_span_more_words() -> None:
    index = CandidateIndex({"ICD10PCS:0F90": ["drainage liver"]}, BLOCKING)
    text = "The liver abscess was then drained by drainage."
    # Four words between the name's two ("by" is a joining word, not counted).
    assert index.candidates(text) == {}
    assert index.candidates(text, slack=3) == {}
    assert set(index.candidates(text, slack=4)) == {"ICD10PCS:0F90"}
