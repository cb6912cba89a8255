"""Out-of-fold scores: each note scored by a model that never saw it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from sklearn.model_selection import KFold

from autocode.labels import LabelSpace
from autocode.models.base import CodingModel, Folds, LabelMatrix

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
    splits = fold_splits(len(texts), folds=folds, seed=seed)
    fits = fold_fits(new_model, texts, Y, splits, labels=labels, purpose=purpose, groups=groups)
    for model, held_rows in fits:
        scores[held_rows] = model.predict_proba([texts[i] for i in held_rows])
        del model  # free this fold's weights before the next fold allocates its own
    return scores


def fold_fits(
    new_model: Callable[[], CodingModel],
    texts: Sequence[str],
    Y: LabelMatrix,
    splits: Folds,
    *,
    labels: LabelSpace,
    purpose: str,
    groups: Sequence[str] | None = None,
    validation: tuple[Sequence[str], LabelMatrix] | None = None,
) -> Iterator[tuple[CodingModel, np.ndarray]]:
    """Per (fit rows, held-out rows) split, lazily: a new model fitted on the fit rows, and
    the held-out rows it never saw. The generator keeps no model: one the caller lets go
    is freed before the next fold's is fitted."""
    for fold, (fit_rows, held_rows) in enumerate(splits):
        logger.info("%s fold %d/%d: fit on %d notes", purpose, fold + 1, len(splits), len(fit_rows))
        yield (
            new_model().fit(
                [texts[i] for i in fit_rows],
                Y[fit_rows],
                labels=labels,
                validation=validation,
                groups=None if groups is None else [groups[i] for i in fit_rows],
            ),
            held_rows,
        )


def fold_splits(n_notes: int, *, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) per fold; the same notes, folds and seed give the same split."""
    if n_notes < folds:
        raise ValueError(
            f"cross-fitting with {folds} folds needs at least {folds} notes, got {n_notes}"
        )
    return list(KFold(folds, shuffle=True, random_state=seed).split(np.arange(n_notes)))
