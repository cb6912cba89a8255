"""ICD-10-CM hierarchy and Excludes1, checked against the FY2026 tabular list."""

from __future__ import annotations

import pytest

from autocode.codes import (
    CodeError,
    ancestors,
    excludes1,
    excludes1_conflicts,
    icd10cm,
    is_billable,
    parent,
)
from autocode.codes.excludes import references


def test_ancestors_are_codes_nearest_first() -> None:
    assert ancestors("ICD10CM:J45.909") == ["ICD10CM:J45.90", "ICD10CM:J45.9", "ICD10CM:J45"]
    assert ancestors("icd10cm:s020xxa") == ["ICD10CM:S02.0", "ICD10CM:S02"]
    # A category sits in a block (N40-N53) and a chapter (14), neither of which is a code.
    assert ancestors("ICD10CM:N44") == []


def test_single_category_blocks_do_not_repeat_the_category() -> None:
    # The tabular has a block named O09 holding only the category O09.
    assert ancestors("ICD10CM:O09.A0") == ["ICD10CM:O09.A", "ICD10CM:O09"]
    assert ancestors("ICD10CM:C7A") == []


def test_parent() -> None:
    assert parent("ICD10CM:N44.8") == "ICD10CM:N44"
    assert parent("ICD10CM:S02.0XXA") == "ICD10CM:S02.0"
    assert parent("ICD10CM:N44") is None


def test_is_billable_means_a_leaf() -> None:
    assert is_billable("ICD10CM:N44.8")
    assert is_billable("ICD10CM:I10")
    assert is_billable("ICD10CM:S02.0XXA")
    assert not is_billable("ICD10CM:N44")
    assert not is_billable("ICD10CM:S02.0")
    assert not is_billable("ICD10CM:S02.0XX")


def test_hierarchy_of_codes_outside_the_tabular_is_an_error() -> None:
    with pytest.raises(CodeError, match=r"'ICD10CM:S02\.0XX' is not in the ICD-10-CM tabular"):
        ancestors("ICD10CM:S02.0XX")
    with pytest.raises(CodeError, match="ICD9CM code: only ICD10CM"):
        parent("ICD9CM:428.0")
    with pytest.raises(CodeError, match="no system"):
        excludes1("N44.8")


def test_excludes1_reads_the_code_then_its_ancestors_blocks_and_chapter() -> None:
    found = excludes1("ICD10CM:E11.9")
    # E11.9's own note, then category E11's, then chapter 4's newborn range.
    assert found == ["E11.A", "E08.-", "E09.-", "O24.4-", "P70.2", "E13.-", "E10.-", "P70-P74"]
    assert excludes1("ICD10CM:K50.90") == ["K51.-", "K58.-", "K59.3-"]
    assert excludes1("ICD10CM:N44.8") == []


def test_mutual_exclusions_are_listed_both_ways() -> None:
    codes = ["ICD10CM:E10.9", "ICD10CM:E11.9", "ICD10CM:N44.8", "ICD9CM:428.0", "ICD10CM:K50.90"]
    assert excludes1_conflicts([*codes, "ICD10CM:K51.90"]) == [
        ("ICD10CM:E10.9", "ICD10CM:E11.9"),
        ("ICD10CM:E11.9", "ICD10CM:E10.9"),
        ("ICD10CM:K50.90", "ICD10CM:K51.90"),
        ("ICD10CM:K51.90", "ICD10CM:K50.90"),
    ]


def test_ranges_cover_every_category_between_their_ends() -> None:
    # I10 excludes hypertension complicating pregnancy (O10-O11, O13-O16), not O12 (edema).
    assert excludes1_conflicts(["ICD10CM:I10", "ICD10CM:O10.02", "ICD10CM:O12.00"]) == [
        ("ICD10CM:I10", "ICD10CM:O10.02")
    ]
    # T88.7 excludes specified adverse effects "(A00-R94 and T80-T88.6, T88.8)".
    assert excludes1_conflicts(["ICD10CM:T88.7", "ICD10CM:N44.8", "ICD10CM:S02.0XXA"]) == [
        ("ICD10CM:T88.7", "ICD10CM:N44.8")
    ]


def test_qualified_references_cover_only_the_codes_they_describe() -> None:
    # G54.5 excludes "E08-E13 with .44": diabetic amyotrophy, not diabetes in general.
    assert excludes1_conflicts(["ICD10CM:G54.5", "ICD10CM:E11.44", "ICD10CM:E11.9"]) == [
        ("ICD10CM:G54.5", "ICD10CM:E11.44")
    ]
    # S01 excludes "S02.- with 7th character B": open skull fractures only.
    assert excludes1_conflicts(["ICD10CM:S01.01XA", "ICD10CM:S02.0XXB", "ICD10CM:S02.0XXA"]) == [
        ("ICD10CM:S01.01XA", "ICD10CM:S02.0XXB")
    ]
    # R47.01 excludes "I69. with final characters -20": aphasia following a stroke.
    assert excludes1_conflicts(["ICD10CM:R47.01", "ICD10CM:I69.320", "ICD10CM:I69.321"]) == [
        ("ICD10CM:R47.01", "ICD10CM:I69.320")
    ]


def test_codes_outside_the_tabular_can_be_excluded_but_exclude_nothing() -> None:
    assert excludes1_conflicts(["ICD10CM:K51.90", "ICD10CM:K50.9X"]) == [
        ("ICD10CM:K51.90", "ICD10CM:K50.9X")
    ]


def test_conflicts_need_canonical_codes() -> None:
    with pytest.raises(CodeError, match="not a canonical code"):
        excludes1_conflicts(["E10.9", "E11.9"])


@pytest.mark.parametrize(
    ("note", "texts"),
    [
        ("type 1 diabetes mellitus (E10.-)", ["E10.-"]),
        ("hypertensive disease (O10-O11, O13-O16)", ["O10-O11", "O13-O16"]),
        (
            "cognitive deficits (sequelae of) (I69.01-I69.11-, I69.21-I69.31-, I69.81- I69.91-)",
            ["I69.01-I69.11-", "I69.21-I69.31-", "I69.81- I69.91-"],
        ),
        ("benign neoplasm of testis (D29.2.-)", ["D29.2.-"]),
        ("open fracture (S92.-with 7th character B)", ["S92.-with 7th character B"]),
        # Prose in parentheses, and qualifiers that cannot be read, name nothing.
        ("G6PD deficiency (G6PD) (D55.0)", ["D55.0"]),
        ("open wound (S52.- with open fracture 7th character)", []),
        ("meningitis (in):", []),
    ],
)
def test_references_read_from_note_text(note: str, texts: list[str]) -> None:
    assert [reference.text for reference in references(note)] == texts


@pytest.mark.parametrize(
    ("note", "covered", "not_covered"),
    [
        ("(E08.-)", ["E08", "E08.9", "E08.3211"], ["E09.9", "E80"]),
        ("(O24.4-)", ["O24.4", "O24.410"], ["O24.3", "O24"]),
        ("(J60-J67.9)", ["J60", "J64", "J67.9", "J67"], ["J59", "J68.0"]),
        ("(O00-O9A)", ["O00.0", "O99.89", "O9A.1"], ["P00"]),
        ("(E08-E13 with .51-.52)", ["E08.51", "E13.52"], ["E08.5", "E11.59", "E14.51"]),
        (
            "(V01-V09 with 5th character 1)",
            ["V01.01XA", "V09.21XA"],
            ["V01.00XA", "V09.1", "V10.01XA"],
        ),
        ("(F11-F19 with fifth to sixth characters 51)", ["F11.151"], ["F11.150", "F10.151"]),
    ],
)
def test_reference_coverage(note: str, covered: list[str], not_covered: list[str]) -> None:
    (reference,) = references(note)
    assert [v for v in covered if reference.covers(v)] == covered
    assert [v for v in not_covered if reference.covers(v)] == []


def test_paired_references_read_the_code_then_its_ancestors_pairing_notes() -> None:
    # E66 (obesity): "use additional code to identify body mass index (BMI), if known
    # (Z68.1-Z68.45) ... (Z68.5-)" and "code first obesity complicating pregnancy (O99.21-)".
    assert [r.text for r in icd10cm.paired_references("E66.9")] == [
        "Z68.1-Z68.45",
        "Z68.5-",
        "O99.21-",
    ]
    # N39.0 (urinary tract infection): "use additional code (B95-B97), to identify
    # infectious agent".
    [agent] = icd10cm.paired_references("N39.0")
    assert agent.covers("B96.20") and agent.covers("B95.61") and not agent.covers("B98.0")
    assert not any(r.covers("Z68.41") for r in icd10cm.paired_references("E11.9"))
