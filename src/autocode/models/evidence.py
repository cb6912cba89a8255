"""Where in the note a prediction came from: spans of the n-grams that drove it."""

from __future__ import annotations

import gc
import re
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import Any, Generic, TypeVar

import numpy as np
import scipy.sparse as sp

T = TypeVar("T")
# Batches a model remembers what it computed from; a stack predicts a batch in blocks, and a
# batch job's part of 1,000 notes is at most a few dozen blocks.
REMEMBERED_BATCHES = 32
REMEMBERED_NOTES = 4096  # larger batches (a whole archive at once) are not kept
WEIGHTS_BUDGET = 2**20  # (pair, feature) weights compared at once


@dataclass(frozen=True, slots=True)
class Span:
    """Characters [start, end) of the note that match a contributing n-gram."""

    start: int
    end: int
    feature: str
    weight: float

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "weight": round(self.weight, 6)}


class NgramLocator:
    """Where a word n-gram (as the vectorizer spells it) first occurs in one text.

    Tokens are the pattern's matches, lowercased, and an n-gram is its tokens joined by one
    space. The text is split once (tokens and the text between them, with no match object
    per token); the first position of every n-gram of a length asked for is then one dict,
    built at C speed, so each look-up is a dict look-up.
    """

    def __init__(self, text: str, token_pattern: str) -> None:
        # "(?u)" is already the default of str patterns, and a flag may not follow "(".
        grouped = _split_pattern(token_pattern.removeprefix("(?u)"))
        parts = grouped.split(text)  # between, token, between, token, ..., between
        self._tokens = [token.lower() for token in parts[1::2]]
        self._part_ends = list(accumulate(map(len, parts)))
        self._first_of_length: dict[int, dict[str, int]] = {}

    def first(self, ngram: str) -> tuple[int, int] | None:
        """Character span of the n-gram's first occurrence; None if it does not occur."""
        length = ngram.count(" ") + 1
        first = self._first_positions(length).get(ngram)
        if first is None:
            return None
        # Token i is part 2i + 1: it starts where part 2i ends.
        return self._part_ends[2 * first], self._part_ends[2 * (first + length - 1) + 1]

    def _first_positions(self, length: int) -> dict[str, int]:
        """Each n-gram of `length` tokens -> the token index where it first starts."""
        if length not in self._first_of_length:
            tokens = self._tokens
            ngrams = (
                tokens
                if length == 1
                else list(map(" ".join, zip(*(tokens[k:] for k in range(length)), strict=False)))
            )
            # Filled from the last n-gram back, so each keeps its first position.
            self._first_of_length[length] = dict(
                zip(reversed(ngrams), range(len(ngrams) - 1, -1, -1), strict=True)
            )
        return self._first_of_length[length]


@cache
def _split_pattern(token_pattern: str) -> re.Pattern[str]:
    return re.compile(f"({token_pattern})")


def top_weighted_features(
    rows: sp.csr_matrix, coef: np.ndarray, notes: np.ndarray, labels: np.ndarray, top_n: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each pair (`notes[p]`, `labels[p]`): the `top_n` features present in the note's row
    that weigh most for the label (`coef[feature, label]`), largest first, ties to the
    earlier feature of the row; as (pairs, top_n) feature columns (-1 past the row's
    features) and weights. Every pair at once, not a loop over notes.
    """
    features = np.full((len(notes), top_n), -1, np.int64)
    values = np.zeros((len(notes), top_n), coef.dtype)
    counts = np.diff(rows.indptr)[notes]
    with_features = np.flatnonzero(counts)
    # Chunks of pairs holding at most the budget of weights (one pair at least).
    ends = np.cumsum(counts[with_features])
    chunk_of = ends // WEIGHTS_BUDGET
    for chunk in np.split(with_features, np.flatnonzero(np.diff(chunk_of)) + 1):
        if chunk.size:
            _top_of_pairs(rows, coef, notes[chunk], labels[chunk], top_n, (features, values), chunk)
    return features, values


def _top_of_pairs(
    rows: sp.csr_matrix,
    coef: np.ndarray,
    notes: np.ndarray,
    labels: np.ndarray,
    top_n: int,
    out: tuple[np.ndarray, np.ndarray],
    out_rows: np.ndarray,
) -> None:
    """`top_weighted_features` of pairs whose notes all have features, into
    `out[.][out_rows]`."""
    counts = np.diff(rows.indptr)[notes]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])  # each pair's first element
    n_elements = int(counts.sum())
    # Element e of pair p is entry indptr[note] + (e - starts[p]) of the note's row.
    entries = np.repeat(rows.indptr[notes] - starts, counts) + np.arange(n_elements)
    columns = rows.indices[entries]
    weights = coef[columns, np.repeat(labels, counts)]
    order = np.arange(n_elements)
    for k in range(top_n):
        # Each pair's largest left, and the first element holding it; then it is taken out.
        largest = np.maximum.reduceat(weights, starts)
        holding = weights == np.repeat(largest, counts)
        first = np.minimum.reduceat(np.where(holding, order, n_elements), starts)
        found = largest > -np.inf
        out[0][out_rows[found], k] = columns[first[found]]
        out[1][out_rows[found], k] = largest[found]
        weights[first[found]] = -np.inf


_pauses = {"active": 0, "was_enabled": False}
_pauses_lock = threading.Lock()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the body runs (and back on as it was).

    A batch's evidence is some 100k small span objects, none in a reference cycle, that
    all outlive the loop building them: each of the collector's full passes walks them and
    every object alive, and building them set off enough passes to cost as much as the
    building itself. Nested and concurrent pauses end with the last one.
    """
    with _pauses_lock:
        if _pauses["active"] == 0:
            _pauses["was_enabled"] = gc.isenabled()
            gc.disable()
        _pauses["active"] += 1
    try:
        yield
    finally:
        with _pauses_lock:
            _pauses["active"] -= 1
            if _pauses["active"] == 0 and _pauses["was_enabled"]:
                gc.enable()


class RecentBatches(Generic[T]):
    """What a model computed from its last few batches of texts, found again by the texts.

    Evidence asked for the notes just predicted reuses what prediction derived from them
    (feature rows, term matches) instead of deriving it again. A batch is found by its
    texts, compared element by element: for the very same strings, one identity check each.
    Shared safely between threads; a copy or pickle of the model starts empty (it holds
    note text, which must not travel with a model).
    """

    def __init__(self) -> None:
        self._batches: deque[tuple[tuple[str, ...], T]] = deque(maxlen=REMEMBERED_BATCHES)
        self._lock = threading.Lock()

    def remember(self, texts: Sequence[str], value: T) -> None:
        if len(texts) <= REMEMBERED_NOTES:
            with self._lock:
                self._batches.append((tuple(texts), value))

    def find(self, texts: Sequence[str]) -> T | None:
        key = tuple(texts)
        with self._lock:
            batches = list(self._batches)
        for remembered, value in reversed(batches):
            if remembered == key:
                return value
        return None

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), ())
