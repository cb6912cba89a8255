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


def ngram_spans(text: str, token_pattern: str, max_n: int) -> dict[str, list[tuple[int, int]]]:
    """Every word n-gram of the text (as the vectorizer spells it) with its character spans."""
    tokens = [
        (match.group().lower(), match.start(), match.end())
        for match in re.finditer(token_pattern, text)
    ]
    spans: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for n in range(1, max_n + 1):
        for i in range(len(tokens) - n + 1):
            window = tokens[i : i + n]
            spans[" ".join(token for token, _, _ in window)].append((window[0][1], window[-1][2]))
    return spans
