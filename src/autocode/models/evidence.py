"""Where in the note a prediction came from: spans of the n-grams that drove it."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass


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
    space. Only the n-grams asked for are looked up (a note's evidence needs a few dozen),
    not every n-gram of the text listed.
    """

    def __init__(self, text: str, token_pattern: str) -> None:
        self._tokens = [
            (match.group().lower(), match.start(), match.end())
            for match in re.finditer(token_pattern, text)
        ]
        self._positions: dict[str, list[int]] = defaultdict(list)
        for position, (token, _, _) in enumerate(self._tokens):
            self._positions[token].append(position)

    def first(self, ngram: str) -> tuple[int, int] | None:
        """Character span of the n-gram's first occurrence; None if it does not occur."""
        words = ngram.split(" ")
        for start in self._positions.get(words[0], ()):
            window = self._tokens[start : start + len(words)]
            if [token for token, _, _ in window] == words:
                return window[0][1], window[-1][2]
        return None
