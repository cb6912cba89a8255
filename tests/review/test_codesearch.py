"""The reviewer's code search: which codes a query finds, and in what order."""

from __future__ import annotations

import pytest

from autocode.review.codesearch import CodeEntry, CodeHit, CodeIndex
from autocode.review.search_words import word_options

ENTRIES = [
    CodeEntry("ICD10CM:A78", "Q fever"),
    CodeEntry("ICD10CM:R68.83", "Chills (without fever)"),
    CodeEntry("ICD10CM:R50.9", "Fever, unspecified", ("Pyrexia NOS",)),
    CodeEntry("ICD10CM:P81.9", "Disturbance of temperature regulation", ("Fever of newborn",)),
    CodeEntry("ICD10CM:R50", "Fever of other and unknown origin", billable=False),
    CodeEntry("HCPCS:X0001", "Feverish child kit"),
    CodeEntry("ICD10CM:J45", "Asthma"),
    CodeEntry("ICD10CM:A51", "Early syphilis"),
    CodeEntry("ICD10CM:H60.91", "Otitis externa, right ear"),
    CodeEntry("ICD10CM:I10", "Essential (primary) hypertension", ("high blood pressure",)),
]


def test_descriptions_beginning_with_the_query_word_come_first_then_whole_words():
    found = [hit.code for hit in CodeIndex(ENTRIES).search("fever")]
    # Begins with the word "fever", then holds it whole, then holds it; descriptions
    # before terms ("Fever of newborn" is shorter than "Fever of other ..."); shortest first.
    assert found == [
        "ICD10CM:R50.9",
        "ICD10CM:R50",
        "ICD10CM:P81.9",
        "ICD10CM:A78",
        "ICD10CM:R68.83",
        "HCPCS:X0001",
    ]
    # A word, not a prefix: "ear" is the ear, not "Early".
    assert [hit.code for hit in CodeIndex(ENTRIES).search("ear")] == [
        "ICD10CM:H60.91",
        "ICD10CM:A51",
    ]


def test_every_word_must_be_there_and_a_code_prefix_leads():
    index = CodeIndex(ENTRIES)
    assert [hit.code for hit in index.search("fever unknown")] == ["ICD10CM:R50"]
    assert [hit.code for hit in index.search("r50")] == ["ICD10CM:R50.9", "ICD10CM:R50"]
    assert [hit.code for hit in index.search("r509")] == ["ICD10CM:R50.9"]  # without its dot
    assert [hit.billable for hit in index.search("r50")] == [True, False]
    assert [hit.code for hit in index.search("99213")] == ["CPT:99213"]
    assert index.search("   ") == []


def test_a_code_found_by_an_inclusion_term_says_which():
    assert CodeIndex(ENTRIES).search("high blood pressure") == [
        CodeHit("ICD10CM:I10", "Essential (primary) hypertension", "high blood pressure")
    ]
    # Found in its description, a code names no term.
    assert CodeIndex(ENTRIES).search("hypertension") == [
        CodeHit("ICD10CM:I10", "Essential (primary) hypertension")
    ]


def test_a_code_ranks_by_its_best_name():
    entries = [
        CodeEntry("ICD10CM:H40.05", "Ocular hypertension"),
        CodeEntry("ICD10CM:I10", "Essential (primary) hypertension", ("hypertension (arterial)",)),
    ]
    # I10's includes note begins with the word: it ranks first, and says it was found so.
    assert CodeIndex(entries).search("hypertension") == [
        CodeHit("ICD10CM:I10", "Essential (primary) hypertension", "hypertension (arterial)"),
        CodeHit("ICD10CM:H40.05", "Ocular hypertension"),
    ]


@pytest.mark.parametrize(
    ("typed", "options"),
    [
        ("anaemia", ("anaemia", "anemia")),
        ("oesophagitis", ("oesophagitis", "esophagitis")),
        ("diarrhoea", ("diarrhoea", "diarrhea")),
        ("tumour", ("tumour", "tumor", "neoplasm")),  # and the tabular's word
        ("catheterisation", ("catheterisation", "catheterization")),
        ("centre", ("centre", "center")),
        ("renal", ("renal", "kidney")),
        ("bph", ("bph", "benign prostatic hyperplasia")),  # any case in a search box
        ("haem", ("haem", "hem")),  # while a coder types
        ("paralysed", ("paralysed", "paralyzed")),
        ("sulphonamide", ("sulphonamide", "sulfonamide")),
        # Spellings that only look British keep theirs.
        ("canoes", ("canoes",)),
        ("aerial", ("aerial",)),
        ("algae", ("algae",)),
        ("hours", ("hours",)),
        ("thromboembolism", ("thromboembolism",)),
        ("fever", ("fever",)),
        ("toe", ("toe",)),
    ],
)
def test_a_typed_word_keeps_itself_first_beside_the_tables_writings(
    typed: str, options: tuple[str, ...]
) -> None:
    assert word_options(typed) == options


SPELLINGS = [
    CodeEntry("ICD10CM:D64.9", "Anemia, unspecified"),
    CodeEntry("ICD10CM:N40.0", "Benign prostatic hyperplasia without lower urinary tract symptoms"),
    CodeEntry("ICD10CM:K65.1", "Peritoneal abscess", ("Subphrenic abscess",)),  # holds "bph"
    CodeEntry("ICD10CM:N18.6", "End stage renal disease"),
    CodeEntry("ICD10CM:T86.12", "Kidney transplant failure"),
    CodeEntry("ICD10CM:N19", "Unspecified kidney failure"),
    CodeEntry("HCPCS:X0002", "Kidney failure kit"),
]


def test_british_spellings_abbreviations_and_note_words_find_the_tables_names() -> None:
    index = CodeIndex(SPELLINGS)
    assert [hit.code for hit in index.search("anaemia")] == ["ICD10CM:D64.9"]
    # The expansion, whole, before a name that only holds the letters.
    assert [hit.code for hit in index.search("BPH")] == ["ICD10CM:N40.0", "ICD10CM:K65.1"]
    # "renal" is the tabular's "kidney", and the words typed still count as typed.
    assert [hit.code for hit in index.search("renal disease")] == ["ICD10CM:N18.6"]
    # The query's words in a row first: "kidney failure" before "Kidney transplant failure".
    assert [hit.code for hit in index.search("renal failure")] == [
        "HCPCS:X0002",
        "ICD10CM:N19",
        "ICD10CM:T86.12",
    ]


def test_a_search_in_one_system_keeps_its_codes_only() -> None:
    index = CodeIndex(SPELLINGS + ENTRIES)
    assert index.systems == ("ICD10CM", "HCPCS", "CPT")  # no ICD-10-PCS entries here
    assert [hit.code for hit in index.search("kidney failure", system="ICD10CM")] == [
        "ICD10CM:N19",
        "ICD10CM:T86.12",
    ]
    assert [hit.code for hit in index.search("fever", system="HCPCS")] == ["HCPCS:X0001"]
    assert index.search("99213", system="ICD10CM") == []
    assert [hit.code for hit in index.search("99213", system="CPT")] == ["CPT:99213"]
    with pytest.raises(ValueError, match="no code search for system 'ICD10PCS'"):
        index.search("fever", system="ICD10PCS")


def test_other_writings_match_at_a_words_start_only() -> None:
    index = CodeIndex(
        [
            CodeEntry("ICD10CM:K76.0", "Fatty (change of) liver, not elsewhere classified"),
            CodeEntry("ICD10CM:O80", "Encounter for full-term uncomplicated delivery"),
            CodeEntry("ICD10CM:N21.0", "Calculus in bladder"),
            CodeEntry("ICD10CM:K80.20", "Calculus of gallbladder without cholecystitis"),
        ]
    )
    # "hepatic" is the tabular's "liver", not "delivery"; "vesical" "bladder", not
    # "gallbladder"; the word as typed is still found anywhere ("calc" in "Calculus").
    assert [hit.code for hit in index.search("hepatic")] == ["ICD10CM:K76.0"]
    assert [hit.code for hit in index.search("vesical calc")] == ["ICD10CM:N21.0"]


def test_a_name_found_as_typed_ranks_before_one_found_by_another_writing() -> None:
    index = CodeIndex(
        [
            CodeEntry("ICD10CM:X1", "Kidney cyst"),
            CodeEntry("ICD10CM:X2", "Renal cyst, acquired"),  # longer, yet first
        ]
    )
    assert [hit.code for hit in index.search("renal cyst")] == ["ICD10CM:X2", "ICD10CM:X1"]
