"""Word translations learned from sentence pairs, and Spanish mentions found in English."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from autocode.knowledge.mined import mine_codiesp_x, note_fingerprint
from autocode.knowledge.projection import (
    MentionProjector,
    cognate_similarity,
    parallel_sentences,
    source_sentences,
)
from autocode.knowledge.word_alignment import TranslationTable, WordAlignment

# A small bilingual world: content words, each with its one translation.
DICTIONARY = {
    "fiebre": "fever",
    "alta": "high",
    "dolor": "pain",
    "abdominal": "abdominal",
    "intenso": "intense",
    "paciente": "patient",
    "tos": "cough",
    "seca": "dry",
    "cefalea": "headache",
    "leve": "mild",
    "nauseas": "nausea",
    "vomitos": "vomiting",
}


def _sentence_pairs(count: int = 300) -> list[tuple[list[str], list[str]]]:
    """Random sentences of three to five words and their word-by-word translations, with
    a joining word on each side ("con" / "with") in most."""
    rng = random.Random(7)
    pairs = []
    for _ in range(count):
        spanish = rng.sample(sorted(DICTIONARY), rng.randint(3, 5))
        english = [DICTIONARY[word] for word in spanish]
        if rng.random() < 0.7:
            spanish.insert(1, "con")
            english.insert(1, "with")
        pairs.append((spanish, english))
    return pairs


@pytest.fixture(scope="module")
def alignment() -> WordAlignment:
    return WordAlignment.fit(_sentence_pairs())


def test_each_word_is_most_likely_translated_by_its_dictionary_word(
    alignment: WordAlignment,
) -> None:
    for spanish, english in DICTIONARY.items():
        scores = {target: alignment.score(spanish, target) for target in alignment.forward.targets}
        assert max(scores, key=scores.__getitem__) == english
        assert scores[english] > 0.9
        # A joining word seen beside everything is not a content word's translation.
        assert scores["with"] < 0.05
    assert alignment.score("con", "with") > 0.9
    # Words never seen together, or never seen: 0.
    assert alignment.forward.probability("fiebre", "unseen") == 0.0
    assert alignment.score("nunca", "fever") == 0.0


def test_translation_probabilities_of_a_source_word_sum_to_one() -> None:
    table = TranslationTable.fit(_sentence_pairs(50))
    fiebre = table.sources["fiebre"]
    rows = table.keys // len(table.targets) == fiebre
    assert table.probabilities[rows].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no sentence pair with a target word"):
        TranslationTable.fit([(["fiebre"], [])])


def test_a_spanish_mention_is_found_in_the_english_sentence_that_translates_it(
    alignment: WordAlignment,
) -> None:
    spanish = "Paciente con tos seca. Refiere fiebre alta desde ayer.\nDolor abdominal intenso."
    english = (
        "Patient with dry cough.\nHe reports high fever since yesterday.\nIntense abdominal pain.\n"
    )
    mentions = [
        [_span(spanish, "fiebre alta")],  # order changes in English
        [_span(spanish, "Dolor abdominal intenso")],
        [_span(spanish, "tos"), _span(spanish, "seca")],  # a split mention
        [_span(spanish, "ayer")],  # a word the table never learned: not projected
        [],
    ]
    projected = MentionProjector(alignment).project(spanish, english, mentions)
    found = [english[span[0] : span[1]] if span else None for span in projected]
    assert found == ["high fever", "Intense abdominal pain", "dry cough", None, None]


def test_rare_words_are_matched_by_spelling_and_names_as_written(
    alignment: WordAlignment,
) -> None:
    assert cognate_similarity("miofibromatosis", "myofibromatosis") > 0.85
    assert cognate_similarity("deshidratacion", "dehydration") >= 0.75
    assert cognate_similarity("palidez", "dryness") == 0.0
    assert cognate_similarity("tos", "toss") == 0.0  # too short to tell
    spanish = "Paciente con miofibromatosis e infección MARSA."
    english = "Patient with myofibromatosis and MARSA infection.\n"
    mentions = [[_span(spanish, "miofibromatosis")], [_span(spanish, "MARSA")]]
    projected = MentionProjector(alignment).project(spanish, english, mentions)
    assert [english[a:b] for a, b in filter(None, projected)] == ["myofibromatosis", "MARSA"]


def test_only_documents_with_as_many_sentences_on_both_sides_give_sentence_pairs() -> None:
    spanish = "Fiebre alta. Tos seca.\nDolor abdominal (intenso)."
    assert [spanish[a:b] for a, b in source_sentences(spanish)] == [
        "Fiebre alta.",
        "Tos seca.",
        "Dolor abdominal (intenso).",
    ]
    english = "High fever.\nDry cough.\nAbdominal pain (intense).\n"
    pairs = parallel_sentences([(spanish, english), (spanish, "High fever. Dry cough.\n")])
    assert pairs == [
        (["fiebre", "alta"], ["high", "fever"]),
        (["tos", "seca"], ["dry", "cough"]),
        (["dolor", "abdominal", "intenso"], ["abdominal", "pain", "intense"]),
    ]


def test_the_real_mentions_projected_onto_the_english_notes(codiesp_root: Path) -> None:
    x_file = codiesp_root / "train" / "trainX.tsv"
    mined = mine_codiesp_x(x_file, language="en")
    lineage = mined.lineage()
    assert lineage["language"] == "en" and lineage["mentions"] == 9181
    # About three mentions in four are carried by the translation.
    assert 0.65 < lineage["projected"] / lineage["mentions"] < 0.85
    fever = mined.by_code["ICD10CM:R50.9"]
    assert max(fever, key=lambda term: len(fever[term])) == "fever"
    assert "hypertension" in mined.by_code["ICD10CM:I10"]
    assert "type 2 diabetes mellitus" in mined.by_code["ICD10CM:E11.9"]
    # Each term remembers the English notes it was found in, never the Spanish ones.
    english = {
        note_fingerprint(path.read_text("utf-8"))
        for path in (codiesp_root / "train" / "text_files_en").glob("*.txt")
    }
    spanish = {
        note_fingerprint(path.read_text("utf-8"))
        for path in (codiesp_root / "train" / "text_files").glob("*.txt")
    }
    remembered = {
        note for terms in mined.by_code.values() for notes in terms.values() for note in notes
    }
    assert remembered <= english and not remembered & spanish
    with pytest.raises(ValueError, match="language 'fr' not one of"):
        mine_codiesp_x(x_file, language="fr")


def test_background_notes_that_are_notes_of_a_scored_split_are_left_out(tmp_path: Path) -> None:
    from autocode.knowledge.mined import _background_documents

    def write(split: str, name: str, spanish: str, english: str) -> None:
        for folder, text in (("text_files", spanish), ("text_files_en", english)):
            (tmp_path / split / folder).mkdir(parents=True, exist_ok=True)
            (tmp_path / split / folder / name).write_text(text, "utf-8")

    write("train", "t1.txt", "Fiebre.", "Fever.")
    write("dev", "d1.txt", "Tos seca.", "Dry cough.")
    write("test", "x1.txt", "Cefalea.", "Headache.")
    write("background", "b1.txt", "Dolor.", "Pain.")  # unlabelled: kept
    write("background", "b2.txt", "Tos seca.", "Dry cough.")  # dev's text: left out
    write("background", "x1.txt", "Cefalea leve.", "Mild headache.")  # test's name: left out
    write("background", "t9.txt", "Fiebre.", "Fever.")  # train's own text: kept
    assert _background_documents(tmp_path, "train") == [("Dolor.", "Pain."), ("Fiebre.", "Fever.")]
    assert _background_documents(tmp_path / "missing", "train") == []


def _span(text: str, words: str) -> tuple[int, int]:
    start = text.index(words)
    return start, start + len(words)
