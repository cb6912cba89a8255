"""fit_coder hands the model its label space, knowledge and validation split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pytest

from autocode.config import DataConfig, ModelConfig, TrainConfig
from autocode.corpus.schema import NoteSet
from autocode.knowledge import CodeKnowledge
from autocode.labels import LabelSpace
from autocode.models import TfidfModel
from autocode.train import fitting
from autocode.train.fitting import fit_coder

if TYPE_CHECKING:
    from conftest import TinyCorpus


class RecordingTfidf(TfidfModel):
    """A TF-IDF model that remembers what `fit` was given."""

    calls: ClassVar[list[dict[str, Any]]] = []

    def fit(self, texts: Sequence[str], Y: Any, **kwargs: Any) -> RecordingTfidf:  # type: ignore[override]
        RecordingTfidf.calls.append(kwargs)
        return super().fit(texts, Y, **kwargs)


def test_the_validation_split_and_the_knowledge_reach_the_model(
    tiny_corpus: TinyCorpus, tiny_validation_corpus: TinyCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = TrainConfig(
        name="tiny",
        data=DataConfig(source="unused"),
        model=ModelConfig(name="tfidf", params={"min_df": 1, "epochs": 2}),
    )
    monkeypatch.setattr(fitting, "_new_model", lambda _: RecordingTfidf(min_df=1, epochs=2))
    knowledge = CodeKnowledge()
    train = NoteSet(tiny_corpus.texts, tiny_corpus.code_lists)
    validation = NoteSet(tiny_validation_corpus.texts, tiny_validation_corpus.code_lists)
    RecordingTfidf.calls.clear()
    coder = fit_coder(config, train, validation, knowledge=knowledge).coder

    [call] = RecordingTfidf.calls
    labels = call["labels"]
    assert isinstance(labels, LabelSpace) and labels.knowledge is knowledge
    assert labels.codes_ == tiny_corpus.codes
    valid_texts, valid_Y = call["validation"]
    assert valid_texts == tiny_validation_corpus.texts
    assert np.array_equal(valid_Y.toarray(), tiny_validation_corpus.Y)
    assert coder.model.labels_ == coder.labels.codes_  # type: ignore[attr-defined]

    # Without a validation split, every fit (folds and final) gets the label space only.
    RecordingTfidf.calls.clear()
    fit_coder(config.model_copy(update={"crossfit_folds": 2}), train, None)
    assert len(RecordingTfidf.calls) == 3
    assert all(call.get("validation") is None for call in RecordingTfidf.calls)
