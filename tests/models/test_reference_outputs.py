"""A saved tfidf-lexicon stack gives the probabilities and evidence it gave when the
reference was written: speed-ups of prediction and evidence may not change their output.

`data/tiny-stack/` holds the stack fitted on the tiny notes (saved as JSON and arrays)
and `reference.json` what it answered for `REFERENCE_TEXTS` then. Regenerate both only
for a change meant to alter the outputs, and say so in the commit:

    PYTHONPATH=src:tests .venv/bin/python tests/models/test_reference_outputs.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autocode.models import TfidfLexiconModel, evidence, model_class

REFERENCE_DIR = Path(__file__).resolve().parent / "data" / "tiny-stack"
MODEL_DIR = REFERENCE_DIR / "model"
REFERENCE_FILE = REFERENCE_DIR / "reference.json"
# Notes that exercise the evidence: terms matched whole and in part, across sentences,
# repeated words, upper case, a letter that lowercases longer, nothing at all.
REFERENCE_TEXTS = [
    "Known GOUT, flaring; migraine quiet. Gout attack last week.",
    "Type 2 diabetes mellitus without complications.\nDiabetes reviewed, asthma stable.",
    "Fracture of the neck of the right femur. Femur fracture, closed; fracture clinic.",
    "Asthma NOS. Anemia noted.  Anemia, iron deficiency? Migraine with aura, migraine NOS.",
    "İİ gout today, podagra of the toe; acute gout.",
    "Patient seen today in clinic, reports feeling tired since last week.",
    "nothing this model has seen",
    "",
]


def load_model() -> Any:
    return model_class("tfidf-lexicon").load(MODEL_DIR)


def answers(model: Any, texts: list[str]) -> dict[str, Any]:
    """Raw probabilities, and every label's evidence (top 3) in every note."""
    labels = list(range(len(model.labels_)))
    evidence = [model.evidence(text, labels, top_n=3) for text in texts]
    return {
        "probabilities": model.predict_proba(texts).tolist(),
        "evidence": [[[list(span) for span in spans] for spans in note] for note in evidence],
    }


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))


def test_probabilities_match_the_reference(reference: dict[str, Any]) -> None:
    probs = load_model().predict_proba(REFERENCE_TEXTS)
    expected = np.array(reference["probabilities"], dtype=np.float64)
    assert probs.shape == expected.shape == (len(REFERENCE_TEXTS), 6)
    assert np.allclose(probs, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("searched", [0, 32])  # n-grams located by index; by search
def test_evidence_matches_the_reference_exactly(
    reference: dict[str, Any], searched: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evidence, "SEARCHED_NGRAMS", searched)
    found = answers(load_model(), REFERENCE_TEXTS)["evidence"]
    assert found == reference["evidence"]
    assert sum(len(spans) for note in found for spans in note) > 50  # not a vacuous match


def test_evidence_of_a_batch_is_each_notes_own(reference: dict[str, Any]) -> None:
    model = load_model()
    labels = [[5, 0, 3], [], [1], [0, 1, 2, 3, 4, 5], [4], [2], [3], [0]]
    batch = model.evidence_batch(REFERENCE_TEXTS, labels, top_n=3)
    pairs = zip(REFERENCE_TEXTS, labels, strict=True)
    one_by_one = [model.evidence(text, note_labels, top_n=3) for text, note_labels in pairs]
    assert batch == one_by_one
    as_lists = [[list(span) for span in spans] for spans in batch[0]]
    assert as_lists == [reference["evidence"][0][j] for j in labels[0]]
    tfidf = model.bases_[0]
    assert tfidf.evidence_batch(REFERENCE_TEXTS[:2], labels[:2], top_n=0) == [[[], [], []], []]


def test_evidence_after_prediction_reuses_its_work_and_matches_the_reference(
    reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evidence for the notes just predicted reads the feature rows and term matches
    prediction computed: neither the vectorizer nor the lexicon matching runs again."""
    model = load_model()
    model.predict_proba(REFERENCE_TEXTS)
    tfidf, matcher = model.bases_

    def refused(*args: object) -> None:
        raise AssertionError("computed again")

    monkeypatch.setattr(tfidf.vectorizers_[0], "transform", refused)
    monkeypatch.setattr(type(matcher.terms_), "match", refused)
    labels = [list(range(len(model.labels_)))] * len(REFERENCE_TEXTS)
    batch = model.evidence_batch(REFERENCE_TEXTS, labels, top_n=3)
    found = [[[list(span) for span in spans] for spans in note] for note in batch]
    assert found == reference["evidence"]


def write_reference() -> None:
    """Fit the tiny stack, save it and its answers (see the module docstring)."""
    from conftest import make_tiny_corpus

    corpus = make_tiny_corpus()
    model = TfidfLexiconModel(tfidf={"min_df": 1, "epochs": 30, "batch_size": 8}, inner_folds=3)
    model.fit(corpus.texts, corpus.Y, labels=corpus.labels)
    shutil.rmtree(MODEL_DIR, ignore_errors=True)
    model.save(MODEL_DIR)
    payload = answers(load_model(), REFERENCE_TEXTS)
    REFERENCE_FILE.write_text(json.dumps(payload, indent=1), encoding="utf-8")


if __name__ == "__main__":
    write_reference()
