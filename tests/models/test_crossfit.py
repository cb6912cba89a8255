"""Out-of-fold scores: each fold's model is let go before the next one is fitted."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from autocode.models.crossfit import out_of_fold_scores

if TYPE_CHECKING:
    from conftest import TinyCorpus


class Tracked:
    """A model that counts, when fitted, how many models fitted before it are still alive."""

    fitted: ClassVar[list[weakref.ref[Tracked]]] = []
    alive_at_fit: ClassVar[list[int]] = []

    def fit(self, texts: Sequence[str], Y: Any, **kwargs: Any) -> Tracked:
        gc.collect()
        Tracked.alive_at_fit.append(sum(ref() is not None for ref in Tracked.fitted))
        Tracked.fitted.append(weakref.ref(self))
        self.n_labels = Y.shape[1]
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.full((len(texts), self.n_labels), 0.5, dtype=np.float32)


def test_no_fold_model_outlives_its_fold(tiny_corpus: TinyCorpus) -> None:
    """A fold model's weights are freed before the next fold allocates its own (a GPU
    model's too): at most one is held at a time."""
    Tracked.fitted.clear()
    Tracked.alive_at_fit.clear()
    scores = out_of_fold_scores(
        Tracked,  # type: ignore[arg-type]
        tiny_corpus.texts,
        tiny_corpus.Y,
        labels=tiny_corpus.labels,
        folds=3,
        seed=0,
    )
    assert Tracked.alive_at_fit == [0, 0, 0]
    assert scores.shape == tiny_corpus.Y.shape and (scores == 0.5).all()
