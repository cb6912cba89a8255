"""The CodingModel contract every model implements, and the registry of models."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, Self, TypeAlias, runtime_checkable

import numpy as np
import scipy.sparse as sp

from autocode.models.evidence import Span

LabelMatrix: TypeAlias = np.ndarray | sp.csr_matrix


@runtime_checkable
class ExplainsPredictions(Protocol):
    """A model that can point at the note text behind each label's score."""

    def evidence(
        self, text: str, label_indices: Sequence[int], top_n: int = 3
    ) -> list[list[Span]]: ...


@runtime_checkable
class ReadsLimitedInput(Protocol):
    """A model that reads at most a fixed length of each note (e.g. a transformer)."""

    def truncated(self, texts: Sequence[str]) -> list[bool]: ...


def constructor_params(model: object) -> dict[str, Any]:
    """A model's hyperparameters, as scikit-learn derives them: its constructor's arguments."""
    names = inspect.signature(type(model).__init__).parameters
    return {name: getattr(model, name) for name in names if name != "self"}


class NotFittedError(RuntimeError):
    """Raised when a model is used for prediction before `fit`."""


@runtime_checkable
class CodingModel(Protocol):
    """Multi-label text classifier: note texts in, one probability per label out.

    Hyperparameters go in the constructor; learned state ends in `_`. `label_codes` names
    the code of each column of Y (`ICD10CM:L40.0`), for models that use what codes mean;
    others ignore it. `groups` names each note's patient (None: each note its own), for
    models that keep only what several patients' notes share.
    """

    def fit(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        validation: tuple[Sequence[str], LabelMatrix] | None = None,
        label_codes: Sequence[str] | None = None,
        groups: Sequence[str] | None = None,
    ) -> Self: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> Self: ...
