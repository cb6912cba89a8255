"""Code terms, descriptions and the code lexicon, against hand-computed values."""

from __future__ import annotations

import math
import random
import re
import unicodedata

import pytest

from autocode.knowledge import CodeKnowledge, code_group
from autocode.knowledge.lexicon import (
    SENTENCE_BREAK,
    TYPED_A,
    TYPED_A_WORD,
    CodeLexicon,
    content_words,
    fold,
    sentence_spans,
    typed_letters,
)

KNOWLEDGE = CodeKnowledge()


def code_terms(code: str) -> list[str]:
    return KNOWLEDGE.terms(code)


def code_description(code: str) -> str:
    return KNOWLEDGE.description(code)


# ----------------------------------------------------------------------------- code terms


def test_code_terms_are_the_description_then_inclusion_terms() -> None:
    assert code_terms("ICD10CM:L40.0") == [
        "Psoriasis vulgaris",
        "Nummular psoriasis",
        "Plaque psoriasis",
    ]
    # Parenthesised qualifiers are dropped: "Essential (primary) hypertension".
    assert code_terms("ICD10CM:I10")[0] == "Essential hypertension"


def test_truncated_and_prefix_codes_borrow_the_nearest_meaning() -> None:
    # CodiEsp writes S02.0XX; the tabular lists S02.0.
    assert code_terms("ICD10CM:S02.0XX")[0] == "Fracture of vault of skull"
    # CodiEsp procedures are 4-character ICD-10-PCS prefixes: their codes' shared words.
    assert code_terms("ICD10PCS:0DT6") == ["Resection of Stomach"]
    assert code_terms("ICD10PCS:BN20") == ["Computerized Tomography of Skull"]


@pytest.mark.parametrize(
    ("prefix", "meaning"),
    [
        # "Drainage of Bladder with …" and "Drainage of Bladder, Open …": commas aside.
        ("ICD10PCS:0T9B", "Drainage of Bladder"),
        ("ICD10PCS:0D75", "Dilation of Esophagus"),
        # Shared up to a joining word whose object varies: the joining word goes.
        ("ICD10PCS:02RF", "Replacement of Aortic Valve"),
        ("ICD10PCS:0D1B", "Bypass Ileum"),
        # The device or substance comes first: the place every code names is added.
        ("ICD10PCS:00HU", "Insertion into Spinal Canal"),
        ("ICD10PCS:3E03", "Introduction into Peripheral Vein"),
        ("ICD10PCS:00PV", "Removal from Spinal Cord"),
        # Inner commas stay.
        ("ICD10PCS:CT13", "Planar Nuclear Medicine Imaging of Kidneys, Ureters and Bladder"),
        ("ICD10PCS:0DT60ZZ", "Resection of Stomach, Open Approach"),  # a full code: its own
        # The place phrase ends before a joining word; no place without "<operation> of".
        ("ICD10PCS:8C0", "Collection from Indwelling Device"),
        ("ICD10PCS:8C01", "Collection from Indwelling Device in Nervous System"),
        ("ICD10PCS:D020", "Stereotactic"),
    ],
)
def test_a_pcs_prefix_is_named_by_its_operation_and_body_part(prefix: str, meaning: str) -> None:
    assert code_terms(prefix)[0] == meaning
    assert CodeKnowledge().description(prefix) == meaning  # what the review app shows


def test_codes_without_known_terms_have_none() -> None:
    assert code_terms("CPT:99231") == []  # CPT descriptions are not open
    assert code_terms("ICD10CM:U99.9") == []  # in no listed category


def test_code_description_falls_back_to_the_first_term() -> None:
    assert code_description("ICD10CM:L40.0") == "Psoriasis vulgaris"
    assert code_description("ICD10PCS:BN20") == "Computerized Tomography of Skull"
    assert code_description("ICD10CM:S02.0XX") == "Fracture of vault of skull"
    assert code_description("CPT:99231") == ""


def test_code_group_is_the_three_character_family() -> None:
    assert code_group("ICD10CM:L40.0") == "ICD10CM:L40"
    assert code_group("ICD10PCS:0DT6") == "ICD10PCS:0DT"
    assert code_group("ICD10CM:R42") == "ICD10CM:R42"


# ----------------------------------------------------------------------------- lexicon


def test_words_are_lowercased_folded_and_stripped_of_stop_words() -> None:
    assert [w for w, _, _ in content_words("Fractures of the Ribs, unspecified")] == [
        "fracture",
        "rib",
    ]
    assert [fold(w) for w in ("abscess", "abscesses", "injuries", "masses", "bronchitis")] == [
        "abscess",
        "abscess",
        "injury",
        "mass",
        "bronchitis",
    ]
    text = "Known gout.  Asthma; fine\n\nEnd"
    assert [text[a:b] for a, b in sentence_spans(text)] == ["Known gout.", "Asthma;", "fine", "End"]


def test_sentence_spans_are_the_non_blank_pieces_between_breaks() -> None:
    def by_breaks(text: str) -> list[tuple[int, int]]:
        starts = [0, *(m.end() for m in SENTENCE_BREAK.finditer(text))]
        ends = [*(m.start() for m in SENTENCE_BREAK.finditer(text)), len(text)]
        return [(a, b) for a, b in zip(starts, ends, strict=True) if text[a:b].strip()]

    rng = random.Random(0)
    pieces = ["a", "é", " ", "  ", ".", "!", "?", ";", "\n", "\n\n", "\t", "x. ", "\u2028"]
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
        assert sentence_spans(text) == by_breaks(text), repr(text)


def test_sentence_breaks_are_newlines_or_blanks_after_a_closing_mark() -> None:
    """The break pattern (with its look-ahead, for speed) splits as its plain definition."""
    plain = re.compile(r"\n+|(?<=[.!?;])\s+")
    rng = random.Random(1)
    pieces = ["a", "é", " ", ".", "!", "?", ";", "\n", "\r", "\t", "\u2028", "\u00a0", "\x0b"]
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        assert SENTENCE_BREAK.split(text) == plain.split(text), repr(text)
    assert SENTENCE_BREAK.split("Gout.  Asthma;\nfever. x\n\nend") == [
        "Gout.",
        "Asthma;",
        "fever.",
        "x",
        "end",
    ]


@pytest.fixture
def lexicon() -> CodeLexicon:
    terms = [["Plaque psoriasis"], ["Dizziness and giddiness"], []]
    # Two sentences; "giddiness" never occurs, so it weighs more than the other words.
    return CodeLexicon(terms).fit(["Plaque psoriasis.\nDizziness."])


def test_coverage_is_the_idf_weighted_share_of_a_term_in_one_sentence(
    lexicon: CodeLexicon,
) -> None:
    common, unseen = math.log(3 / 2) + 1, math.log(3 / 1) + 1
    matches = lexicon.match(["Known psoriasis; dizziness.", "PLAQUES of psoriasis", "nothing"])
    assert matches.best[0] == pytest.approx([0.5, common / (common + unseen), 0.0], abs=1e-6)
    assert matches.best[1] == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)
    assert matches.full_sentences[1].tolist() == [1.0, 0.0, 0.0]
    assert matches.best[2].tolist() == [0.0, 0.0, 0.0]


def test_words_of_a_term_must_share_one_sentence(lexicon: CodeLexicon) -> None:
    split = lexicon.match(["Plaque here.\nPsoriasis there. Plaque psoriasis again.  Psoriasis."])
    assert split.best[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert split.full_sentences[0, 0] == 1.0  # only the one sentence naming both words
    apart = lexicon.match(["Plaque here.\nPsoriasis there."])
    assert apart.best[0, 0] == pytest.approx(0.5, abs=1e-6)


def test_description_coverage_ignores_the_other_terms() -> None:
    lexicon = CodeLexicon([["Psoriasis vulgaris", "Plaque psoriasis"]]).fit(["x"])
    matches = lexicon.match(["Plaque psoriasis."])
    assert matches.best[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert matches.best_description[0, 0] == pytest.approx(0.5, abs=1e-6)


def test_full_sentences_are_the_most_of_any_one_term_not_their_sum() -> None:
    lexicon = CodeLexicon([["Psoriasis vulgaris", "Plaque psoriasis"], ["Gout"]]).fit(["x"])
    text = "Plaque psoriasis. Gout. Plaque psoriasis again. Psoriasis vulgaris.\nGout."
    matches = lexicon.match(["Gout only.", text])
    # Two sentences name "plaque psoriasis", one "psoriasis vulgaris": 2, not 3.
    assert matches.full_sentences.tolist() == [[0.0, 1.0], [2.0, 2.0]]
    assert matches.best_description.tolist() == [[0.0, 1.0], [1.0, 1.0]]


def test_spans_point_at_the_best_terms_words(lexicon: CodeLexicon) -> None:
    text = "Psoriasis once. Then PLAQUE  psoriasis, and dizziness."
    common, unseen = math.log(3 / 2) + 1, math.log(3 / 1) + 1
    plaque, dizziness, nothing = lexicon.spans(text, [0, 1, 2])
    assert plaque[0] == pytest.approx(1.0)
    assert [text[a:b] for a, b in plaque[1]] == ["PLAQUE", "psoriasis"]
    assert dizziness[0] == pytest.approx(common / (common + unseen))
    assert [text[a:b] for a, b in dizziness[1]] == ["dizziness"]
    assert nothing == (0.0, [])


def test_spanish_words_are_whole_without_accents_and_joining_words() -> None:
    text = "Radiografía del Tórax: niño con EDEMAS"
    assert content_words(text) == [
        ("radiografia", 0, 11),
        ("torax", 16, 21),
        ("nino", 23, 27),
        ("edema", 32, 38),
    ]
    # Lexicons saved before Unicode words read ASCII runs, joining words included.
    assert [w for w, _, _ in content_words(text, unicode_words=False)] == [
        "radiograf",
        "del",
        "t",
        "rax",
        "ni",
        "o",
        "con",
        "edema",
    ]


def test_a_spanish_term_matches_with_or_without_accents_and_shows_whole_words() -> None:
    lexicon = CodeLexicon([["dolor torácico"], ["teste aumentado de tamaño"]])
    lexicon.fit(["Dolor toracico.", "Sin fiebre."])
    text = "Refiere dolor toracico de tipo opresivo."
    [(chest, spans), (testis, none)] = lexicon.spans(text, [0, 1])
    assert chest == pytest.approx(1.0)
    assert [text[a:b] for a, b in spans] == ["dolor", "toracico"]
    assert (testis, none) == (0.0, [])  # "de" is no longer a word the two terms share
    legacy = CodeLexicon([["dolor torácico"]], unicode_words=False).fit(["Dolor torácico."])
    text = "Refiere dolor torácico."
    [(coverage, spans)] = legacy.spans(text, [0])
    assert coverage == pytest.approx(1.0)
    assert [text[a:b] for a, b in spans] == ["dolor", "tor", "cico"]


def test_decomposed_accents_stay_inside_their_words() -> None:
    """Text in NFD writes "á" as "a" plus a combining mark, which is not a word character."""
    lexicon = CodeLexicon([["dolor torácico"]]).fit(["Dolor torácico."])
    text = unicodedata.normalize("NFD", "Refiere dolor torácico.")
    [(coverage, spans)] = lexicon.spans(text, [0])
    assert coverage == pytest.approx(1.0)
    assert [text[a:b] for a, b in spans] == ["dolor", unicodedata.normalize("NFD", "torácico")]


def test_offsets_survive_letters_that_lowercase_longer() -> None:
    lexicon = CodeLexicon([["Gout"]]).fit(["Gout."])
    text = "İİ gout today"  # "İ".lower() is two characters
    [(coverage, spans)] = lexicon.spans(text, [0])
    assert coverage == pytest.approx(1.0)
    assert [text[a:b] for a, b in spans] == ["gout"]


def test_icd9_categories_keep_their_plain_shared_words() -> None:
    # ICD-9 names are not built axis by axis: no place phrase, no dropped joining word.
    assert code_terms("ICD9CM:862")[0] == "Injury to"
    assert code_terms("ICD9CM:482.3")[0] == "Pneumonia due to"


def test_an_a_that_types_its_word_is_a_word_not_an_article() -> None:
    terms = [["Vitamin A deficiency"], ["Vitamin D deficiency"], ["Hepatitis A"]]
    notes = ["Vitamin D deficiency was found.", "A vitamin A deficiency.", "Hepatitis A."]
    lexicon = CodeLexicon(terms).fit(notes)
    best = lexicon.match(notes).best
    # Vitamin D deficiency covers vitamin A deficiency's words but its "A": not whole.
    assert best[0, 1] == pytest.approx(1.0) and best[0, 0] < 0.8
    assert best[1, 0] == pytest.approx(1.0)  # the sentence's first "A" is the article
    assert best[2, 2] == pytest.approx(1.0)
    # Its span is the letter itself, where the note writes it.
    [(coverage, spans)] = lexicon.spans(notes[1], [0])
    assert coverage == pytest.approx(1.0)
    assert [notes[1][a:b] for a, b in spans] == ["vitamin", "A", "deficiency"]
    assert typed_letters("Type-a, vitamins A and a patient") == "Type-α, vitamins α and a patient"
    # Head words found as words only, in any case, whatever the text's letters.
    assert typed_letters("Prototype A, TYPE A; group\tA. Influenza Ab.") == (
        "Prototype A, TYPE α; group\tα. Influenza Ab."
    )
    assert typed_letters("İ: hepatitis A") == "İ: hepatitis α"  # "İ" lowercases to 2
    # The same as the pattern replaced everywhere, where lowercasing and the pattern's
    # ignored case read letters apart ("ı" is "i" to it, "ſ" is "s").
    tricky = ["hepatıtis A", "hepatitiſ A", "vıtamin A", "typeſ A", "_type A", "type\u00a0A"]
    tricky += ["TYPES-A", "xtype A", "type A type A", "Type-A-type a", "protein Aa", ""]
    for text in tricky:
        assert typed_letters(text) == TYPED_A.sub(lambda m: m.group()[:-1] + TYPED_A_WORD, text)
    # As lexicons saved before it read them: "A" a stop word, vitamin A in vitamin D.
    older = CodeLexicon(terms, typed_letters=False).fit(notes)
    assert older.match(notes).best[0, 0] == pytest.approx(1.0)
