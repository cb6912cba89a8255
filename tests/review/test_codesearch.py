"""The reviewer's code search: which codes a query finds, and in what order."""

from __future__ import annotations

from autocode.review.codesearch import CodeEntry, CodeHit, CodeIndex

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
