"""`single_characters`: words of one character ("type 2", "hepatitis C") are tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autocode.labels import LabelSpace
from autocode.models import TfidfModel

TEXTS = [
    "type 2 diabetes mellitus",
    "type 1 diabetes mellitus",
    "known type 2 diabetes",
    "known type 1 diabetes",
]
Y = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
LABELS = LabelSpace.from_codes(["ICD10CM:E11.9", "ICD10CM:E10.9"])


def vocabulary(model: TfidfModel) -> set[str]:
    return set(model.vectorizers_[0].vocabulary_)


def test_words_of_one_character_are_tokens_only_when_asked(tmp_path: Path) -> None:
    plain = TfidfModel(min_df=1, epochs=20).fit(TEXTS, Y, labels=LABELS)
    assert "2" not in vocabulary(plain) and "type diabetes" in vocabulary(plain)
    # Without them, type 2's note and type 1's are the same features, the same scores.
    scores = plain.predict_proba(TEXTS)
    np.testing.assert_array_equal(scores[0], scores[1])

    single = TfidfModel(min_df=1, epochs=20, single_characters=True).fit(TEXTS, Y, labels=LABELS)
    assert {"2", "1", "type 2", "type 1", "2 diabetes"} <= vocabulary(single)
    scores = single.predict_proba(TEXTS)
    assert (scores[[0, 2], 0] > scores[[0, 2], 1]).all()
    assert (scores[[1, 3], 1] > scores[[1, 3], 0]).all()
    # The evidence points at the n-grams of the one character too.
    [[spans]] = single.evidence_batch(TEXTS[:1], [[0]], top_n=3)
    assert any("2" in TEXTS[0][span.start : span.end] for span in spans)

    single.save(tmp_path / "model")
    loaded = TfidfModel.load(tmp_path / "model")
    assert loaded.single_characters
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), scores)
