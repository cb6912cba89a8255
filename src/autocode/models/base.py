"""The CodingModel contract every model implements, its optional protocols, and the
input checks every `fit` shares."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, Self, TypeAlias, runtime_checkable

import numpy as np
import scipy.sparse as sp

from autocode.errors import NotFittedError
from autocode.labels import LabelSpace
from autocode.models.evidence import EvidenceSpan

LabelMatrix: TypeAlias = np.ndarray | sp.csr_matrix
Folds: TypeAlias = Sequence[tuple[np.ndarray, np.ndarray]]  # (fit rows, held-out rows)


@runtime_checkable
class CodingModel(Protocol):
    """Multi-label text classifier: note texts in, one probability per label out.

    Hyperparameters go in the constructor (described by the params model registered with
    the class, checked at the start of `fit`); learned state ends in `_`, including
    `labels_`, the codes of the columns it predicts, saved with it. A fit that fails leaves
    an already fitted model as it was.

    `fit(texts, Y, *, labels, validation=None, groups=None)`:
    - `Y`: (notes, labels) multi-hot, dense or CSR; column j is `labels.codes_[j]`.
    - `labels`: the label space, required; models that use what codes mean read it (its
      `knowledge`), others only check that it matches Y.
    - `validation`: held-out (texts, Y) when the run has a validation split (e.g. for early
      stopping); models without a use for it ignore it.
    - `groups`: each note's patient (None: each note its own), for models that keep only
      what several patients' notes share.
    `predict_proba(texts)` gives a float (notes, labels) array in [0, 1]; before `fit` it
    raises NotFittedError. `save(path)` writes JSON and arrays (`models.saved`), and
    `load(path)` rebuilds the model from them without running saved code.
    """

    def fit(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        labels: LabelSpace,
        validation: tuple[Sequence[str], LabelMatrix] | None = None,
        groups: Sequence[str] | None = None,
    ) -> Self: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> Self: ...


@runtime_checkable
class ExplainsPredictions(Protocol):
    """A model that can point at the note text behind each label's score."""

    def evidence(
        self, text: str, label_indices: Sequence[int], top_n: int = 3
    ) -> list[list[EvidenceSpan]]: ...


@runtime_checkable
class ExplainsBatches(Protocol):
    """An explaining model that explains many notes at once, cheaper than one at a time:
    `evidence_batch(texts, label_indices, top_n)[i]` is `evidence(texts[i],
    label_indices[i], top_n)`."""

    def evidence_batch(
        self, texts: Sequence[str], label_indices: Sequence[Sequence[int]], top_n: int = 3
    ) -> list[list[list[EvidenceSpan]]]: ...


def explain_notes(
    model: ExplainsPredictions,
    texts: Sequence[str],
    label_indices: Sequence[Sequence[int]],
    top_n: int = 3,
) -> list[list[list[EvidenceSpan]]]:
    """Per note, per label of `label_indices[i]`, the model's evidence spans: in one batch
    where the model explains batches (`ExplainsBatches`), else note by note."""
    if len(texts) != len(label_indices):
        raise ValueError(f"{len(texts)} texts but {len(label_indices)} label lists")
    if isinstance(model, ExplainsBatches):
        return model.evidence_batch(texts, label_indices, top_n)
    return [
        model.evidence(t, labels, top_n) for t, labels in zip(texts, label_indices, strict=True)
    ]


@runtime_checkable
class ReadsLimitedInput(Protocol):
    """A model that reads at most a fixed length of each note (e.g. a transformer)."""

    def truncated(self, texts: Sequence[str]) -> list[bool]: ...


@runtime_checkable
class CopiesForBatchCoding(Protocol):
    """A fitted model with a faster copy for batch coding (e.g. int8 on CPUs): same labels,
    scores within a small tolerance of its own; the copy predicts and explains, and may
    refuse `save`. Batch coding uses it (`Coder.for_batch_coding`)."""

    def for_batch_coding(self) -> CodingModel: ...


@runtime_checkable
class KnowsWords(Protocol):
    """A fitted model that reads notes through a vocabulary of words: notes made of its own
    words warm up what real notes touch (vocabulary lookups, word memos, the CPU's
    caches), so a server's first request costs what the next ones do (`Coder.warm_up`)."""

    def known_words(self) -> list[str]: ...


@runtime_checkable
class CodesOnGpu(Protocol):
    """A fitted model that may predict on a GPU: batch coding then keeps to one process,
    since CUDA cannot be used in a process forked from one that has used it."""

    def codes_on_gpu(self) -> bool: ...


@runtime_checkable
class DescribesPairs(Protocol):
    """A fitted model that gives a stack its own features of each (note, label) pair,
    instead of the features a stack derives from its scores (`rerank.score_features`)."""

    pair_feature_names: tuple[str, ...]

    def pair_features(self, texts: Sequence[str]) -> np.ndarray:
        """(notes, labels, len(pair_feature_names)) float32 features."""
        ...

    def candidates(self, features: np.ndarray) -> np.ndarray:
        """(notes, labels) True where a pair is worth a stack's learning (a hard negative)."""
        ...


@runtime_checkable
class DescribesPairColumns(Protocol):
    """A `DescribesPairs` model that also gives its pair features one column at a time, so
    a stack can score pairs without stacking them: `pair_feature_columns(texts)[f]` is
    `pair_features(texts)[..., f]`, or a (labels,) row where it is the same in every note."""

    def pair_feature_columns(self, texts: Sequence[str]) -> list[np.ndarray]: ...


@runtime_checkable
class FitsFolds(Protocol):
    """A model that gives its out-of-fold copies cheaper than one fit per fold. A fold of
    every row (no held-out rows) gives the model `fit` gives on the same notes: a stack
    takes its final fit from there (`validation`, which such a model does not use, is
    not passed)."""

    def fold_models(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        labels: LabelSpace,
        folds: Folds,
        groups: Sequence[str] | None = None,
    ) -> Iterator[CodingModel]:
        """One fitted model per fold; model k learned nothing of fold k's held-out labels."""
        ...


def constructor_params(model: object) -> dict[str, Any]:
    """A model's hyperparameters, as scikit-learn derives them: its constructor's arguments."""
    names = inspect.signature(type(model).__init__).parameters
    return {name: getattr(model, name) for name in names if name != "self"}


def check_fit_input(
    texts: Sequence[str],
    Y: LabelMatrix,
    labels: LabelSpace,
    groups: Sequence[str] | None = None,
    validation: tuple[Sequence[str], LabelMatrix] | None = None,
) -> None:
    """The shapes every `fit` needs to agree, each mismatch named in one line."""
    if len(texts) != Y.shape[0]:
        raise ValueError(f"{len(texts)} texts but Y has {Y.shape[0]} rows")
    if len(labels) != Y.shape[1]:
        raise ValueError(f"Y has {Y.shape[1]} columns but the label space has {len(labels)}")
    if groups is not None and len(groups) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(groups)} groups")
    if validation is not None:
        valid_texts, valid_Y = validation
        if not len(valid_texts):
            raise ValueError("validation holds no notes; pass validation=None to train without it")
        if valid_Y.shape != (len(valid_texts), Y.shape[1]):
            raise ValueError(
                f"validation Y has shape {valid_Y.shape}; expected ({len(valid_texts)}, "
                f"{Y.shape[1]})"
            )


def label_difference(model_labels: Sequence[str], labels: Sequence[str]) -> str | None:
    """The first difference between a model's labels and a label space's, or None."""
    for column, (ours, theirs) in enumerate(zip(model_labels, labels, strict=False)):
        if ours != theirs:
            return f"column {column} is {ours} in the model but {theirs} in the label space"
    if len(model_labels) != len(labels):
        return f"the model has {len(model_labels)} labels, the label space {len(labels)}"
    return None


__all__ = [
    "CodingModel",
    "DescribesPairColumns",
    "DescribesPairs",
    "ExplainsBatches",
    "ExplainsPredictions",
    "FitsFolds",
    "Folds",
    "LabelMatrix",
    "NotFittedError",
    "ReadsLimitedInput",
    "check_fit_input",
    "constructor_params",
    "explain_notes",
    "label_difference",
]
