"""TF-IDF scores re-ranked with the codes' own terms: the baseline that reads code names.

Stage 1 is the TF-IDF linear model over all labels. Stage 2 is a logistic regression over
(note, code) pairs (see `rerank.FEATURES`) that adds how fully the code's description or
inclusion terms, and its family's, appear in one sentence of the note. Stage 2 learns from
out-of-fold stage-1 scores of the training notes, so the scores it weighs in training look
like those it weighs at prediction time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from autocode.codes.systems import split_code
from autocode.codes.terms import code_group, code_terms
from autocode.models.base import LabelMatrix, NotFittedError, constructor_params
from autocode.models.crossfit import fold_splits, out_of_fold_scores
from autocode.models.evidence import Span
from autocode.models.lexicon import FULL_MATCH, CodeLexicon, TermMatches
from autocode.models.rerank import FEATURES, CodeFacts, Reranker, pair_features
from autocode.models.saved import read_arrays, read_json, write_arrays, write_json
from autocode.models.tfidf import TfidfModel

PARAMS_FILE = "params.json"
STAGE1_DIR = "stage1"
STATE_FILE = "lexicon_reranker.json"  # label codes, their terms, the re-ranked code systems
ARRAYS_FILE = "lexicon_reranker.npz"  # the lexicon's idf, code facts, re-ranker weights
FORMAT_VERSION = 1  # of every file above (stage 1 versions its own)
# Pairs whose feature rows are built at once (~64 MB of features; term matching and ranking
# add a few times that): memory stays bounded at any label count.
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
        return constructor_params(self)

    def fit(
        self,
        texts: Sequence[str],
        Y: LabelMatrix,
        *,
        validation: tuple[Sequence[str], LabelMatrix] | None = None,
        label_codes: Sequence[str] | None = None,
        groups: Sequence[str] | None = None,
    ) -> Self:
        """`validation` is unused: stage 2 learns from out-of-fold scores of `texts`.
        `groups` (each note's patient) goes to stage 1, for its `min_patients`."""
        if label_codes is None or len(label_codes) != Y.shape[1]:
            got = "none" if label_codes is None else len(label_codes)
            raise ValueError(
                f"tfidf-lexicon needs the code of each of Y's {Y.shape[1]} columns; got {got}"
            )
        if len(texts) != Y.shape[0]:
            raise ValueError(f"{len(texts)} texts but Y has {Y.shape[0]} rows")
        self._check_params()
        gold = sp.csr_matrix(Y, dtype=bool)  # sparse: MIMIC-size Y stays small
        # Learned state is assigned at the end, so a failed refit leaves the old fit whole.
        knowledge = CodeKnowledge.build(label_codes, texts)
        matched = knowledge.full_matches(texts)
        folds = fold_splits(len(texts), folds=self.inner_folds, seed=self.seed)
        scores = out_of_fold_scores(
            lambda: TfidfModel(**self.tfidf),
            texts,
            Y,
            folds=self.inner_folds,
            seed=self.seed,
            purpose="stage-2 inner",
            groups=groups,
        )
        pairs = [
            self._training_pairs(
                knowledge,
                knowledge.facts(gold[fit_rows], matched[fit_rows]),
                [texts[i] for i in held_rows],
                scores[held_rows],
                gold[held_rows],
            )
            for fit_rows, held_rows in folds
        ]
        X, y, weights, labels = (np.concatenate(part) for part in zip(*pairs, strict=True))
        rerankers = {
            system: self._fit_reranker(X[rows], y[rows], weights[rows])
            for system, columns in knowledge.system_columns.items()
            for rows in [np.isin(labels, columns)]
        }
        self.stage1_ = TfidfModel(**self.tfidf).fit(texts, Y, groups=groups)
        self.knowledge_ = knowledge
        self.facts_ = knowledge.facts(gold, matched)
        self.rerankers_ = rerankers
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        stage1, rerankers = self._fitted()
        scores = stage1.predict_proba(texts)
        probs = np.empty_like(scores, dtype=np.float32)
        for rows in _chunks(len(texts), len(self.knowledge_.codes)):
            features = self.knowledge_.features([texts[i] for i in rows], scores[rows], self.facts_)
            for system, columns in self.knowledge_.system_columns.items():
                probs[np.ix_(rows, columns)] = rerankers[system].predict_proba(features[:, columns])
        return probs

    def evidence(self, text: str, label_indices: Sequence[int], top_n: int = 3) -> list[list[Span]]:
        """The words of the code's best-matching term (weight: its coverage, at least
        `LEXICON_CANDIDATE`), then stage 1's strongest n-grams."""
        stage1, _ = self._fitted()
        from_words = stage1.evidence(text, label_indices, top_n)
        from_terms = self.knowledge_.lexicon.spans(text, label_indices)
        result = []
        for (coverage, term_hits), word_spans in zip(from_terms, from_words, strict=True):
            term_spans = (
                [Span(start, end, text[start:end].lower(), coverage) for start, end in term_hits]
                if coverage >= LEXICON_CANDIDATE
                else []
            )
            seen = {(span.start, span.end) for span in term_spans}
            extra = [span for span in word_spans if (span.start, span.end) not in seen]
            result.append((term_spans + extra)[: max(top_n, len(term_spans))])
        return result

    def save(self, path: Path) -> None:
        stage1, rerankers = self._fitted()
        path.mkdir(parents=True, exist_ok=True)
        write_json(path / PARAMS_FILE, {"params": self.get_params()}, FORMAT_VERSION)
        stage1.save(path / STAGE1_DIR)
        state = {
            "label_codes": self.knowledge_.codes,
            "terms": self.knowledge_.lexicon.terms,
            "systems": sorted(rerankers),
        }
        write_json(path / STATE_FILE, state, FORMAT_VERSION)
        arrays = {"lexicon.idf": self.knowledge_.lexicon.idf_}
        arrays |= {f"facts.{name}": a for name, a in self.facts_.as_arrays().items()}
        for system, reranker in rerankers.items():
            arrays |= {f"reranker.{system}.{name}": a for name, a in reranker.as_arrays().items()}
        write_arrays(path / ARRAYS_FILE, arrays, FORMAT_VERSION)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Rebuilds the model from JSON and arrays: loading runs no saved code."""
        model = cls(**read_json(path / PARAMS_FILE, FORMAT_VERSION)["params"])
        state = read_json(path / STATE_FILE, FORMAT_VERSION)
        arrays = read_arrays(path / ARRAYS_FILE, FORMAT_VERSION)
        lexicon = CodeLexicon(state["terms"]).set_idf(arrays["lexicon.idf"])
        model.stage1_ = TfidfModel.load(path / STAGE1_DIR)
        model.knowledge_ = CodeKnowledge.with_lexicon(state["label_codes"], lexicon)
        model.facts_ = CodeFacts(**_prefixed(arrays, "facts."))
        model.rerankers_ = {
            system: Reranker.from_arrays(_prefixed(arrays, f"reranker.{system}."))
            for system in state["systems"]
        }
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

    def _training_pairs(
        self,
        knowledge: CodeKnowledge,
        facts: CodeFacts,
        texts: Sequence[str],
        scores: np.ndarray,
        gold: sp.csr_matrix,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Feature rows, gold, weights and label index of the pairs stage 2 learns from.

        `texts` are one held-out fold, `scores` their out-of-fold stage-1 scores and `facts`
        what the other folds know of each code.
        """
        rng = np.random.default_rng(self.seed)
        X_parts, y_parts, weight_parts, label_parts = [], [], [], []
        for rows in _chunks(len(texts), len(knowledge.codes)):
            gold_rows = gold[rows].toarray()
            features = knowledge.features([texts[i] for i in rows], scores[rows], facts)
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

    def _fit_reranker(self, X: np.ndarray, y: np.ndarray, weights: np.ndarray) -> Reranker:
        if len(set(y.tolist())) < 2:  # no positive (or no negative) pair: nothing to learn
            return Reranker.stage1_only()
        return Reranker.fit(X, y, weights, regularization=self.regularization)

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

    def _fitted(self) -> tuple[TfidfModel, dict[str, Reranker]]:
        if not hasattr(self, "rerankers_"):
            raise NotFittedError(
                "TfidfLexiconModel is not fitted yet: call fit(texts, Y, label_codes=...) first"
            )
        return self.stage1_, self.rerankers_


@dataclass(frozen=True)
class CodeKnowledge:
    """What the labels' codes are called, and the lexicon that finds those names in notes.

    The lexicon holds each label's terms, then each label family's (`code_group`) terms:
    `group_rows[j]` is the lexicon row of label j's family.
    """

    codes: list[str]
    system_columns: dict[str, np.ndarray]  # code system -> its label columns
    lexicon: CodeLexicon
    group_rows: np.ndarray
    groups: list[str]

    @classmethod
    def build(cls, codes: Sequence[str], texts: Sequence[str]) -> CodeKnowledge:
        """Terms from the code sets; word weights (idf) from the training notes `texts`."""
        groups = [code_group(code) for code in codes]
        group_names = sorted(set(groups))
        terms = [code_terms(code) for code in [*codes, *group_names]]
        return cls.with_lexicon(codes, CodeLexicon(terms).fit(texts))

    @classmethod
    def with_lexicon(cls, codes: Sequence[str], lexicon: CodeLexicon) -> CodeKnowledge:
        groups = [code_group(code) for code in codes]
        row = {name: len(codes) + k for k, name in enumerate(sorted(set(groups)))}
        systems = np.array([split_code(code)[0] for code in codes])
        return cls(
            codes=list(codes),
            system_columns={s: np.flatnonzero(systems == s) for s in sorted(set(systems))},
            lexicon=lexicon,
            group_rows=np.array([row[g] for g in groups], dtype=np.int64),
            groups=groups,
        )

    def full_matches(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(notes, labels) True where a term of the label fully matched a sentence."""
        # Chunked: one dense (notes, terms) block for 50k notes would take gigabytes.
        blocks = [
            sp.csr_matrix(
                self.lexicon.match([texts[i] for i in rows]).best[:, : len(self.codes)]
                >= FULL_MATCH
            )
            for rows in _chunks(len(texts), len(self.codes))
        ]
        return (
            sp.vstack(blocks, format="csr")
            if blocks
            else sp.csr_matrix((0, len(self.codes)), dtype=bool)
        )

    def facts(self, gold: sp.csr_matrix, matched: sp.csr_matrix) -> CodeFacts:
        """Code facts counted over the training notes whose rows `gold`/`matched` hold."""
        terms = self.lexicon.terms[: len(self.codes)]
        return CodeFacts.build(self.codes, self.groups, terms, gold, matched)

    def features(self, texts: Sequence[str], scores: np.ndarray, facts: CodeFacts) -> np.ndarray:
        matches = self.lexicon.match(texts)
        own = _columns(matches, np.arange(len(self.codes)))
        group = _columns(matches, self.group_rows)
        return pair_features(scores, own, group, facts)


def _chunks(n_notes: int, n_labels: int) -> list[np.ndarray]:
    per_chunk = max(1, PAIR_BUDGET // max(1, n_labels))
    return [np.arange(a, min(a + per_chunk, n_notes)) for a in range(0, n_notes, per_chunk)]


def _prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose names start with `prefix`, named without it."""
    return {name[len(prefix) :]: a for name, a in arrays.items() if name.startswith(prefix)}


def _columns(matches: TermMatches, columns: np.ndarray) -> TermMatches:
    return TermMatches(
        best=matches.best[:, columns],
        full_sentences=matches.full_sentences[:, columns],
        best_description=matches.best_description[:, columns],
    )
