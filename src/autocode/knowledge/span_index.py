"""Items with character spans in one note, found by the span they enclose.

A note's mentions are checked against each other ("is this one inside a longer name?");
one by one that is quadratic, and a 340-KB note of 40,000 mentions took minutes. Sorted
by start, the items that can enclose a span are those starting at most the longest
item's length before it: a bisection, then a few neighbours.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

Item = TypeVar("Item")


class SpanIndex(Generic[Item]):
    """`(start, end, item)` triples, `[start, end)` character spans of one text."""

    def __init__(self, spans: Iterable[tuple[int, int, Item]]) -> None:
        self._spans = sorted(spans, key=lambda span: span[0])
        self._starts = [start for start, _, _ in self._spans]
        self._longest = max((end - start for start, end, _ in self._spans), default=0)

    def enclosing(self, start: int, end: int) -> Iterator[Item]:
        """The items whose spans hold `[start, end)` (the item of that very span too)."""
        first = bisect_left(self._starts, end - self._longest)
        last = bisect_right(self._starts, start)
        for _, item_end, item in self._spans[first:last]:
            if item_end >= end:
                yield item

    def any_starts_within(self, start: int, end: int) -> bool:
        """Whether an item starts in `[start, end)`."""
        k = bisect_left(self._starts, start)
        return k < len(self._starts) and self._starts[k] < end


class DisjointSpans:
    """Spans that overlap none of each other, added one at a time; each is checked
    against its two neighbours in start order, not against all."""

    def __init__(self) -> None:
        self._spans: list[tuple[int, int]] = []

    def overlaps(self, start: int, end: int) -> bool:
        """Whether `[start, end)` shares a character with a span added."""
        # The spans starting before `end`: only the last of them can reach past `start`,
        # as disjoint spans sorted by start are sorted by end too.
        k = bisect_left(self._spans, (end,))
        return k > 0 and self._spans[k - 1][1] > start

    def add(self, start: int, end: int) -> None:
        k = bisect_left(self._spans, (start, end))
        self._spans.insert(k, (start, end))
