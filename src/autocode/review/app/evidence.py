"""The note split at evidence-span boundaries, each piece with the codes whose spans cover it.

A code a term rule accepted has its rule term's mention (`rule_span`) among its spans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any


@dataclass(frozen=True)
class Segment:
    text: str
    codes: tuple[str, ...]  # empty: no evidence here


def segments(text: str, predictions: Sequence[dict[str, Any]]) -> list[Segment]:
    spans = [
        (span["start"], span["end"], prediction["code"])
        for prediction in predictions
        for span in prediction.get("evidence", [])
    ]
    spans += [
        (rule["start"], rule["end"], prediction["code"])
        for prediction in predictions
        if (rule := prediction.get("rule_span")) is not None
    ]
    bounds = sorted({0, len(text), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    pieces: list[Segment] = []
    for start, end in pairwise(bounds):
        codes = tuple(dict.fromkeys(c for s, e, c in spans if s <= start and end <= e))
        if pieces and pieces[-1].codes == codes:
            pieces[-1] = Segment(pieces[-1].text + text[start:end], codes)
        else:
            pieces.append(Segment(text[start:end], codes))
    return pieces
