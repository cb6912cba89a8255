"""The clinical abbreviation table: written out, case rules."""

from __future__ import annotations

from autocode.knowledge.abbreviations import expand_abbreviation


def test_abbreviations_are_written_out() -> None:
    assert expand_abbreviation("HTN") == "hypertension"
    assert expand_abbreviation("DM2") == "type 2 diabetes mellitus"
    assert expand_abbreviation("CHF") == "congestive heart failure"
    assert expand_abbreviation("COPD") == "chronic obstructive pulmonary disease"
    assert expand_abbreviation("MI") == "myocardial infarction"
    assert expand_abbreviation("WPW") == "Wolff-Parkinson-White syndrome"


def test_short_abbreviations_count_only_in_capitals_long_ones_in_any_case() -> None:
    assert expand_abbreviation("mi") is None
    assert expand_abbreviation("Htn") is None
    assert expand_abbreviation("copd") == "chronic obstructive pulmonary disease"
    assert expand_abbreviation("fever") is None
