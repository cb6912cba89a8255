"""The ICD-10-CM facts routing needs, looked up once per label space and saved in the Coder.

Routing asks of a note's accepted codes: is each ICD-10-CM code billable (a leaf of the
tabular), and does an Excludes1 note forbid two of them together? The answers come from
the 10 MB tabular XML, whose parse costs seconds: paid at prediction time, it would be
paid by every worker process and by the first request a served model gets. A Coder's codes
are known when it is trained, so the answers for all of them are computed then and saved
(`RoutingFacts.for_codes`); a loaded Coder routes without reading the tabular.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self

from autocode.codes import icd10cm
from autocode.codes.systems import ICD10CM, split_code


@dataclass(frozen=True)
class RoutingFacts:
    """Billable flags of a set of ICD-10-CM codes and the Excludes1 pairs among them.

    `billable` and `non_billable` together are the codes the facts cover; `excludes1`
    holds every directed pair (excluding, excluded) of covered codes that
    `codes.excludes1_conflicts` would report. Codes of other systems need no facts.
    """

    billable: frozenset[str]
    non_billable: frozenset[str]
    excludes1: frozenset[tuple[str, str]]

    @classmethod
    def for_codes(cls, codes: Iterable[str]) -> Self:
        """Facts of the ICD-10-CM codes among `codes` (canonical), read from the tabular."""
        # By prefix, as `covers` reads them: a label of another system needs no facts.
        icd = sorted({code for code in codes if code.startswith(f"{ICD10CM}:")})
        billable = frozenset(code for code in icd if icd10cm.is_billable(code))
        return cls(billable, frozenset(icd) - billable, frozenset(_excludes1_pairs(icd)))

    def covers(self, codes: Iterable[str]) -> bool:
        """True when every ICD-10-CM code of `codes` has its facts here."""
        return all(
            code in self.billable or code in self.non_billable
            for code in codes
            if code.startswith(f"{ICD10CM}:")
        )

    def is_billable(self, code: str) -> bool:
        """As `codes.is_billable`, for a covered ICD-10-CM code; KeyError names any other."""
        if code in self.billable:
            return True
        if code in self.non_billable:
            return False
        raise KeyError(f"no routing facts for {code!r}: not an ICD-10-CM code of this Coder")

    def excludes1_conflicts(self, codes: Sequence[str]) -> list[tuple[str, str]]:
        """As `codes.excludes1_conflicts(codes)`, in the same order, for covered codes."""
        icd = list(dict.fromkeys(code for code in codes if code.startswith(f"{ICD10CM}:")))
        return [(a, b) for a in icd for b in icd if (a, b) in self.excludes1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "billable": sorted(self.billable),
            "non_billable": sorted(self.non_billable),
            "excludes1": sorted([a, b] for a, b in self.excludes1),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        return cls(
            frozenset(d["billable"]),
            frozenset(d["non_billable"]),
            frozenset((a, b) for a, b in d["excludes1"]),
        )


def _excludes1_pairs(codes: Sequence[str]) -> Iterable[tuple[str, str]]:
    """Every pair `codes.excludes1_conflicts(codes)` gives, without comparing all pairs:
    a reference covers a contiguous run of the sorted undotted values (`_covered_run`)."""
    values = [split_code(code)[1] for code in codes]
    undotted = sorted((value.replace(".", ""), value) for value in values)
    keys = [key for key, _ in undotted]
    for excluding in values:
        if not icd10cm.in_tabular(excluding):
            continue
        named: set[str] = set()
        for reference in icd10cm.excludes1_references(excluding):
            first, last = _covered_run(keys, reference.span.first, reference.span.last)
            named.update(value for _, value in undotted[first:last] if reference.covers(value))
        named.discard(excluding)
        yield from ((f"{ICD10CM}:{excluding}", f"{ICD10CM}:{value}") for value in named)


def _covered_run(keys: Sequence[str], first: str, last: str) -> tuple[int, int]:
    """Indices [a, b) of the sorted `keys` whose leading characters sort within first..last.

    `key[:len(first)] >= first` holds exactly when `key >= first`, and
    `key[:len(last)] <= last` exactly when `key` sorts before `last` followed by a
    character above any code's.
    """
    return bisect_left(keys, first), bisect_left(keys, last + "\uffff")
