"""Code references in ICD-10-CM Excludes1 notes, and which codes they cover.

Notes are free text that name codes in parentheses: `type 1 diabetes mellitus (E10.-)`,
`(O10-O11, O13-O16)`, `(I63.3-I63.5-)`, and a few qualified ranges such as
`(E08-E13 with .44)`, `(V01-V09 with 5th character 1)` or
`(I69. with final characters -23)`. A reference names a code together with everything
below it, which is what `.-` and a trailing `-` spell out.

References are compared on undotted values: a code is covered when its first characters
sort between the reference's bounds, taking each bound's length (`J60-J67.9` covers J60
through J67.9 and their subcodes, not J68). A qualifier that cannot be read makes the whole
reference unusable, so it is dropped rather than widened into a false conflict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARENTHESES = re.compile(r"\(([^()]*)\)")
_ITEM_SEPARATOR = re.compile(r",| and ")  # "(A00-R94 and T80-T88.6)"
_QUALIFIER_SEPARATOR = re.compile(r"\s*\bwith\s+")  # also "(S92.-with 7th character B)"
# A code, allowing the tabular's trailing "-", ".-", "." and the odd "D29.2.-".
_ENDPOINT = re.compile(r"([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)\.?-?")
_ORDINAL = r"(?:[4-7]th|fourth|fifth|sixth|seventh)"
_ORDINALS = {"fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7}
_AT_POSITION = re.compile(rf"({_ORDINAL})(?: to {_ORDINAL})?[- ]characters? \.?([0-9A-Z]+)")
_AFTER_CATEGORY = re.compile(r"\.([0-9A-Z]+)(?:-\.([0-9A-Z]+))?-?")
_FINAL = re.compile(r"final characters -?([0-9A-Z]+)")


@dataclass(frozen=True)
class Bounds:
    """Characters of an undotted code, from `start`, that must sort within first..last."""

    start: int
    first: str
    last: str

    def covers(self, undotted: str) -> bool:
        chars = undotted[self.start :]
        return chars[: len(self.first)] >= self.first and chars[: len(self.last)] <= self.last


@dataclass(frozen=True)
class Reference:
    """One code or range named by an Excludes1 note, with the qualifier that narrows it."""

    text: str
    span: Bounds
    qualifier: Bounds | None = None

    def covers(self, value: str) -> bool:
        """True when the ICD-10-CM `value` (dotted or not) falls under this reference."""
        undotted = value.replace(".", "")
        return self.span.covers(undotted) and (
            self.qualifier is None or self.qualifier.covers(undotted)
        )


def references(note: str) -> list[Reference]:
    """The references that can be read from one note; prose in parentheses is skipped."""
    found: list[Reference] = []
    for group in _PARENTHESES.findall(note):
        for item in _ITEM_SEPARATOR.split(group):
            reference = _parse_item(" ".join(item.split()))
            if reference is not None:
                found.append(reference)
    return found


def _parse_item(text: str) -> Reference | None:
    span_text, *qualifier_text = _QUALIFIER_SEPARATOR.split(text, maxsplit=1)
    span = _parse_span(span_text)
    if span is None:
        return None
    if not qualifier_text:
        return Reference(text, span)
    qualifier = _parse_qualifier(qualifier_text[0])
    return None if qualifier is None else Reference(text, span, qualifier)


def _parse_span(text: str) -> Bounds | None:
    # "I69.81- I69.91-": a range's hyphen is the one followed by the second code's letter.
    ends = re.split(r"-(?=[A-Z])", text.replace(" ", ""))
    matches = [_ENDPOINT.fullmatch(end) for end in ends]
    if len(ends) > 2 or matches[0] is None or matches[-1] is None:
        return None
    return Bounds(0, matches[0][1].replace(".", ""), matches[-1][1].replace(".", ""))


def _parse_qualifier(text: str) -> Bounds | None:
    if match := _AFTER_CATEGORY.fullmatch(text):
        return Bounds(3, match[1], match[2] or match[1])
    if match := _AT_POSITION.fullmatch(text):
        ordinal = match[1]
        position = int(ordinal[0]) if ordinal[0].isdigit() else _ORDINALS[ordinal]
        return Bounds(position - 1, match[2], match[2])
    if match := _FINAL.fullmatch(text):
        return Bounds(-len(match[1]), match[1], match[1])
    return None
