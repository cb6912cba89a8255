"""`min_patients`: the saved vocabulary keeps only n-grams of several patients' notes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autocode.labels import LabelSpace
from autocode.models import TfidfLexiconModel, TfidfModel
from conftest import TinyCorpus

# Patient A's three notes repeat a vital sign; "shared words" is in B's and C's notes.
NOTES = [
    ("A", "fever noted bp 154 today"),
    ("A", "bp 154 again with cough"),
    ("A", "cough persists bp 154"),
    ("B", "fever and cough shared words"),
    ("C", "fever cough shared words"),
]
TEXTS = [text for _, text in NOTES]
PATIENTS = [patient for patient, _ in NOTES]
Y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1]])
LABELS = LabelSpace.from_codes(["ICD10CM:I10", "ICD10CM:E11.9"])


def vocabulary(model: TfidfModel) -> set[str]:
    return set(model.vectorizers_[0].vocabulary_)


def test_an_ngram_of_one_patient_is_left_out_of_the_saved_model(tmp_path: Path) -> None:
    model = TfidfModel(min_df=1, min_patients=2, epochs=2).fit(
        TEXTS, Y, labels=LABELS, groups=PATIENTS
    )
    words = vocabulary(model)
    # In 3 notes, but all of patient A's: gone (min_df alone would keep them).
    assert not {"bp", "154", "bp 154", "noted", "again"} & words
    # In the notes of 2 patients: kept.
    assert {"shared", "words", "shared words", "fever", "cough"} <= words
    model.save(tmp_path / "model")
    for file in (tmp_path / "model").iterdir():
        assert b"154" not in file.read_bytes(), file.name
    loaded = TfidfModel.load(tmp_path / "model")
    assert loaded.min_patients == 2
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), model.predict_proba(TEXTS))


def test_without_groups_each_note_counts_as_its_own_patient() -> None:
    model = TfidfModel(min_df=1, min_patients=2, epochs=2).fit(TEXTS, Y, labels=LABELS)
    words = vocabulary(model)
    assert {"bp 154", "shared words"} <= words  # 3 notes and 2 notes
    assert "noted" not in words  # 1 note


def test_min_patients_off_keeps_every_ngram_min_df_keeps() -> None:
    model = TfidfModel(min_df=1, epochs=2).fit(TEXTS, Y, labels=LABELS, groups=PATIENTS)
    assert {"bp 154", "noted"} <= vocabulary(model)


def test_a_setting_that_leaves_no_ngram_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"min_patients=4 leaves no n-gram: .* 3 patient"):
        TfidfModel(min_df=1, min_patients=4).fit(TEXTS, Y, labels=LABELS, groups=PATIENTS)
    with pytest.raises(ValueError, match="5 texts but 2 groups"):
        TfidfModel(min_patients=2).fit(TEXTS, Y, labels=LABELS, groups=PATIENTS[:2])


def test_tfidf_lexicon_passes_the_patients_to_its_stage1(tiny_corpus: TinyCorpus) -> None:
    texts = list(tiny_corpus.texts)
    for i in range(3):  # one patient's three notes carry their blood pressure
        texts[i] += " bp 154"
    groups = ["patient-0"] * 3 + [f"patient-{i}" for i in range(3, len(texts))]
    model = TfidfLexiconModel(
        tfidf={"min_df": 1, "min_patients": 2, "epochs": 2}, inner_folds=2
    ).fit(texts, tiny_corpus.Y, labels=tiny_corpus.labels, groups=groups)
    assert "bp 154" not in vocabulary(model.bases_[0])
    assert "anemia" in vocabulary(model.bases_[0])
