"""SpanIndex and DisjointSpans answer as a scan of every span would."""

from __future__ import annotations

import random

from autocode.knowledge.span_index import DisjointSpans, SpanIndex


def _random_spans(rng: random.Random, n: int) -> list[tuple[int, int, int]]:
    spans = []
    for k in range(n):
        start = rng.randrange(0, 500)
        spans.append((start, start + rng.randrange(1, 40), k))
    return spans


def test_the_enclosing_spans_are_those_a_scan_finds() -> None:
    rng = random.Random(0)
    for _ in range(50):
        spans = _random_spans(rng, rng.randrange(0, 60))
        index = SpanIndex(spans)
        for _ in range(40):
            start = rng.randrange(0, 520)
            end = start + rng.randrange(1, 30)
            expected = {k for a, b, k in spans if a <= start and end <= b}
            assert set(index.enclosing(start, end)) == expected
            starting = any(start <= a < end for a, _, _ in spans)
            assert index.any_starts_within(start, end) == starting


def test_a_span_encloses_itself_and_an_empty_index_nothing() -> None:
    index = SpanIndex([(10, 20, "fever"), (5, 30, "dengue fever"), (21, 25, "cough")])
    assert set(index.enclosing(10, 20)) == {"fever", "dengue fever"}
    assert set(index.enclosing(21, 26)) == {"dengue fever"}
    assert list(SpanIndex(()).enclosing(0, 1)) == []
    assert not SpanIndex(()).any_starts_within(0, 100)


def test_disjoint_spans_overlap_as_a_scan_says() -> None:
    rng = random.Random(1)
    for _ in range(50):
        disjoint, kept = DisjointSpans(), []
        for _ in range(80):
            start = rng.randrange(0, 300)
            end = start + rng.randrange(1, 20)
            scanned = any(a < end and start < b for a, b in kept)
            assert disjoint.overlaps(start, end) == scanned
            if not scanned:
                disjoint.add(start, end)
                kept.append((start, end))


def test_touching_spans_do_not_overlap() -> None:
    disjoint = DisjointSpans()
    disjoint.add(10, 20)
    assert not disjoint.overlaps(20, 25) and not disjoint.overlaps(5, 10)
    assert disjoint.overlaps(19, 21) and disjoint.overlaps(0, 11) and disjoint.overlaps(12, 13)
