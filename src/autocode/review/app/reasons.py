"""Routing reasons grouped by kind, for reading: a case routed for 24 uncertain codes is
one line naming the 24, not 24 lines, and in the queue one count.

A reason reads `kind: what` (`decisions.routing.route_reasons`: "uncertain:
ICD10CM:I10", "unseen code: ICD10CM:N21.0 (outside the label space)"), or is a kind alone
("no accepted code"). Codes hold a colon too, so a reason splits at its first ": ".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

# The routing's words that are the model's, said as a coder reads them (display only: the
# stored reasons, which batch outputs carry too, are unchanged).
_KINDS_FOR_CODERS = {"unseen code": "code new to the model", "review cap": "not listed"}
_NOTES_FOR_CODERS = {
    "(outside the label space)": "(in no training note; proposed from its name in this note)"
}
_SUFFIX = re.compile(r"^(?P<what>.*?) (?P<note>\([^()]*\))$")  # "X (outside the label space)"


@dataclass
class ReasonGroup:
    kind: str  # "uncertain", "unseen code", "review cap", "no accepted code", ...
    items: list[str] = field(default_factory=list)  # what each reason of the kind names
    note: str = ""  # the parenthesis every item of the kind ends with, said once

    @property
    def title(self) -> str:
        """The kind as a coder reads it ("not listed", not "review cap")."""
        return _KINDS_FOR_CODERS.get(self.kind, self.kind)

    @property
    def label(self) -> str:
        """The title, and its count where it names several."""
        return f"{self.title} ({len(self.items)})" if len(self.items) > 1 else self.title


def grouped(reasons: Sequence[str]) -> list[ReasonGroup]:
    """The reasons by kind, kinds in the order they first come."""
    groups: dict[tuple[str, bool], ReasonGroup] = {}
    for reason in reasons:
        kind, _, what = reason.partition(": ")
        for said, for_coders in _NOTES_FOR_CODERS.items():
            what = what.replace(said, for_coders)
        # A kind said alone is its own group: "no accepted code" is no item of another.
        group = groups.setdefault((kind, bool(what)), ReasonGroup(kind))
        if what:
            group.items.append(what)
    for group in groups.values():
        shared = {_note(item) for item in group.items}
        if len(shared) == 1 and (note := shared.pop()):
            group.note = note
            group.items = [item.removesuffix(" " + note) for item in group.items]
    return list(groups.values())


def summary(reasons: Sequence[str]) -> str:
    """One short line for the queue: each kind with its count, or its one reason whole."""
    parts = []
    for group in grouped(reasons):
        if len(group.items) > 1:
            parts.append(f"{group.title} {len(group.items)}")
        else:
            whole = ": ".join([group.title, *group.items])
            parts.append(f"{whole} {group.note}" if group.note else whole)
    return " · ".join(parts)


def _note(what: str) -> str:
    match = _SUFFIX.match(what)
    return match.group("note") if match else ""
