"""Where in the note a prediction came from: spans of the n-grams that drove it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from itertools import accumulate

import numpy as np


@dataclass(frozen=True)
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
    per token) and only the n-grams asked for are looked up: a note's evidence needs a few
    dozen, not every n-gram of the text listed.
    """

    def __init__(self, text: str, token_pattern: str) -> None:
        # "(?u)" is already the default of str patterns, and a flag may not follow "(".
        grouped = _split_pattern(token_pattern.removeprefix("(?u)"))
        parts = grouped.split(text)  # between, token, between, token, ..., between
        # Tokens hold no space, so " a b " occurs in the joined tokens exactly where the
        # bigram "a b" does: one C-level search instead of a loop over tokens.
        self._joined = " " + " ".join(token.lower() for token in parts[1::2]) + " "
        self._part_ends = list(accumulate(map(len, parts)))
        self._found: dict[str, tuple[int, int] | None] = {}  # labels share n-grams

    def first(self, ngram: str) -> tuple[int, int] | None:
        """Character span of the n-gram's first occurrence; None if it does not occur."""
        if ngram not in self._found:
            self._found[ngram] = self._search(ngram)
        return self._found[ngram]

    def _search(self, ngram: str) -> tuple[int, int] | None:
        at = self._joined.find(f" {ngram} ")
        if at < 0:
            return None
        first = self._joined.count(" ", 0, at)  # tokens before it
        last = first + ngram.count(" ")
        # Token i is part 2i + 1: it starts where part 2i ends.
        return self._part_ends[2 * first], self._part_ends[2 * last + 1]


@cache
def _split_pattern(token_pattern: str) -> re.Pattern[str]:
    return re.compile(f"({token_pattern})")


def top_rows(values: np.ndarray, top_n: int) -> np.ndarray:
    """`np.argsort(-values, axis=0, kind="stable")[:top_n]`: per column, the rows of its
    `top_n` largest values, ties in row order; without sorting whole columns."""
    n_rows, n_columns = values.shape
    if n_rows <= top_n:
        return np.argsort(-values, axis=0, kind="stable")
    # Every column has at least `top_n` rows at or above its `top_n`-th largest value.
    threshold = -np.partition(-values, top_n - 1, axis=0)[top_n - 1]
    rows, columns = np.nonzero(values >= threshold)
    order = np.lexsort((rows, -values[rows, columns], columns))
    rows, columns = rows[order], columns[order]
    rank = np.arange(rows.size) - np.searchsorted(columns, np.arange(n_columns))[columns]
    kept = rank < top_n
    best = np.empty((top_n, n_columns), np.int64)
    best[rank[kept], columns[kept]] = rows[kept]
    return best
