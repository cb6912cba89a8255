"""A fold ensemble: the models of a cross-fit, kept and averaged, instead of one refitted.

A cross-fitted Coder tunes its calibration and thresholds on out-of-fold scores: each
training note scored by a model fitted on the other folds. The usual next step refits one
model on every note, and that model is surer than the fold models whose scores were
tuned on (it saw a quarter more notes of each code): CodiEsp's `codiesp-best` Coder
called 0.90-0.95 codes that were right 85% of the time on dev. Predicting with the fold
models themselves, trained on as many notes as those that gave the tuning scores, keeps
prediction near the footing the decisions were tuned on (92% there; their average is a
little less extreme than one of them, so it may err the other way), and the average
ranks better than one model. It costs a prediction per fold.

    model:
      name: fold-ensemble
      params: {member: {name: tfidf-lexicon, params: {...}}, folds: 5}

A Coder cross-fits such a model once: `fit_out_of_fold` fits it and gives the out-of-fold
scores on which the Coder's decisions are tuned (`train.fitting.fit_coder`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

import numpy as np
from pydantic import BaseModel, Field

from autocode.labels import LabelSpace
from autocode.models.base import (
    CodesOnGpu,
    CodingModel,
    CopiesForBatchCoding,
    ExplainsPredictions,
    KnowsWords,
    LabelMatrix,
    NotFittedError,
    ReadsLimitedInput,
    check_fit_input,
    constructor_params,
    explain_notes,
)
from autocode.models.crossfit import fold_fits, fold_splits
from autocode.models.evidence import EvidenceSpan
from autocode.models.params import (
    ModelSpec,
    check_params,
    constructor_params_model,
    registered_model,
    spec_model,
)
from autocode.models.saved import read_json, write_json

PARAMS_FILE = "params.json"
STATE_FILE = "ensemble.json"  # labels, the member model's name, how many members
MEMBER_DIR = "member_{}"
DEFAULT_MEMBER = {"name": "tfidf"}
FORMAT_VERSION = 1


class FoldEnsemble:
    """`member`: a registered model as `{name, params}`, fitted once per fold on the other
    folds' notes; prediction averages the members' probabilities.

    Parameters
    ----------
    member : {name, params} mapping, default tfidf on its defaults
        The model each fold fits (checked by that model's params model).
    folds : int, default 5
        Folds of the training notes, one member each: each member learns from all notes
        but one fold's (4/5 of them with 5 folds); >= 2 and at most the number of notes.
    seed : int, default 0
        Seeds the fold split (not the members, which take their own); >= 0.

    Fitted: `members_` and `labels_`.
    """

    params_model: ClassVar[type[BaseModel]]  # set below, once the params model is built

    def __init__(
        self, *, member: Mapping[str, Any] | None = None, folds: int = 5, seed: int = 0
    ) -> None:
        self.member = dict(DEFAULT_MEMBER if member is None else member)
        self.folds = folds
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    def fit(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        labels: LabelSpace,
        validation: tuple[Sequence[str], LabelMatrix] | None = None,
        groups: Sequence[str] | None = None,
    ) -> Self:
        """One member per fold; `validation` (for early stopping) goes to every member."""
        self.fit_out_of_fold(texts, Y, labels=labels, validation=validation, groups=groups)
        return self

    def fit_out_of_fold(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        labels: LabelSpace,
        validation: tuple[Sequence[str], LabelMatrix] | None = None,
        groups: Sequence[str] | None = None,
    ) -> np.ndarray:
        """`fit`, and the (notes, labels) float32 scores each training note got from the
        member that never saw it: what a refitted model's Coder would be tuned on."""
        check_params(self, self.params_model)
        check_fit_input(texts, Y, labels, groups, validation)
        spec = ModelSpec.model_validate(self.member)
        fits = fold_fits(
            lambda: spec_model(spec),
            texts,
            Y,
            fold_splits(len(texts), folds=self.folds, seed=self.seed),
            labels=labels,
            purpose=f"fold ensemble ({spec.name})",
            groups=groups,
            validation=validation,
        )
        members: list[CodingModel] = []
        scores = np.zeros(Y.shape, dtype=np.float32)
        for model, held_rows in fits:
            scores[held_rows] = model.predict_proba([texts[i] for i in held_rows])
            members.append(model)
        self.members_, self.labels_ = members, list(labels.codes_)
        return scores

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        members = self._fitted()
        total = np.zeros((len(texts), len(self.labels_)), dtype=np.float32)
        for member in members:
            total += member.predict_proba(texts)
        total /= len(members)
        return total

    def evidence(
        self, text: str, label_indices: Sequence[int], top_n: int = 3
    ) -> list[list[EvidenceSpan]]:
        return self.evidence_batch([text], [label_indices], top_n)[0]

    def evidence_batch(
        self, texts: Sequence[str], label_indices: Sequence[Sequence[int]], top_n: int = 3
    ) -> list[list[list[EvidenceSpan]]]:
        """The first member's spans: the members learned from nearly the same notes, and a
        reviewer wants one set of spans, not five that mostly agree."""
        first = self._fitted()[0]
        if not isinstance(first, ExplainsPredictions):
            return [[[] for _ in labels] for labels in label_indices]
        return explain_notes(first, texts, label_indices, top_n)

    def save(self, path: Path) -> None:
        members = self._fitted()
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / PARAMS_FILE, {"params": self.get_params()}, FORMAT_VERSION)
        for k, member in enumerate(members):
            member.save(path / MEMBER_DIR.format(k))
        state = {"labels": self.labels_, "member": self.member["name"], "members": len(members)}
        write_json(path / STATE_FILE, state, FORMAT_VERSION)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Rebuilds the ensemble and its members from their files: no saved code runs."""
        model = cls(**read_json(path / PARAMS_FILE, FORMAT_VERSION)["params"])
        state = read_json(path / STATE_FILE, FORMAT_VERSION)
        member_class = registered_model(state["member"])
        model.members_ = [
            member_class.load(path / MEMBER_DIR.format(k)) for k in range(state["members"])
        ]
        model.labels_ = state["labels"]
        return model

    def codes_on_gpu(self) -> bool:
        return any(isinstance(m, CodesOnGpu) and m.codes_on_gpu() for m in self._fitted())

    def known_words(self) -> list[str]:
        """The members' words, each once."""
        words = (
            word
            for member in self._fitted()
            if isinstance(member, KnowsWords)
            for word in member.known_words()
        )
        return list(dict.fromkeys(words))

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """Which notes the members could not read whole (they share one reading length)."""
        first = self._fitted()[0]
        if isinstance(first, ReadsLimitedInput):
            return first.truncated(texts)
        return [False] * len(texts)

    def for_batch_coding(self) -> Self:
        """A copy whose members are their batch-coding copies where they have one; itself
        where none has."""
        members = self._fitted()
        copies = [
            m.for_batch_coding() if isinstance(m, CopiesForBatchCoding) else m for m in members
        ]
        if all(fast is member for fast, member in zip(copies, members, strict=True)):
            return self
        fast = copy.copy(self)
        fast.members_ = copies
        return fast

    def _fitted(self) -> list[CodingModel]:
        if not hasattr(self, "members_"):
            raise NotFittedError("FoldEnsemble is not fitted; call fit first")
        return self.members_


FoldEnsembleParams = constructor_params_model(
    FoldEnsemble,
    "FoldEnsembleParams",
    member=ModelSpec | None,
    folds=Annotated[int, Field(ge=2)],
    seed=Annotated[int, Field(ge=0)],
)
FoldEnsemble.params_model = FoldEnsembleParams
