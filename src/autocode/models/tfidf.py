"""The TF-IDF baseline: word (and optional char) n-grams, one joint linear layer."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer

from autocode.labels import LabelSpace
from autocode.models.base import (
    Folds,
    LabelMatrix,
    NotFittedError,
    check_fit_input,
    constructor_params,
)
from autocode.models.evidence import (
    EvidenceSpan,
    NgramLocator,
    RecentBatches,
    StrongestFeatures,
    top_weighted_features,
)
from autocode.models.linear import LinearSettings, LinearWeights, train_linear
from autocode.models.params import check_params, constructor_params_model
from autocode.models.pruning import PrunedWeights, prune_weights
from autocode.models.saved import read_arrays, read_json, write_arrays, write_json

logger = logging.getLogger(__name__)

PARAMS_FILE = "params.json"
LABELS_FILE = "label_codes.json"  # the codes of the predicted columns
VECTORIZERS_FILE = "vectorizers.json"  # settings and vocabulary of each vectorizer
IDF_FILE = "idf.npz"  # each vectorizer's idf, in vocabulary order
WEIGHTS_FILE = "weights.npz"  # dense weights (a model fitted without pruning)
PRUNED_WEIGHTS_FILE = "pruned_weights.npz"  # levels and kept departures, compressed
# Each label's strongest features (derived from the weights; evidence reads them): saved so
# that a loaded model's first evidence does not rank them again (absent: ranked on first use).
RANKED_FILE = "ranked_features.npz"
# Of every file above; 2: the model saves its labels; 3: pruned weights, in their own
# file (a version 2 model, always dense, still loads); 4: `single_characters` among the
# params (an older autocode would fail on it: the version refuses it in one line).
FORMAT_VERSION = 4
READABLE_VERSIONS = (2, 3, 4)
# The vectorizer settings that shape `transform`. min_df, max_df and max_features only
# choose the vocabulary at fit time, and the vocabulary is saved itself.
TRANSFORM_SETTINGS = (
    "input",
    "encoding",
    "decode_error",
    "strip_accents",
    "lowercase",
    "analyzer",
    "token_pattern",
    "ngram_range",
    "stop_words",
    "binary",
    "norm",
    "use_idf",
    "smooth_idf",
    "sublinear_tf",
)
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
# With `single_characters`: "type 2", "stage 3", "hepatitis C" keep their one character.
SINGLE_CHARACTER_TOKEN_PATTERN = r"(?u)\b\w+\b"


def _vectorizer_settings(vectorizer: TfidfVectorizer) -> dict[str, Any]:
    """What `transform` needs of a fitted vectorizer, as JSON: settings, dtype, and the
    vocabulary's terms in column order (any fitted vocabulary, pruned ones included)."""
    params = vectorizer.get_params()
    for name in ("preprocessor", "tokenizer"):
        if params[name] is not None:  # a callable cannot be saved as data
            raise ValueError(f"cannot save a vectorizer with a custom {name}: {params[name]!r}")
    terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    if [vectorizer.vocabulary_[term] for term in terms] != list(range(len(terms))):
        raise ValueError("vectorizer vocabulary columns are not 0..n-1; cannot save it")
    return {
        "settings": {name: params[name] for name in TRANSFORM_SETTINGS},
        "dtype": np.dtype(params["dtype"]).name,
        "terms": terms,
    }


def _vectorizer_from_settings(saved: dict[str, Any], idf: np.ndarray) -> TfidfVectorizer:
    settings = {**saved["settings"], "ngram_range": tuple(saved["settings"]["ngram_range"])}
    vectorizer = TfidfVectorizer(
        **settings, dtype=np.dtype(saved["dtype"]).type, vocabulary=saved["terms"]
    )
    # scikit-learn lets a fixed vocabulary take a given idf: no refit, same transform.
    vectorizer.idf_ = idf
    return vectorizer


class TfidfModel:
    """TF-IDF features + a multi-label linear model trained jointly over all labels.

    `validation` is accepted for the shared contract but unused: epochs are a
    hyperparameter, and calibration/thresholds are tuned on validation outside. The model
    learns from words alone: of `labels` it keeps only the codes (`labels_`).

    The saved vocabulary is made of n-grams of the training notes, so it can carry
    fragments of them (`bp 154`). `min_df` keeps n-grams of at least that many notes;
    `min_patients` also keeps only those found in the notes of at least that many
    distinct patients (the `groups` given to `fit`), so that one patient's details
    repeated across their notes stay out of the model.

    Parameters
    ----------
    word_ngram_max : int, default 2
        Word n-grams of 1 to this many words (tokens of 2+ word characters) are the
        features; >= 1. Evidence spans are word n-grams of the same lengths.
    single_characters : bool, default False
        Words of one character are tokens too: "type 2" and "type 1" diabetes, "stage 3"
        and "stage 4" kidney disease, "hepatitis B" and "hepatitis C" are told apart.
    char_ngram_range : tuple of two ints or None, default None
        (min, max) lengths of character n-grams taken within word boundaries, added as
        a second feature block; min <= max. None: words only.
    min_df : int, default 2
        Keeps only n-grams found in at least this many training notes (in each feature
        block); >= 1.
    max_features : int or None, default 200_000
        At most this many n-grams per feature block, the most frequent in the training
        notes; >= 1. None: no cap.
    min_patients : int or None, default None
        Keeps only n-grams found in the notes of at least this many distinct patients
        (`groups` of `fit`; without groups, notes); >= 1. None: no patient filter.
    sublinear_tf : bool, default True
        Term frequency as 1 + log(tf) instead of the raw count.
    epochs : int, default 5
        Passes of the linear layer over the training notes; >= 1.
    batch_size : int, default 128
        Notes per minibatch (one optimiser step each); >= 1.
    learning_rate : float, default 1.0
        Base step size of the row-wise AdaGrad optimiser; > 0.
    l2 : float, default 1e-5
        L2 penalty on the weights, applied to the feature rows each minibatch touches;
        >= 0 (0: none).
    pos_weight : float, default 10.0
        Weight of a positive (note, code) entry in the binary cross-entropy relative to a
        negative one; > 0 (1: unweighted). Above 1 it favours recall of rare codes.
    sampled_negatives : int or None, default None
        Per minibatch, update only the codes positive in it plus this many sampled
        negative codes, up-weighted to keep the gradient unbiased; >= 1. None: every code
        at every step (exact, slower with many codes).
    prune_tolerance : float or None, default None
        After training, keep each feature's median weight over the codes and only the
        departures from it that moved some training note's logit by at least this much
        (|departure| × the feature's largest tf-idf value in training; see
        `models.pruning`); the rest are dropped, and the weights are held and saved
        sparse. >= 0; 0 drops only exact zeros (same scores). None: dense weights, as
        trained.
    seed : int, default 0
        Seeds the minibatch order and the negative sampling; a non-negative integer.
    """

    def __init__(
        self,
        *,
        word_ngram_max: int = 2,
        single_characters: bool = False,
        char_ngram_range: tuple[int, int] | None = None,
        min_df: int = 2,
        max_features: int | None = 200_000,
        min_patients: int | None = None,
        sublinear_tf: bool = True,
        epochs: int = 5,
        batch_size: int = 128,
        learning_rate: float = 1.0,
        l2: float = 1e-5,
        pos_weight: float = 10.0,
        sampled_negatives: int | None = None,
        prune_tolerance: float | None = None,
        seed: int = 0,
    ) -> None:
        self.word_ngram_max = word_ngram_max
        self.single_characters = single_characters
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.min_patients = min_patients
        self.sublinear_tf = sublinear_tf
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.pos_weight = pos_weight
        self.sampled_negatives = sampled_negatives
        self.prune_tolerance = prune_tolerance
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return constructor_params(self)

    @property
    def token_pattern(self) -> str:
        """The words its n-grams are made of."""
        return SINGLE_CHARACTER_TOKEN_PATTERN if self.single_characters else TOKEN_PATTERN

    def fit(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        labels: LabelSpace,
        validation: tuple[Sequence[str], LabelMatrix] | None = None,
        groups: Sequence[str] | None = None,
    ) -> Self:
        """`groups` names each note's patient, for `min_patients`; without it (None)
        every note counts as its own patient, and `min_patients` counts notes."""
        check_params(self, TfidfParams)
        check_fit_input(texts, Y, labels, groups, validation)
        vectorizers, X = self._fit_features(texts, groups)
        weights = self._train_weights(X, sp.csr_matrix(Y))
        # Learned state is assigned last, so a failed refit leaves the old fit whole.
        return self._set_state(vectorizers, weights, labels)

    def fold_models(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        labels: LabelSpace,
        folds: Folds,
        groups: Sequence[str] | None = None,
    ) -> Iterator[TfidfModel]:
        """One model per fold whose linear layer learns from the fold's fit rows only.

        The vectorizers are fitted once, on every note of `texts`, and shared: the
        vocabulary and idf read no labels, so a held-out note's words may shape the
        features it is scored with, as they shape the matcher's idf (`MatcherModel`). No
        held-out label reaches a fold's weights, and the notes a Coder is evaluated on
        (the outer cross-fit's held-out fold, or test) are never among `texts`. This
        saves a vectorizer fit and transform per fold, a third of a fold's fit.
        """
        check_params(self, TfidfParams)
        check_fit_input(texts, Y, labels, groups)
        vectorizers, X = self._fit_features(texts, groups)
        gold = sp.csr_matrix(Y)
        for k, (fit_rows, _) in enumerate(folds):
            logger.info("tfidf fold %d/%d: fit on %d notes", k + 1, len(folds), len(fit_rows))
            weights = self._train_weights(X[fit_rows], gold[fit_rows])
            yield type(self)(**self.get_params())._set_state(vectorizers, weights, labels)

    def _fit_features(
        self, texts: Sequence[str], groups: Sequence[str] | None
    ) -> tuple[list[TfidfVectorizer], sp.csr_matrix]:
        fitted = [self._fit_vectorizer(v, texts, groups) for v in self._make_vectorizers()]
        X = sp.hstack([features for _, features in fitted], format="csr")
        return [vectorizer for vectorizer, _ in fitted], X

    def _train_weights(self, X: sp.csr_matrix, Y: sp.csr_matrix) -> LinearWeights | PrunedWeights:
        # The optimiser's settings are this model's hyperparameters of the same names.
        settings = LinearSettings(**{f.name: getattr(self, f.name) for f in fields(LinearSettings)})
        trained = train_linear(X, Y, settings)
        if self.prune_tolerance is None:
            return trained
        return prune_weights(trained, X, self.prune_tolerance)

    def _set_state(
        self,
        vectorizers: list[TfidfVectorizer],
        weights: LinearWeights | PrunedWeights,
        labels: LabelSpace,
    ) -> Self:
        self.vectorizers_ = vectorizers
        self.weights_ = weights
        self.labels_ = list(labels.codes_)
        # Evidence caches of the old vocabulary and weights.
        vars(self).pop("_word_feature_names", None)
        vars(self).pop("_word_rows", None)
        vars(self).pop("_strongest", None)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        weights = self._fitted_weights()
        if len(texts) == 0:  # scikit-learn refuses empty input; no notes, no scores
            return np.zeros((0, weights.n_labels), np.float32)
        return weights.predict_proba(self.transform(texts))

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Features of `texts`; their word n-gram rows are remembered for `evidence_batch`."""
        self._fitted_weights()
        blocks = [sp.csr_matrix(v.transform(texts)) for v in self.vectorizers_]
        self._recent_word_rows().remember(texts, blocks[0])
        return blocks[0] if len(blocks) == 1 else sp.hstack(blocks, format="csr")

    def evidence(
        self, text: str, label_indices: Sequence[int], top_n: int = 3
    ) -> list[list[EvidenceSpan]]:
        """For each label, the note's word n-grams that weigh most for it (their weight in
        the linear layer, positive ones only), located in the text.

        Ranked by weight rather than by what they add to the score (weight times tf-idf
        value): on CodiEsp-X a code's strongest words are where the coder marked it more
        often than its most frequent ones (`bench/evidence.py`)."""
        return self.evidence_batch([text], [label_indices], top_n)[0]

    def evidence_batch(
        self, texts: Sequence[str], label_indices: Sequence[Sequence[int]], top_n: int = 3
    ) -> list[list[list[EvidenceSpan]]]:
        """`evidence` of each note: the word n-gram rows are those prediction computed for
        the same texts (else the word vectorizer runs once over all of them), and every
        (note, label) pair is weighed at once."""
        weights = self._fitted_weights()
        if len(texts) == 0:
            return []
        if top_n < 1:  # nothing asked: no spans, for every label
            return [[[] for _ in labels] for labels in label_indices]
        rows = self._recent_word_rows().find(texts)
        if rows is None:
            rows = sp.csr_matrix(self.vectorizers_[0].transform(texts))
        features = self._word_features()
        notes = np.repeat(np.arange(len(texts)), [len(labels) for labels in label_indices])
        labels = np.fromiter(
            (label for note_labels in label_indices for label in note_labels), np.int64
        )
        best, values = top_weighted_features(
            rows, weights.at, notes, labels, top_n, self._strongest_features()
        )
        # Flat lists, read in step: one list each, not one per pair.
        best_flat, value_flat = best.ravel().tolist(), values.ravel().tolist()
        at = 0
        result: list[list[list[EvidenceSpan]]] = []
        for text, note_labels in zip(texts, label_indices, strict=True):
            if not note_labels:
                result.append([])
                continue
            end = at + top_n * len(note_labels)
            # A note's codes share many of their strongest n-grams: each is located once.
            wanted = set(best_flat[at:end]) - {-1}
            located = NgramLocator(text, self.token_pattern, asked=len(wanted))
            where = {name: located.first(features[name]) for name in wanted}
            result.append(_label_spans(where, best_flat[at:end], value_flat[at:end], top_n))
            at = end
        return result

    def save(self, path: Path) -> None:
        weights = self._fitted_weights()
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / PARAMS_FILE, {"params": self.get_params()}, FORMAT_VERSION)
        write_json(path / LABELS_FILE, {"labels": self.labels_}, FORMAT_VERSION)
        settings = [_vectorizer_settings(v) for v in self.vectorizers_]
        write_json(path / VECTORIZERS_FILE, {"vectorizers": settings}, FORMAT_VERSION)
        idf = {f"idf_{k}": v.idf_ for k, v in enumerate(self.vectorizers_)}
        write_arrays(path / IDF_FILE, idf, FORMAT_VERSION)
        if isinstance(weights, PrunedWeights):
            write_arrays(
                path / PRUNED_WEIGHTS_FILE, _pruned_arrays(weights), FORMAT_VERSION, compressed=True
            )
        else:
            arrays = {"coef": weights.coef, "intercept": weights.intercept}
            write_arrays(path / WEIGHTS_FILE, arrays, FORMAT_VERSION)
        ranked = self._strongest_features().as_arrays()
        write_arrays(path / RANKED_FILE, ranked, FORMAT_VERSION, compressed=True)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Rebuilds the model from JSON and arrays: loading runs no saved code."""
        params = read_json(path / PARAMS_FILE, READABLE_VERSIONS)["params"]
        if params["char_ngram_range"] is not None:
            params["char_ngram_range"] = tuple(params["char_ngram_range"])
        model = cls(**params)
        model.labels_ = read_json(path / LABELS_FILE, READABLE_VERSIONS)["labels"]
        settings = read_json(path / VECTORIZERS_FILE, READABLE_VERSIONS)["vectorizers"]
        idf = read_arrays(path / IDF_FILE, READABLE_VERSIONS)
        model.vectorizers_ = [
            _vectorizer_from_settings(saved, idf[f"idf_{k}"]) for k, saved in enumerate(settings)
        ]
        if (path / PRUNED_WEIGHTS_FILE).is_file():
            pruned = read_arrays(path / PRUNED_WEIGHTS_FILE, READABLE_VERSIONS)
            model.weights_ = _pruned_from_arrays(pruned)
        else:
            arrays = read_arrays(path / WEIGHTS_FILE, READABLE_VERSIONS)
            model.weights_ = LinearWeights(coef=arrays["coef"], intercept=arrays["intercept"])
        if (path / RANKED_FILE).is_file():
            ranked = read_arrays(path / RANKED_FILE, READABLE_VERSIONS)
            model._strongest = StrongestFeatures.from_arrays(ranked)
        return model

    def _fit_vectorizer(
        self, vectorizer: TfidfVectorizer, texts: Sequence[str], groups: Sequence[str] | None
    ) -> tuple[TfidfVectorizer, sp.csr_matrix]:
        """Fit `vectorizer` on `texts`; with `min_patients`, drop n-grams of fewer patients.

        The pruned vectorizer is refitted on the kept n-grams (a second pass over the
        texts): its idf are the same, and rows are normalised over the kept n-grams only.
        """
        X = sp.csr_matrix(vectorizer.fit_transform(texts))
        if self.min_patients is None:
            return vectorizer, X
        keep = _patient_counts(X, groups) >= self.min_patients
        if not keep.any():
            patients = len(set(groups)) if groups is not None else len(texts)
            raise ValueError(
                f"min_patients={self.min_patients} leaves no n-gram: the training notes "
                f"come from {patients} patient(s)"
            )
        kept = [str(term) for term in vectorizer.get_feature_names_out()[keep]]
        pruned = clone(vectorizer).set_params(vocabulary=kept)
        return pruned, sp.csr_matrix(pruned.fit_transform(texts))

    def _make_vectorizers(self) -> list[TfidfVectorizer]:
        vectorizers = [
            TfidfVectorizer(
                ngram_range=(1, self.word_ngram_max),
                token_pattern=self.token_pattern,
                min_df=self.min_df,
                max_features=self.max_features,
                sublinear_tf=self.sublinear_tf,
                dtype=np.float32,
            )
        ]
        if self.char_ngram_range is not None:
            vectorizers.append(
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(self.char_ngram_range[0], self.char_ngram_range[1]),
                    min_df=self.min_df,
                    max_features=self.max_features,
                    sublinear_tf=self.sublinear_tf,
                    dtype=np.float32,
                )
            )
        return vectorizers

    def known_words(self) -> list[str]:
        """The single words of the word vectorizer's vocabulary."""
        return [name for name in self._word_features() if " " not in name]

    def _recent_word_rows(self) -> RecentBatches[sp.csr_matrix]:
        recent: RecentBatches[sp.csr_matrix] = vars(self).setdefault("_word_rows", RecentBatches())
        return recent

    def _word_features(self) -> list[str]:
        # Building the name list costs a pass over the vocabulary: once per model.
        if getattr(self, "_word_feature_names", None) is None:
            names = self.vectorizers_[0].get_feature_names_out()
            self._word_feature_names = [str(name) for name in names]
        return self._word_feature_names

    def _strongest_features(self) -> StrongestFeatures:
        # Ranking every label's weights costs a pass over them: once per fitted model.
        weights = self._fitted_weights()
        if getattr(self, "_strongest", None) is None:
            # Evidence reads the word n-grams only (the first block of features).
            words = len(self.vectorizers_[0].vocabulary_)
            self._strongest = StrongestFeatures.of_weights(weights, n_features=words)
        return self._strongest

    def _fitted_weights(self) -> LinearWeights | PrunedWeights:
        if not hasattr(self, "weights_"):
            raise NotFittedError("TfidfModel is not fitted yet: call fit(texts, Y) first")
        return self.weights_


AtLeastOne = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0)]
TfidfParams = constructor_params_model(
    TfidfModel,
    "TfidfParams",
    word_ngram_max=AtLeastOne,
    min_df=AtLeastOne,
    max_features=AtLeastOne | None,
    min_patients=AtLeastOne | None,
    epochs=AtLeastOne,
    batch_size=AtLeastOne,
    learning_rate=Positive,
    l2=Annotated[float, Field(ge=0)],
    pos_weight=Positive,
    sampled_negatives=AtLeastOne | None,
    prune_tolerance=Annotated[float, Field(ge=0)] | None,
)


def _label_spans(
    where: dict[int, tuple[int, int] | None],
    features: list[int],
    weights: list[float],
    top_n: int,
) -> list[list[EvidenceSpan]]:
    """One note's spans per label, from its labels' `top_n` strongest features each (in
    order): where each feature's n-gram is in the note. A feature of -1 (past the label's
    positive weights) or an n-gram not found gives no span."""
    spans = [
        None if (place := where.get(feature)) is None else EvidenceSpan(*place, weight)
        for feature, weight in zip(features, weights, strict=True)
    ]
    return [
        [span for span in spans[first : first + top_n] if span is not None]
        for first in range(0, len(spans), top_n)
    ]


def _pruned_arrays(weights: PrunedWeights) -> dict[str, np.ndarray]:
    """The pruned weights as plain arrays; label indices in the smallest unsigned type
    that holds them (most labels sets fit 16 bits), which compresses best."""
    departures = weights.departures
    index_type = np.min_scalar_type(max(departures.shape[1] - 1, 0))
    return {
        "level": weights.level,
        "intercept": weights.intercept,
        "departures.shape": np.array(departures.shape, np.int64),
        "departures.data": departures.data,
        "departures.indices": departures.indices.astype(index_type),
        "departures.indptr": departures.indptr.astype(np.int64),
    }


def _pruned_from_arrays(arrays: dict[str, np.ndarray]) -> PrunedWeights:
    shape = tuple(int(n) for n in arrays["departures.shape"])
    departures = sp.csr_matrix(
        (
            arrays["departures.data"],
            arrays["departures.indices"].astype(np.int32),
            arrays["departures.indptr"],
        ),
        shape=shape,
    )
    return PrunedWeights(arrays["level"], departures, arrays["intercept"])


def _patient_counts(X: sp.csr_matrix, groups: Sequence[str] | None) -> np.ndarray:
    """Per column of X, the number of distinct groups with a note where it is non-zero."""
    present = (X != 0).astype(np.int32)
    if groups is None:
        return np.asarray(present.sum(axis=0)).ravel()
    _, group_of_note = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
    n_groups = int(group_of_note.max()) + 1 if len(group_of_note) else 0
    notes_by_group = sp.csr_matrix(
        (np.ones(len(group_of_note), np.int32), (group_of_note, np.arange(len(group_of_note)))),
        shape=(n_groups, X.shape[0]),
    )
    return np.asarray(((notes_by_group @ present) != 0).sum(axis=0)).ravel()
