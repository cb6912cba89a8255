"""A stack: N base models' scores re-ranked per (note, code) pair, one re-ranker per system.

Each base model gives each pair features: its own (`DescribesPairs`, e.g. the matcher's
term matches) or those `rerank.score_features` derives from its scores. A logistic
regression per code system weighs them. It learns from out-of-fold features of the
training notes (each fold's base models fitted on the other folds), so the features it
weighs in training look like those it weighs at prediction time. A new base model joins
a stack by configuration:

    model: {name: stack, params: {base_models: [{name: tfidf}, {name: matcher}]}}
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, Field

from autocode.knowledge import code_group, system_columns
from autocode.knowledge.label_terms import note_blocks
from autocode.labels import LabelSpace
from autocode.models.base import (
    CodesOnGpu,
    CodingModel,
    CopiesForBatchCoding,
    DescribesPairColumns,
    DescribesPairs,
    ExplainsPredictions,
    FitsFolds,
    Folds,
    KnowsWords,
    LabelMatrix,
    NotFittedError,
    check_fit_input,
    constructor_params,
    explain_notes,
)
from autocode.models.crossfit import fold_splits
from autocode.models.evidence import EvidenceSpan
from autocode.models.matcher import family_index
from autocode.models.params import (
    ModelSpec,
    check_params,
    constructor_params_model,
    registered_model,
    spec_model,
)
from autocode.models.rerank import (
    SCORE_FEATURES,
    LabelRerankers,
    Reranker,
    score_feature_columns,
    score_features,
)
from autocode.models.saved import read_arrays, read_json, write_arrays, write_json
from autocode.models.tfidf import TfidfParams

logger = logging.getLogger(__name__)

PARAMS_FILE = "params.json"
STATE_FILE = "stack.json"  # labels, base model names, feature names, re-ranked systems
ARRAYS_FILE = "stack.npz"  # label families and re-ranker weights
BASE_DIR = "base_{}"
# Of every file above (each base model versions its own); 2: base models in base_k/
# (version 1 was the former two-stage tfidf-lexicon layout).
FORMAT_VERSION = 2
# Pair features built at once, at most ~64 MB: memory stays bounded at any label count.
FEATURE_BUDGET = 64 * 2**20 // 4
DEFAULT_BASES = ({"name": "tfidf"}, {"name": "matcher"})


class StackModel:
    """`base_models`: registered models as `{name, params}`, each fitted on all training
    notes for prediction and once per inner fold for the re-ranker's training pairs.

    The re-ranker trains on every positive pair; per note, each base model's
    `hard_negatives` best-scored negatives (a `DescribesPairs` model's own candidates
    instead); and `random_negatives` others, weighted to stand for all the remaining ones.
    `regularization` is the logistic regression's C. `evidence_order` lists the base models
    whose evidence spans are shown, first one's first (None: every base model, in order).

    Parameters
    ----------
    base_models : sequence of {name, params} mappings, default tfidf and matcher
        The base models: registered model names with their hyperparameters (checked by
        that model's params model; params may be omitted for the defaults); at least one.
        The default is `[{"name": "tfidf"}, {"name": "matcher"}]`, both on defaults.
    inner_folds : int, default 5
        Folds of the training notes for the re-ranker's out-of-fold features: each base
        model is fitted once per fold, then once on all notes; >= 2, and at most the
        number of training notes.
    hard_negatives : int, default 100
        Per note, the codes each score-only base model scores highest, this many, join the
        gold codes as re-ranker training pairs (a `DescribesPairs` base model adds its own
        candidates instead); >= 0. Training only: prediction scores every pair.
    random_negatives : int, default 20
        Per note, this many of the remaining negative pairs are sampled for the re-ranker,
        weighted to stand for all of them; >= 0.
    regularization : float, default 1.0
        The inverse regularisation strength C of each code system's logistic regression
        (on standardised features): smaller is stronger; > 0.
    evidence_order : sequence of int or None, default None
        Indices into `base_models` of the models whose evidence is shown, first one's
        spans first; each >= 0 and < the number of base models (checked in `fit`). None:
        every base model, in order.
    seed : int, default 0
        Seeds the inner fold split and the random negative sample (not the base models,
        which take their own); a non-negative integer.
    """

    params_model: ClassVar[type[BaseModel]]  # set below, once the params model is built

    def __init__(
        self,
        *,
        base_models: Sequence[Mapping[str, Any]] = DEFAULT_BASES,
        inner_folds: int = 5,
        hard_negatives: int = 100,
        random_negatives: int = 20,
        regularization: float = 1.0,
        evidence_order: Sequence[int] | None = None,
        seed: int = 0,
    ) -> None:
        self.base_models = [dict(spec) for spec in base_models]
        self.inner_folds = inner_folds
        self.hard_negatives = hard_negatives
        self.random_negatives = random_negatives
        self.regularization = regularization
        self.evidence_order = None if evidence_order is None else list(evidence_order)
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
        """`validation` and `groups` go to the base models' final fits (`groups` also to
        their fold fits); the re-ranker learns from out-of-fold features of `texts`."""
        check_params(self, self.params_model)
        check_fit_input(texts, Y, labels, groups, validation)
        specs = self._specs()
        if self.evidence_order is not None and not set(self.evidence_order) <= set(
            range(len(specs))
        ):
            raise ValueError(
                f"evidence_order {self.evidence_order} names no base model of {len(specs)}"
            )
        family = family_index([code_group(code) for code in labels.codes_])
        gold = sp.csr_matrix(Y, dtype=bool)
        folds = fold_splits(len(texts), folds=self.inner_folds, seed=self.seed)
        # A model that fits folds gives its final fit as one more fold, of every row: the
        # model `fit` would give (see `FitsFolds`), reusing what its folds share (TF-IDF's
        # vectorizer, the matcher's terms) instead of building it again.
        by_folds = [isinstance(spec_model(spec), FitsFolds) for spec in specs]
        every_row = (np.arange(len(texts)), np.empty(0, np.int64))
        per_base = [
            self._fold_models(
                spec, texts, Y, labels, [*folds, every_row] if final else folds, groups
            )
            for spec, final in zip(specs, by_folds, strict=True)
        ]
        pairs = []
        for _, held_rows in folds:
            fold_bases = [next(models) for models in per_base]
            held_texts = [texts[i] for i in held_rows]
            pairs.append(self._training_pairs(fold_bases, family, held_texts, gold[held_rows]))
            del fold_bases  # free this fold's models before the next fold's are fitted
        X, y, weights, columns = (np.concatenate(part) for part in zip(*pairs, strict=True))
        bases = [
            next(models)
            if final
            else spec_model(spec).fit(texts, Y, labels=labels, validation=validation, groups=groups)
            for spec, final, models in zip(specs, by_folds, per_base, strict=True)
        ]
        del per_base  # the fold generators hold the training features until they are freed
        names = feature_names(bases)
        columns_by_system = labels.system_columns()
        rerankers = {
            system: self._fit_reranker(X[rows], y[rows], weights[rows], names)
            for system, system_cols in columns_by_system.items()
            for rows in [np.isin(columns, system_cols)]
        }
        # Learned state is assigned last, so a failed refit leaves the old fit whole.
        self.bases_ = bases
        self.family_ = family
        self.feature_names_ = names
        self.rerankers_ = rerankers
        self.system_columns_ = columns_by_system
        self.labels_ = list(labels.codes_)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Pairs are scored one feature column at a time (the re-rankers are linear): no
        (notes, labels, features) array is built, and no training-only hard negatives."""
        bases, rerankers = self._fitted()
        n_labels = len(self.labels_)
        spread = LabelRerankers.spread(rerankers, self.system_columns_, n_labels)
        probs = np.empty((len(texts), n_labels), dtype=np.float32)
        for rows in self._note_blocks(len(texts)):
            columns = self._feature_columns(bases, [texts[i] for i in rows])
            probs[rows] = spread.predict_proba(columns, len(rows))
        return probs

    def evidence(
        self, text: str, label_indices: Sequence[int], top_n: int = 3
    ) -> list[list[EvidenceSpan]]:
        """Per label: every span of the first explaining base model in `evidence_order`,
        then the others' spans at other places, up to `top_n` in all."""
        return self.evidence_batch([text], [label_indices], top_n)[0]

    def evidence_batch(
        self, texts: Sequence[str], label_indices: Sequence[Sequence[int]], top_n: int = 3
    ) -> list[list[list[EvidenceSpan]]]:
        """`evidence` of each note, each base model explaining a block of notes at once: the
        blocks `predict_proba` gives them, so they find what they computed for those texts;
        a model is asked only for labels the models before it left short of `top_n` spans."""
        bases, _ = self._fitted()
        order = range(len(bases)) if self.evidence_order is None else self.evidence_order
        ordered = [bases[i] for i in order]
        explaining = [model for model in ordered if isinstance(model, ExplainsPredictions)]
        if not explaining:
            return [[[] for _ in labels] for labels in label_indices]
        if len(texts) != len(label_indices):
            raise ValueError(f"{len(texts)} texts but {len(label_indices)} label lists")
        merged: list[list[list[EvidenceSpan]]] = []
        for rows in self._note_blocks(len(texts)):
            block_texts = [texts[i] for i in rows]
            block_labels = [label_indices[i] for i in rows]
            merged += _explained_in_order(explaining, block_texts, block_labels, top_n)
        return merged

    def save(self, path: Path) -> None:
        bases, rerankers = self._fitted()
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / PARAMS_FILE, {"params": self.get_params()}, FORMAT_VERSION)
        for k, base in enumerate(bases):
            base.save(path / BASE_DIR.format(k))
        state = {
            "labels": self.labels_,
            "base_models": [spec.name for spec in self._specs()],
            "feature_names": self.feature_names_,
            "systems": sorted(rerankers),
        }
        write_json(path / STATE_FILE, state, FORMAT_VERSION)
        arrays = {"family": self.family_}
        for system, reranker in rerankers.items():
            arrays |= {f"reranker.{system}.{name}": a for name, a in reranker.as_arrays().items()}
        write_arrays(path / ARRAYS_FILE, arrays, FORMAT_VERSION)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Rebuilds the stack and its base models from JSON and arrays: no saved code runs."""
        model = cls(**read_json(path / PARAMS_FILE, FORMAT_VERSION)["params"])
        state = read_json(path / STATE_FILE, FORMAT_VERSION)
        arrays = read_arrays(path / ARRAYS_FILE, FORMAT_VERSION)
        model.bases_ = [
            registered_model(name).load(path / BASE_DIR.format(k))
            for k, name in enumerate(state["base_models"])
        ]
        model.family_ = arrays["family"]
        model.feature_names_ = state["feature_names"]
        model.rerankers_ = {
            system: Reranker.from_arrays(_prefixed(arrays, f"reranker.{system}."))
            for system in state["systems"]
        }
        model.labels_ = state["labels"]
        model.system_columns_ = system_columns(model.labels_)
        return model

    def _note_blocks(self, n_notes: int) -> list[np.ndarray]:
        """The blocks of notes prediction (and evidence, the same) works on at once."""
        return note_blocks(n_notes, len(self.labels_) * len(self.feature_names_), FEATURE_BUDGET)

    def codes_on_gpu(self) -> bool:
        bases, _ = self._fitted()
        return any(isinstance(base, CodesOnGpu) and base.codes_on_gpu() for base in bases)

    def known_words(self) -> list[str]:
        """The words of the base models that read notes through a vocabulary."""
        bases, _ = self._fitted()
        words = (
            word for base in bases if isinstance(base, KnowsWords) for word in base.known_words()
        )
        return list(dict.fromkeys(words))

    def for_batch_coding(self) -> Self:
        """A copy whose base models are their batch-coding copies where they have one."""
        bases, _ = self._fitted()
        fast = copy.copy(self)
        fast.bases_ = [
            base.for_batch_coding() if isinstance(base, CopiesForBatchCoding) else base
            for base in bases
        ]
        return fast

    def _specs(self) -> list[ModelSpec]:
        return [ModelSpec.model_validate(spec) for spec in self.base_models]

    def _fold_models(
        self,
        spec: ModelSpec,
        texts: Sequence[str],
        Y: LabelMatrix,
        labels: LabelSpace,
        folds: Folds,
        groups: Sequence[str] | None,
    ) -> Iterator[CodingModel]:
        """Base model `spec` fitted once per fold, on that fold's fit rows (lazily)."""
        model = spec_model(spec)
        if isinstance(model, FitsFolds):
            yield from model.fold_models(texts, Y, labels=labels, folds=folds, groups=groups)
            return
        for k, (fit_rows, _) in enumerate(folds):
            logger.info(
                "stack inner fold %d/%d: fit %s on %d notes",
                k + 1,
                len(folds),
                spec.name,
                len(fit_rows),
            )
            yield spec_model(spec).fit(
                [texts[i] for i in fit_rows],
                Y[fit_rows],
                labels=labels,
                groups=None if groups is None else [groups[i] for i in fit_rows],
            )

    def _feature_columns(
        self, bases: Sequence[CodingModel], texts: Sequence[str]
    ) -> Iterator[np.ndarray]:
        """The pair features of `_pair_features`, one column at a time, in feature order."""
        for base in bases:
            if isinstance(base, DescribesPairColumns):
                yield from base.pair_feature_columns(texts)
            elif isinstance(base, DescribesPairs):
                yield from np.moveaxis(base.pair_features(texts), -1, 0)
            else:
                yield from score_feature_columns(base.predict_proba(texts), self.family_)

    def _pair_features(
        self, bases: Sequence[CodingModel], family: np.ndarray, texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(notes, labels, features) pair features of every base model side by side, and
        (notes, labels) True where some base model makes the pair a hard negative."""
        parts, candidates = [], np.zeros((len(texts), len(family)), bool)
        for base in bases:
            if isinstance(base, DescribesPairs):
                features = base.pair_features(texts)
                candidates |= base.candidates(features)
            else:
                scores = base.predict_proba(texts)
                features = score_features(scores, family)
                best = np.argsort(-scores, axis=1, kind="stable")[:, : self.hard_negatives]
                np.put_along_axis(candidates, best, True, axis=1)
            parts.append(features)
        return np.concatenate(parts, axis=-1), candidates

    def _training_pairs(
        self,
        bases: Sequence[CodingModel],
        family: np.ndarray,
        texts: Sequence[str],
        gold: sp.csr_matrix,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Feature rows, gold, weights and label index of the pairs the re-ranker learns
        from: `texts` are one held-out fold, `bases` fitted on the other folds."""
        rng = np.random.default_rng(self.seed)
        X_parts, y_parts, weight_parts, label_parts = [], [], [], []
        features_per_note = len(family) * len(feature_names(bases))
        for rows in note_blocks(len(texts), features_per_note, FEATURE_BUDGET):
            gold_rows = gold[rows].toarray()
            features, hard = self._pair_features(bases, family, [texts[i] for i in rows])
            for k in range(len(rows)):
                chosen, weights = self._pairs_of_note(hard[k] | gold_rows[k], rng)
                X_parts.append(features[k, chosen])
                y_parts.append(gold_rows[k, chosen])
                weight_parts.append(weights)
                label_parts.append(chosen)
        return (
            np.vstack(X_parts),
            np.concatenate(y_parts),
            np.concatenate(weight_parts),
            np.concatenate(label_parts),
        )

    def _pairs_of_note(
        self, hard: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Label indices to learn from for one note (its hard pairs and a sample of the
        rest), and each pair's weight."""
        rest = np.flatnonzero(~hard)
        sampled = rng.choice(rest, size=min(self.random_negatives, rest.size), replace=False)
        chosen = np.concatenate([np.flatnonzero(hard), sampled])
        weights = np.ones(chosen.size, np.float32)
        if sampled.size:
            weights[-sampled.size :] = rest.size / sampled.size
        return chosen, weights

    def _fit_reranker(
        self, X: np.ndarray, y: np.ndarray, weights: np.ndarray, names: list[str]
    ) -> Reranker:
        if y.all() or not y.any():  # no negative (or no positive) pair: nothing to learn
            logits = [k for k, name in enumerate(names) if name.endswith(".logit")]
            return Reranker.passthrough(len(names), logits[0] if logits else 0)
        return Reranker.fit(X, y, weights, regularization=self.regularization)

    def _fitted(self) -> tuple[list[CodingModel], dict[str, Reranker]]:
        if not hasattr(self, "rerankers_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet: call fit(texts, Y, labels=...) first"
            )
        return self.bases_, self.rerankers_


def _explained_in_order(
    models: Sequence[ExplainsPredictions],
    texts: Sequence[str],
    label_indices: Sequence[Sequence[int]],
    top_n: int,
) -> list[list[list[EvidenceSpan]]]:
    """Per note and label, `_merged_spans` of the models' spans, in order. A model is asked
    only for the labels the models before it left short of `top_n` spans: the spans of
    the others would be cut."""
    first, *others = models
    # A note's list is copied since its entries are replaced below; a label's spans are
    # never changed in place, so they are kept as the model gave them.
    merged = [list(note) for note in explain_notes(first, texts, label_indices, top_n)]
    for model in others:
        wanting = [[k for k, spans in enumerate(note) if len(spans) < top_n] for note in merged]
        asked = [
            [labels[k] for k in want] for labels, want in zip(label_indices, wanting, strict=True)
        ]
        answers = explain_notes(model, texts, asked, top_n)
        for note, want, answer in zip(merged, wanting, answers, strict=True):
            for k, spans in zip(want, answer, strict=True):
                # Most codes only one model explains: nothing to merge.
                note[k] = _merged_spans([note[k], spans], top_n) if note[k] else spans[:top_n]
    return merged


def _merged_spans(spans_of_models: Sequence[list[EvidenceSpan]], top_n: int) -> list[EvidenceSpan]:
    """The first model's spans, then the others' at other places, up to `top_n` in all
    (the first model's are kept whole)."""
    first, *others = spans_of_models
    seen = {(span.start, span.end) for span in first}
    extra = []
    for spans in others:
        for span in spans:
            if (span.start, span.end) not in seen:
                seen.add((span.start, span.end))
                extra.append(span)
    return (list(first) + extra)[: max(top_n, len(first))]


def feature_names(bases: Sequence[CodingModel]) -> list[str]:
    """`base{k}.{feature}` for each base model's pair features, in order."""
    names = []
    for k, base in enumerate(bases):
        own = base.pair_feature_names if isinstance(base, DescribesPairs) else SCORE_FEATURES
        names += [f"base{k}.{name}" for name in own]
    return names


class TfidfLexiconModel(StackModel):
    """The preset `stack([tfidf, matcher])`: TF-IDF scores re-ranked with how fully the
    code's description or inclusion terms, and its family's, appear in one sentence.

    `tfidf` holds the TF-IDF base model's hyperparameters; the others are the stack's.
    Evidence shows the code's term words first, then TF-IDF's strongest n-grams.

    Parameters
    ----------
    tfidf : mapping or None, default None
        Hyperparameters of the TF-IDF base model (see `TfidfModel`; checked by
        `TfidfParams`); None or {}: its defaults. The matcher runs on its defaults.
    inner_folds : int, default 5
        Folds of the training notes for the re-ranker's out-of-fold features; >= 2 (see
        `StackModel`).
    hard_negatives : int, default 100
        Per note, TF-IDF's this many highest-scored codes (and the matcher's candidate
        pairs) join the gold codes as re-ranker training pairs; >= 0.
    random_negatives : int, default 20
        Per note, this many other negative pairs are sampled, weighted to stand for all of
        them; >= 0.
    regularization : float, default 1.0
        The re-rankers' logistic regression C: smaller is stronger; > 0.
    seed : int, default 0
        Seeds the inner fold split and the negative sample; a non-negative integer.
    """

    def __init__(
        self,
        *,
        tfidf: Mapping[str, Any] | None = None,
        inner_folds: int = 5,
        hard_negatives: int = 100,
        random_negatives: int = 20,
        regularization: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.tfidf = dict(tfidf or {})
        super().__init__(
            base_models=[{"name": "tfidf", "params": self.tfidf}, {"name": "matcher"}],
            inner_folds=inner_folds,
            hard_negatives=hard_negatives,
            random_negatives=random_negatives,
            regularization=regularization,
            evidence_order=[1, 0],
            seed=seed,
        )


NotNegative = Annotated[int, Field(ge=0)]
STACK_FIELDS: dict[str, Any] = {
    "inner_folds": Annotated[int, Field(ge=2)],
    "hard_negatives": NotNegative,
    "random_negatives": NotNegative,
    "regularization": Annotated[float, Field(gt=0)],
}
StackParams = constructor_params_model(
    StackModel,
    "StackParams",
    base_models=Annotated[list[ModelSpec], Field(min_length=1)],
    evidence_order=list[NotNegative] | None,
    **STACK_FIELDS,
)


TfidfLexiconParams = constructor_params_model(
    TfidfLexiconModel, "TfidfLexiconParams", tfidf=TfidfParams | None, **STACK_FIELDS
)
StackModel.params_model = StackParams
TfidfLexiconModel.params_model = TfidfLexiconParams


def _prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose names start with `prefix`, named without it."""
    return {name[len(prefix) :]: a for name, a in arrays.items() if name.startswith(prefix)}
