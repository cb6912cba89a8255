"""Out-of-fold scores: each note scored by a model that never saw it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.model_selection import KFold

from autocode.labels import LabelSpace
from autocode.models.base import CodingModel, LabelMatrix

logger = logging.getLogger(__name__)


def out_of_fold_scores(
    new_model: Callable[[], CodingModel],
    texts: Sequence[str],
    Y: LabelMatrix,
    *,
    labels: LabelSpace,
    folds: int,
    seed: int,
    purpose: str = "cross-fit",
    groups: Sequence[str] | None = None,
) -> np.ndarray:
    """(notes, labels) scores from `folds` models, each fitted on the other folds' notes.

    With small corpora a held-out split wastes scarce codes; out-of-fold scores let every
    note both train the final model and tune what is learned on top of its scores.
    """
    scores = np.zeros(Y.shape, dtype=np.float32)
    for fold, (fit_rows, held_rows) in enumerate(fold_splits(len(texts), folds=folds, seed=seed)):
        logger.info("%s fold %d/%d: fit on %d notes", purpose, fold + 1, folds, len(fit_rows))
        model = new_model().fit(
            [texts[i] for i in fit_rows],
            Y[fit_rows],
            labels=labels,
            groups=None if groups is None else [groups[i] for i in fit_rows],
        )
        scores[held_rows] = model.predict_proba([texts[i] for i in held_rows])
        del model  # free this fold's weights before the next fold allocates its own
    return scores


def fold_splits(n_notes: int, *, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) per fold; the same notes, folds and seed give the same split."""
    if n_notes < folds:
        raise ValueError(
            f"cross-fitting with {folds} folds needs at least {folds} notes, got {n_notes}"
        )
    return list(KFold(folds, shuffle=True, random_state=seed).split(np.arange(n_notes)))
