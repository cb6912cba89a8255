"""ConText trigger rules: each context, scope ends, pseudo-triggers, and the quick test."""

from __future__ import annotations

import pytest

from autocode.knowledge.context import (
    FAMILY,
    HISTORICAL,
    HYPOTHETICAL,
    NEGATED,
    NOT_CODED,
    TRIGGERS,
    UNCERTAIN,
    context_scopes,
    contexts_at,
    has_trigger,
    saved_blocking,
)


def contexts_of(sentence: str, mention: str) -> frozenset[str]:
    start = sentence.index(mention)
    return contexts_at(context_scopes(sentence), start, start + len(mention))


@pytest.mark.parametrize(
    ("sentence", "mention", "expected"),
    [
        ("No fever or chills.", "fever", {NEGATED}),
        ("The patient denies chest pain.", "chest pain", {NEGATED}),
        ("There was no evidence of metastasis.", "metastasis", {NEGATED}),
        ("Pneumonia was ruled out.", "Pneumonia", {NEGATED}),  # a backward trigger
        ("Return if fever develops.", "fever", {HYPOTHETICAL}),
        ("Treated for suspected pyoderma gangrenosum.", "pyoderma", {UNCERTAIN}),
        ("Clinical suspicion of necrotizing fasciitis.", "fasciitis", {UNCERTAIN}),
        ("Chest X-ray consistent with pneumonia.", "pneumonia", {UNCERTAIN}),
        ("Probable viral exanthema.", "exanthema", {UNCERTAIN}),
        ("Pulmonary embolism cannot be excluded.", "embolism", {UNCERTAIN}),
        ("Start antibiotics as soon as possible for the pneumonia.", "pneumonia", set()),
        ("Family history of colon cancer.", "colon cancer", {FAMILY}),
        ("Her mother had breast cancer.", "breast cancer", {FAMILY}),
        ("History of duodenal ulcer.", "duodenal ulcer", {HISTORICAL}),
        ("He has essential hypertension.", "hypertension", set()),
    ],
)
def test_each_context_is_found_where_its_trigger_governs(
    sentence: str, mention: str, expected: set[str]
) -> None:
    assert contexts_of(sentence, mention) == expected


def test_a_terminator_ends_the_scope() -> None:
    sentence = "No fever but persistent cough."
    assert contexts_of(sentence, "fever") == {NEGATED}
    assert contexts_of(sentence, "cough") == frozenset()


def test_a_backward_trigger_stops_at_a_terminator_before_it() -> None:
    sentence = "Cough persists however pneumonia was ruled out."
    assert contexts_of(sentence, "pneumonia") == {NEGATED}
    assert contexts_of(sentence, "Cough") == frozenset()


def test_a_pseudo_trigger_does_not_negate() -> None:
    assert contexts_of("No increase in tumour size.", "tumour") == frozenset()
    assert contexts_of("Gram negative bacilli in the culture.", "bacilli") == frozenset()


def test_scopes_carry_the_sentence_offset() -> None:
    (scope,) = context_scopes("no fever", offset=100)
    assert (scope.context, scope.start, scope.end) == (NEGATED, 102, 108)


def test_trigger_words_inside_other_words_do_not_trigger() -> None:
    assert context_scopes("Known ifosfamide nephrotoxicity.") == []
    assert not has_trigger("Known ifosfamide nephrotoxicity.")
    assert has_trigger("Family history of diabetes")


def test_common_words_that_open_a_trigger_do_not_alone_make_one() -> None:
    # "is", "was", "at", "in the" open triggers ("is negative", "at risk for", "in the
    # past") and are in most sentences: alone they make none.
    sentence = "The patient was in the ward and is at home with her husband."
    assert context_scopes(sentence) == []
    assert not has_trigger(sentence)


def test_the_quick_test_can_ask_for_some_contexts_only() -> None:
    sentence = "History of asthma, in the past treated by her mother."
    assert has_trigger(sentence)
    assert has_trigger(sentence, {FAMILY})  # "mother"
    assert not has_trigger(sentence, {NEGATED, HYPOTHETICAL})
    assert has_trigger("Asthma is ruled out.", {NEGATED})  # a backward trigger's opening
    assert not has_trigger("Asthma is treated.", {NEGATED})


@pytest.mark.parametrize("phrase", sorted({p for ps in TRIGGERS.values() for p in ps}))
def test_has_trigger_finds_every_trigger_phrase(phrase: str) -> None:
    # The quick test may say yes where no trigger is, never no where one is.
    spaced = phrase.replace(" ", " \n ").upper()
    sentence = f"Seen today; {spaced}, fever."
    assert context_scopes(sentence)
    assert has_trigger(sentence)


@pytest.mark.parametrize(
    ("sentence", "mention", "expected"),
    [
        ("Niega fiebre.", "fiebre", {NEGATED}),
        ("Sin fiebre ni tos.", "tos", {NEGATED}),
        ("Ausencia de adenopatías.", "adenopatías", {NEGATED}),
        ("Se descarta tromboembolismo pulmonar.", "tromboembolismo", {NEGATED}),
        ("El TEP fue descartado.", "TEP", {NEGATED}),  # a backward trigger
        ("Sin fiebre pero con tos.", "tos", set()),  # "pero" ends the scope
        ("Sin embargo, presenta fiebre.", "fiebre", set()),  # a pseudo-trigger
        ("Carcinoma de mama triple negativo.", "Carcinoma", set()),  # no bare "negativo"
        ("Antecedentes familiares de diabetes.", "diabetes", {FAMILY}),
        ("Su madre tuvo cáncer de mama.", "cáncer de mama", {FAMILY}),
        ("En caso de fiebre, acudir a urgencias.", "fiebre", {HYPOTHETICAL}),
        ("Ante la sospecha de apendicitis, se opera.", "apendicitis", {UNCERTAIN}),
        ("Imagen compatible con neumonía.", "neumonía", {UNCERTAIN}),
        # Scopes end where Spanish narrative moves on, as English ones do.
        ("Sin alergias conocidas, acude por dolor torácico.", "dolor torácico", set()),
        ("Sin antecedentes de interés y con hipertensión arterial.", "hipertensión", set()),
        ("Acude sin cita previa por dolor torácico.", "dolor torácico", set()),
        ("Etiología no filiada, con anemia.", "anemia", set()),
        ("Acude con su madre por dolor abdominal.", "dolor abdominal", set()),
        ("No obstante, persiste la fiebre.", "fiebre", set()),
        ("Se descartaron metástasis.", "metástasis", {NEGATED}),
        ("Antecedentes de úlcera duodenal.", "úlcera duodenal", {HISTORICAL}),
        ("Hipertensión arterial esencial.", "Hipertensión", set()),
    ],
)
def test_spanish_triggers_govern_as_the_english_ones(
    sentence: str, mention: str, expected: set[str]
) -> None:
    assert contexts_of(sentence, mention) == expected


def test_blocking_saved_before_uncertain_mentions_were_apart_still_blocks_them() -> None:
    # "hypothetical" then held "suspected …": a part saved so keeps blocking it.
    assert saved_blocking(["negated", "hypothetical"], uncertain_apart=False) == (
        NEGATED,
        HYPOTHETICAL,
        UNCERTAIN,
    )
    assert saved_blocking(["negated"], uncertain_apart=False) == (NEGATED,)
    assert saved_blocking(["uncertain", "hypothetical"], uncertain_apart=False) == (
        UNCERTAIN,
        HYPOTHETICAL,
    )
    # Saved since: as saved, with or without it.
    assert saved_blocking(["negated", "hypothetical"], uncertain_apart=True) == (
        NEGATED,
        HYPOTHETICAL,
    )


def test_the_configs_default_blocking_is_contexts_not_coded() -> None:
    from autocode.config import OpenCodesConfig, TermRulesConfig

    assert OpenCodesConfig().blocking == list(NOT_CODED)
    assert TermRulesConfig().blocking == list(NOT_CODED)
