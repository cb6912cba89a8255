"""TF-IDF scores re-ranked with the codes' own terms: the baseline that reads code names.

Stage 1 is the TF-IDF linear model over all labels. Stage 2 is a logistic regression over
(note, code) pairs (see `rerank.FEATURES`) that adds how fully the code's description or
inclusion terms, and its family's, appear in one sentence of the note. Stage 2 learns from
out-of-fold stage-1 scores of the training notes, so the scores it weighs in training look
like those it weighs at prediction time.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import joblib
import numpy as np
import scipy.sparse as sp

from autocode.codes.terms import code_group, code_terms
from autocode.models.base import LabelMatrix, NotFittedError
from autocode.models.crossfit import out_of_fold_scores
from autocode.models.evidence import Span
from autocode.models.lexicon import FULL_MATCH, CodeLexicon, TermMatches
from autocode.models.rerank import FEATURES, CodeFacts, Reranker, pair_features
from autocode.models.tfidf import TfidfModel

PARAMS_FILE = "params.json"
STAGE1_DIR = "stage1"
STATE_FILE = "lexicon_reranker.joblib"
# Pairs whose feature rows are built at once: bounds memory at any label count (~64 MB).
PAIR_BUDGET = 64 * 2**20 // (4 * len(FEATURES))
LEXICON_CANDIDATE = 0.5  # a term half-present in a sentence makes a pair worth learning from


class TfidfLexiconModel:
    """`tfidf` holds the stage-1 TfidfModel's hyperparameters.

    Each code system gets its own stage-2 weights: how much a term match means differs
    between diagnoses and procedure prefixes.

    Stage 2 trains on every positive pair, each note's `hard_negatives` best-scored
    negatives and those whose terms half-match, and `random_negatives` others per note,
    weighted to stand for all the remaining ones.
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
        self.inner_folds = inner_folds
        self.hard_negatives = hard_negatives
        self.random_negatives = random_negatives
        self.regularization = regularization
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    def fit(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        validation: tuple[Sequence[str], LabelMatrix] | None = None,
        label_codes: Sequence[str] | None = None,
    ) -> Self:
        if label_codes is None or len(label_codes) != Y.shape[1]:
            got = "none" if label_codes is None else len(label_codes)
            raise ValueError(
                f"tfidf-lexicon needs the code of each of Y's {Y.shape[1]} columns; got {got}"
            )
        if len(texts) != Y.shape[0]:
            raise ValueError(f"{len(texts)} texts but Y has {Y.shape[0]} rows")
        self._check_params()
        gold = sp.csr_matrix(Y, dtype=bool)  # sparse: MIMIC-size Y stays small
        self.label_codes_ = list(label_codes)
        self.systems_ = np.array([code.split(":", 1)[0] for code in label_codes])
        self._build_code_knowledge(texts, gold)
        scores = out_of_fold_scores(
            lambda: TfidfModel(**self.tfidf), texts, Y, folds=self.inner_folds, seed=self.seed
        )
        X, y, weights, labels = self._training_pairs(texts, scores, gold)
        self.rerankers_ = {}
        for system in sorted(set(self.systems_)):
            rows = self.systems_[labels] == system
            self.rerankers_[system] = (
                Reranker.fit(X[rows], y[rows], weights[rows], regularization=self.regularization)
                if len(set(y[rows].tolist())) == 2
                else Reranker.stage1_only()
            )
        self.stage1_ = TfidfModel(**self.tfidf).fit(texts, Y)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        stage1, rerankers = self._fitted()
        scores = stage1.predict_proba(texts)
        probs = np.empty_like(scores, dtype=np.float32)
        for rows in self._chunks(len(texts)):
            features = self._features([texts[i] for i in rows], scores[rows])
            for system, reranker in rerankers.items():
                columns = np.flatnonzero(self.systems_ == system)
                probs[np.ix_(rows, columns)] = reranker.predict_proba(features[:, columns])
        return probs

    def evidence(self, text: str, label_indices: Sequence[int], top_n: int = 3) -> list[list[Span]]:
        """The words of the code's best-matching term, then stage 1's strongest n-grams."""
        stage1, _ = self._fitted()
        from_words = stage1.evidence(text, label_indices, top_n)
        from_terms = self.lexicon_.spans(text, label_indices)
        result = []
        for term_hits, word_spans in zip(from_terms, from_words, strict=True):
            term_spans = [
                Span(start, end, text[start:end].lower(), 1.0) for start, end in term_hits
            ]
            seen = {(s.start, s.end) for s in term_spans}
            extra = [s for s in word_spans if (s.start, s.end) not in seen]
            result.append((term_spans + extra)[: max(top_n, len(term_spans))])
        return result

    def save(self, path: Path) -> None:
        stage1, rerankers = self._fitted()
        path.mkdir(parents=True, exist_ok=True)
        (path / PARAMS_FILE).write_text(json.dumps(self.get_params()), encoding="utf-8")
        stage1.save(path / STAGE1_DIR)
        state = {
            "label_codes": self.label_codes_,
            "lexicon": self.lexicon_,
            "group_of_label": self.group_of_label_,
            "facts": self.facts_.as_arrays(),
            "rerankers": {system: vars(r) for system, r in rerankers.items()},
        }
        joblib.dump(state, path / STATE_FILE)

    @classmethod
    def load(cls, path: Path) -> Self:
        model = cls(**json.loads((path / PARAMS_FILE).read_text(encoding="utf-8")))
        model.stage1_ = TfidfModel.load(path / STAGE1_DIR)
        state = joblib.load(path / STATE_FILE)
        model.label_codes_ = state["label_codes"]
        model.systems_ = np.array([code.split(":", 1)[0] for code in model.label_codes_])
        model.lexicon_ = state["lexicon"]
        model.group_of_label_ = state["group_of_label"]
        model.facts_ = CodeFacts(**state["facts"])
        model.rerankers_ = {s: Reranker(**r) for s, r in state["rerankers"].items()}
        return model

    def _check_params(self) -> None:
        stage1_names = set(TfidfModel().get_params())
        unknown = sorted(set(self.tfidf) - stage1_names)
        if unknown:
            valid = ", ".join(sorted(stage1_names))
            raise ValueError(f"unknown tfidf setting(s) {unknown}; valid: {valid}")
        limits = {
            "inner_folds": (self.inner_folds, 2),
            "hard_negatives": (self.hard_negatives, 0),
            "random_negatives": (self.random_negatives, 0),
        }
        for name, (value, least) in limits.items():
            if not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if not self.regularization > 0:
            raise ValueError(f"regularization must be > 0, got {self.regularization!r}")

    def _build_code_knowledge(self, texts: Sequence[str], gold: sp.csr_matrix) -> None:
        """One lexicon over the labels' terms, then their groups' (rows after the labels)."""
        label_terms = [code_terms(code) for code in self.label_codes_]
        groups = [code_group(code) for code in self.label_codes_]
        group_names = sorted(set(groups))
        group_row = {name: len(label_terms) + k for k, name in enumerate(group_names)}
        self.group_of_label_ = np.array([group_row[g] for g in groups], dtype=np.int64)
        group_terms = [code_terms(name) for name in group_names]
        self.lexicon_ = CodeLexicon(label_terms + group_terms).fit(texts)
        # Chunked: one dense (notes, terms) block for 50k notes would take gigabytes.
        matched = sp.vstack(
            [
                sp.csr_matrix(self.lexicon_.match([texts[i] for i in rows]).best >= FULL_MATCH)
                for rows in self._chunks(len(texts))
            ],
            format="csr",
        )
        self.facts_ = CodeFacts.build(
            self.label_codes_, groups, label_terms, gold, matched[:, : len(label_terms)]
        )

    def _features(
        self, texts: Sequence[str], scores: np.ndarray, training_gold: np.ndarray | None = None
    ) -> np.ndarray:
        matches = self.lexicon_.match(texts)
        n_labels = len(self.label_codes_)
        own = _columns(matches, np.arange(n_labels))
        group = _columns(matches, self.group_of_label_)
        return pair_features(scores, own, group, self.facts_, training_gold=training_gold)

    def _training_pairs(
        self, texts: Sequence[str], scores: np.ndarray, gold: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Feature rows, gold, weights and label index of the pairs stage 2 learns from."""
        rng = np.random.default_rng(self.seed)
        X_parts, y_parts, weight_parts, label_parts = [], [], [], []
        for rows in self._chunks(len(texts)):
            gold_rows = gold[rows].toarray()
            features = self._features([texts[i] for i in rows], scores[rows], gold_rows)
            for k, note in enumerate(rows):
                chosen, weights = self._pairs_of_note(features[k], scores[note], gold_rows[k], rng)
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
        self, features: np.ndarray, scores: np.ndarray, gold: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Label indices to learn from for one note, and each pair's weight."""
        hard = np.zeros(len(scores), bool)
        hard[np.argsort(-scores, kind="stable")[: self.hard_negatives]] = True
        hard |= features[:, FEATURES.index("term_coverage")] >= LEXICON_CANDIDATE
        hard |= gold
        rest = np.flatnonzero(~hard)
        sampled = rng.choice(rest, size=min(self.random_negatives, rest.size), replace=False)
        chosen = np.concatenate([np.flatnonzero(hard), sampled])
        weights = np.ones(chosen.size, np.float32)
        if sampled.size:
            weights[-sampled.size :] = rest.size / sampled.size
        return chosen, weights

    def _chunks(self, n_notes: int) -> list[np.ndarray]:
        per_chunk = max(1, PAIR_BUDGET // max(1, len(self.label_codes_)))
        return [np.arange(a, min(a + per_chunk, n_notes)) for a in range(0, n_notes, per_chunk)]

    def _fitted(self) -> tuple[TfidfModel, dict[str, Reranker]]:
        if not hasattr(self, "rerankers_"):
            raise NotFittedError(
                "TfidfLexiconModel is not fitted yet: call fit(texts, Y, label_codes=...) first"
            )
        return self.stage1_, self.rerankers_


def _columns(matches: TermMatches, columns: np.ndarray) -> TermMatches:
    return TermMatches(
        best=matches.best[:, columns],
        full_sentences=matches.full_sentences[:, columns],
        best_description=matches.best_description[:, columns],
    )
