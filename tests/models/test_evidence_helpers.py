"""The evidence helpers against the slow definitions they replace."""

from __future__ import annotations

import re

import numpy as np
import pytest

from autocode.models.evidence import NgramLocator, top_rows
from autocode.models.tfidf import TOKEN_PATTERN


@pytest.mark.parametrize("shape", [(1, 4), (3, 5), (4, 5), (40, 7), (500, 31)])
def test_top_rows_are_the_stable_argsort_ties_included(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(-3, 4, size=shape).astype(np.float32)  # many ties, zeros, -0.0
    values[values == 0] = -0.0
    expected = np.argsort(-values, axis=0, kind="stable")[:3]
    assert np.array_equal(top_rows(values, 3), expected)


def first_span_the_slow_way(text: str, ngram: str) -> tuple[int, int] | None:
    tokens = [(m.group().lower(), m.start(), m.end()) for m in re.finditer(TOKEN_PATTERN, text)]
    words = ngram.split(" ")
    for i in range(len(tokens) - len(words) + 1):
        window = tokens[i : i + len(words)]
        if [token for token, _, _ in window] == words:
            return window[0][1], window[-1][2]
    return None


def test_the_locator_finds_each_ngrams_first_occurrence() -> None:
    text = "İİ Gout a gout; GOUT flare.\nAcute gout flare, x acute  gout. Ölçü gout_x 2b"
    located = NgramLocator(text, TOKEN_PATTERN)
    ngrams = ["gout", "gout flare", "acute gout", "gout gout", "flare acute", "ölçü", "gout_x"]
    ngrams += ["2b", "missing", "flare x", "a gout"]
    for ngram in ngrams:
        assert located.first(ngram) == first_span_the_slow_way(text, ngram), ngram
    assert located.first("acute gout") == (28, 38)
    assert NgramLocator("", TOKEN_PATTERN).first("gout") is None
