"""The matcher with terms mined from CodiEsp-X: a mined term helps only notes it was not
mined from, it is found in new Spanish notes and shown as evidence, and it is saved with
the matcher."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from autocode.knowledge import FULL_MATCH, CodeKnowledge, CodeSources
from autocode.knowledge.mined import note_fingerprint
from autocode.labels import LabelSpace
from autocode.models import MatcherModel, TfidfLexiconModel
from autocode.models.crossfit import fold_splits

CHEST_PAIN, EDEMA, TESTIS = "ICD10CM:R07.9", "ICD10CM:R60.9", "ICD10CM:N44.8"
CODES = [TESTIS, CHEST_PAIN, EDEMA]  # label order
# (note id, text, [(code, mentioned words)]): a tiny CodiEsp training split.
NOTES = [
    ("n0", "Varón de 50 años. Refiere dolor torácico opresivo.", [(CHEST_PAIN, "dolor torácico")]),
    ("n1", "Mujer de 70 años con edemas en miembros inferiores.", [(EDEMA, "edemas")]),
    (
        "n2",
        "Paciente con teste derecho aumentado de tamaño.",
        [(TESTIS, "teste derecho aumentado de tamaño")],
    ),
    ("n3", "Consulta por dolor retroesternal de dos horas.", [(CHEST_PAIN, "dolor retroesternal")]),
    ("n4", "Presenta edemas maleolares y dolor torácico.", [(EDEMA, "edemas")]),
    ("n5", "Acude por dolor torácico. Sin edemas.", [(CHEST_PAIN, "dolor torácico")]),
]
TEXTS = [text for _, text, _ in NOTES]
RETROSTERNAL_NOTE = 3  # the only note that says "dolor retroesternal"


def write_codiesp_split(root: Path) -> Path:
    """The notes as CodiEsp's `train/` folder; returns its X file."""
    split = root / "train"
    (split / "text_files").mkdir(parents=True)
    diagnoses, mentions = [], []
    for note_id, text, coded in NOTES:
        (split / "text_files" / f"{note_id}.txt").write_text(text, encoding="utf-8")
        for code, words in coded:
            value = code.split(":")[1].lower()
            start, end = text.index(words), text.index(words) + len(words)
            diagnoses.append(f"{note_id}\t{value}")
            mentions.append(f"{note_id}\tDIAGNOSTICO\t{value}\t{words}\t{start} {end}")
    (split / "trainD.tsv").write_text("\n".join(diagnoses) + "\n", encoding="utf-8")
    (split / "trainX.tsv").write_text("\n".join(mentions) + "\n", encoding="utf-8")
    return split / "trainX.tsv"


@pytest.fixture
def labels(tmp_path: Path) -> LabelSpace:
    knowledge = CodeKnowledge(
        CodeSources(mentions=write_codiesp_split(tmp_path), mention_language="es")
    )
    return LabelSpace.from_codes(CODES, knowledge=knowledge)


def gold() -> np.ndarray:
    return np.array([[int(code in dict(coded)) for code in CODES] for _, _, coded in NOTES])


def mined_terms(matcher: MatcherModel, code: str) -> list[str]:
    """The terms a fitted matcher looks for beyond the code's listed (English) ones."""
    listed = CodeKnowledge().terms(code)
    return [t for t in matcher.terms_.lexicon.terms[CODES.index(code)] if t and t not in listed]


def test_a_term_mined_from_a_held_out_note_does_not_reach_the_matcher(labels: LabelSpace) -> None:
    without = [i for i in range(len(NOTES)) if i != RETROSTERNAL_NOTE]
    matcher = MatcherModel().fit([TEXTS[i] for i in without], gold()[without], labels=labels)
    assert mined_terms(matcher, CHEST_PAIN) == ["dolor torácico"]
    chest = CODES.index(CHEST_PAIN)
    assert matcher.predict_proba([TEXTS[RETROSTERNAL_NOTE]])[0, chest] < FULL_MATCH
    # Fitted with the note, the matcher has its mention and finds it.
    matcher = MatcherModel().fit(TEXTS, gold(), labels=labels)
    assert mined_terms(matcher, CHEST_PAIN) == ["dolor torácico", "dolor retroesternal"]
    assert matcher.predict_proba([TEXTS[RETROSTERNAL_NOTE]])[0, chest] == pytest.approx(1.0)


def test_the_stacks_out_of_fold_matchers_use_only_their_fit_notes_mentions(
    labels: LabelSpace,
) -> None:
    # The re-ranker learns from these matchers' features of their held-out notes: the
    # inner folds and fold models the stack's own fit makes.
    stack = TfidfLexiconModel(inner_folds=3)
    folds = fold_splits(len(NOTES), folds=stack.inner_folds, seed=stack.seed)
    matcher_spec = stack._specs()[1]
    assert matcher_spec.name == "matcher"
    fold_matchers = stack._fold_models(matcher_spec, TEXTS, gold(), labels, folds, None)
    chest = CODES.index(CHEST_PAIN)
    for (fit_rows, held_rows), matcher in zip(folds, fold_matchers, strict=True):
        assert isinstance(matcher, MatcherModel)
        for code in CODES:
            mentioned = {words for i in fit_rows for c, words in NOTES[i][2] if c == code}
            assert set(mined_terms(matcher, code)) == mentioned
        features = matcher.pair_features([TEXTS[i] for i in held_rows])
        coverage = features[..., matcher.pair_feature_names.index("term_coverage")]
        if RETROSTERNAL_NOTE in held_rows:
            held = list(held_rows).index(RETROSTERNAL_NOTE)
            assert coverage[held, chest] < FULL_MATCH  # its own mention is not there
    assert any(RETROSTERNAL_NOTE in held for _, held in folds)


def test_the_stack_shows_a_mined_terms_words_first(labels: LabelSpace) -> None:
    model = TfidfLexiconModel(tfidf={"min_df": 1, "epochs": 5}, inner_folds=3)
    model.fit(TEXTS, gold(), labels=labels)
    matcher = model.bases_[1]
    assert isinstance(matcher, MatcherModel)
    assert mined_terms(matcher, CHEST_PAIN) == ["dolor torácico", "dolor retroesternal"]
    chest = CODES.index(CHEST_PAIN)
    note = "Ingresa por dolor retroesternal súbito."
    [spans] = model.evidence(note, [chest])
    assert [note[span.start : span.end] for span in spans][:2] == ["dolor", "retroesternal"]


def test_a_spanish_sentence_is_matched_by_a_mined_term_and_shown_as_evidence(
    labels: LabelSpace,
) -> None:
    matcher = MatcherModel().fit(TEXTS, gold(), labels=labels)
    note = "Mujer de 80 años. Ingresa por dolor retroesternal súbito."
    probs = matcher.predict_proba([note])[0]
    assert probs[CODES.index(CHEST_PAIN)] == pytest.approx(1.0)
    assert probs[CODES.index(TESTIS)] == 0.0
    [spans] = matcher.evidence(note, [CODES.index(CHEST_PAIN)])
    assert [(note[s.start : s.end], s.weight) for s in spans] == [
        ("dolor", pytest.approx(1.0)),
        ("retroesternal", pytest.approx(1.0)),
    ]


def test_a_matcher_with_mined_terms_survives_save_and_load(
    labels: LabelSpace, tmp_path: Path
) -> None:
    matcher = MatcherModel().fit(TEXTS, gold(), labels=labels)
    matcher.save(tmp_path / "matcher")
    loaded = MatcherModel.load(tmp_path / "matcher")
    notes = ["Ingresa por dolor retroesternal.", "Edemas con fóvea.", "Teste aumentado."]
    assert np.array_equal(loaded.predict_proba(notes), matcher.predict_proba(notes))
    assert loaded.evidence(notes[0], [1]) == matcher.evidence(notes[0], [1])
    assert loaded.terms_.lexicon.unicode_words and loaded.terms_.lexicon.typed_letters
    saved = (tmp_path / "matcher" / "matcher.json").read_text(encoding="utf-8")
    # The mined terms are saved as terms; neither the notes nor their fingerprints are.
    assert "dolor retroesternal" in json.loads(saved)["terms"][CODES.index(CHEST_PAIN)]
    assert not re.search(r"[0-9a-f]{64}", saved)
    assert note_fingerprint(TEXTS[0]) not in saved
    assert all(text not in saved for text in TEXTS)


def test_english_notes_get_no_spanish_term(labels: LabelSpace) -> None:
    # The fingerprints are of the Spanish notes: a fit on other texts (CodiEsp's English
    # translations) mines nothing.
    english = ["Male, 50. Reports oppressive chest pain."] * len(NOTES)
    matcher = MatcherModel().fit(english, gold(), labels=labels)
    assert all(mined_terms(matcher, code) == [] for code in CODES)


def test_a_matcher_saved_before_unicode_words_loads_with_its_ascii_words() -> None:
    saved = Path(__file__).parent / "data" / "tiny-stack" / "model" / "base_1"
    assert json.loads((saved / "matcher.json").read_text("utf-8"))["format_version"] == 1
    lexicon = MatcherModel.load(saved).terms_.lexicon
    assert not lexicon.unicode_words and not lexicon.typed_letters
