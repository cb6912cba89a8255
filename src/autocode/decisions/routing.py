"""Routing: is a note auto-coded, or does a certified coder review it, and why.

A note is `auto` only if every code's calibrated probability lies outside the
Coder's review band and no rule fires. Rules: ICD-10-CM Excludes1 pairs both
accepted, a non-billable (header) ICD-10-CM code accepted, no accepted code,
a note longer than the model reads (truncated). The rules' ICD-10-CM facts come from the
Coder (`Coder.routing_facts`, stored at training time), not from the tabular.

A Coder with term rules (`decisions.term_rules`) accepts a code whose rule term the note
mentions, whatever its probability (listed if it was not); its prediction keeps where the
term was mentioned (`Prediction.rule_span`). A Coder with an open part
(`decisions.open_codes`) also lists codes outside its label space; each goes to review
("unseen code") unless its calibrated probability reaches the
open part's `accept_threshold`, where out-of-fold precision met the routing target.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from autocode.collector import collector_paused
from autocode.decisions.coder import Coder
from autocode.decisions.open_codes import OpenProposal
from autocode.decisions.policy import ACCEPTED, UNCERTAIN
from autocode.decisions.records import AUTO, REVIEW, Decision, Prediction
from autocode.decisions.routing_facts import RoutingFacts
from autocode.decisions.term_rules import Span
from autocode.models.evidence import EvidenceSpan


def decide(
    coder: Coder,
    probs: np.ndarray,
    texts: Sequence[str] | None = None,
    *,
    truncated: Sequence[bool] | None = None,
    open_proposals: Sequence[Sequence[OpenProposal]] | None = None,
    rule_accepted: Sequence[Mapping[str, Span]] | None = None,
    unaffirmed: Sequence[Collection[str]] | None = None,
) -> list[Decision]:
    """One decision per row of calibrated probabilities; with `texts`, evidence spans too.

    `truncated[i]` says the model read only part of note i (see `Coder.truncated`).
    `open_proposals[i]` are note i's codes beyond the label space (`Coder.open_proposals`),
    `rule_accepted[i]` the codes its term rules (and backing terms) accept, each with the
    characters of the term's mention (`Coder.rule_accepts`), `unaffirmed[i]` the codes it names only
    negated, hypothetical, about family or within longer names of other codes
    (`Coder.unaffirmed`), which the policy then does not accept; when not given, all
    three are found in `texts`.
    """
    if texts is not None:
        if open_proposals is None:
            open_proposals = coder.open_proposals(texts)
        if rule_accepted is None:
            rule_accepted = coder.rule_accepts(texts, probs)
        if unaffirmed is None:
            unaffirmed = coder.unaffirmed(texts, probs)
    elif rule_accepted is None and coder.accepts_on_terms:
        # Rules read the notes: deciding without them would silently skip every rule.
        raise ValueError("this Coder has term rules: give texts or rule_accepted")
    # Records and spans: many small objects, no cycles. A caller that pauses the collector
    # until they die (batch coding, the pyfunc) spares them its walk altogether.
    with collector_paused():
        return _decisions(coder, probs, texts, truncated, open_proposals, rule_accepted, unaffirmed)


def _decisions(
    coder: Coder,
    probs: np.ndarray,
    texts: Sequence[str] | None,
    truncated: Sequence[bool] | None,
    open_proposals: Sequence[Sequence[OpenProposal]] | None,
    rule_accepted: Sequence[Mapping[str, Span]] | None,
    unaffirmed: Sequence[Collection[str]] | None,
) -> list[Decision]:
    status = coder.policy.classify(probs)
    # Predicted codes are always listed, even where the review cap left them out.
    predicted = coder.thresholds.apply(probs)
    listed = _Listed.of(probs, status, predicted, coder.labels.codes_)
    # The uncertain entries the review cap left off the list, at their probability (else
    # -1); a predicted one stays listed.
    cut = np.where(coder.policy.cut_by_cap(probs, status) & ~predicted, probs, -1.0)
    decisions = []
    for row in range(probs.shape[0]):
        predictions = listed.predictions(row)
        by_rule = rule_accepted[row] if rule_accepted is not None else {}
        row_cut = cut[row]
        if by_rule:
            # A code the cap cut that a rule accepts is listed, and no longer uncertain.
            row_cut = row_cut.copy()
            row_cut[[coder.labels.index(code) for code in by_rule]] = -1.0
            _accept_by_rule(predictions, by_rule, probs[row], coder.labels.index)
        # A code named only "no fever" is not accepted on the word alone; a rule's own
        # mention is affirmed, so what a rule accepts stays accepted.
        named_unaffirmed = unaffirmed[row] if unaffirmed is not None else ()
        demoted = []
        for prediction in predictions:
            code = prediction.code
            if prediction.accepted and code in named_unaffirmed and code not in by_rule:
                prediction.accepted = False
                demoted.append(code)
        unseen: list[str] = []
        for proposal in open_proposals[row] if open_proposals is not None else []:
            part = coder.open_part_of(proposal.code)
            auto = part is not None and part.is_auto(proposal.probability)
            spans = [EvidenceSpan(a, b, proposal.probability) for a, b in proposal.spans]
            predictions.append(Prediction(proposal.code, proposal.probability, auto, True, spans))
            if not auto:
                unseen.append(proposal.code)
        accepted = [p.code for p in predictions if p.accepted]
        reasons = route_reasons(
            accepted,
            [code for code in listed.uncertain(row) if code not in by_rule],
            truncated=bool(truncated and truncated[row]),
            unlisted=int((row_cut >= 0).sum()),
            unlisted_likeliest=float(row_cut.max(initial=-1.0)),
            facts=coder.routing_facts,
            unseen=unseen,
            unaffirmed=demoted,
        )
        decisions.append(Decision(accepted, predictions, REVIEW if reasons else AUTO, reasons))
    if texts is not None:
        _attach_evidence(coder, texts, decisions)
    return decisions


def _accept_by_rule(
    predictions: list[Prediction],
    spans: Mapping[str, Span],
    probs: np.ndarray,
    column_of: Callable[[str], int],
) -> None:
    """Accepts the listed predictions of the rules' codes and lists the others, at their
    probability; each keeps the span of its rule term's mention."""
    listed = {p.code: p for p in predictions}
    for code in sorted(spans):
        if code not in listed:
            listed[code] = Prediction(code, float(probs[column_of(code)]), True, True)
            predictions.append(listed[code])
        prediction = listed[code]
        prediction.accepted = prediction.predicted = True
        prediction.rule_span = spans[code]
    predictions.sort(key=lambda p: -p.probability)


@dataclass(frozen=True)
class _Listed:
    """The listed entries of every row, most probable first (ties: lower label first), as
    Python lists cut by row: one sort for the whole batch, not one per note."""

    bounds: list[int]  # row r's entries are [bounds[r], bounds[r + 1])
    codes: list[str]
    probabilities: list[float]
    accepted: list[bool]
    uncertain_flags: list[bool]
    predicted: list[bool]

    @classmethod
    def of(
        cls, probs: np.ndarray, status: np.ndarray, predicted: np.ndarray, codes: Sequence[str]
    ) -> _Listed:
        rows, columns = np.nonzero((status != 0) | predicted)
        order = np.lexsort((-probs[rows, columns], rows))  # stable: equal ones by label
        rows, columns = rows[order], columns[order]
        per_row = np.bincount(rows, minlength=probs.shape[0])
        entry_status = status[rows, columns]
        return cls(
            bounds=[0, *np.cumsum(per_row).tolist()],
            codes=[codes[j] for j in columns.tolist()],
            probabilities=probs[rows, columns].tolist(),
            accepted=(entry_status == ACCEPTED).tolist(),
            uncertain_flags=(entry_status == UNCERTAIN).tolist(),
            predicted=predicted[rows, columns].tolist(),
        )

    def predictions(self, row: int) -> list[Prediction]:
        cut = slice(self.bounds[row], self.bounds[row + 1])
        return [
            Prediction(code, probability, accepted, predicted)
            for code, probability, accepted, predicted in zip(
                self.codes[cut],
                self.probabilities[cut],
                self.accepted[cut],
                self.predicted[cut],
                strict=True,
            )
        ]

    def uncertain(self, row: int) -> list[str]:
        cut = slice(self.bounds[row], self.bounds[row + 1])
        return [
            code
            for code, uncertain in zip(self.codes[cut], self.uncertain_flags[cut], strict=True)
            if uncertain
        ]


def _attach_evidence(coder: Coder, texts: Sequence[str], decisions: list[Decision]) -> None:
    """Every note's spans in one batch: the model explains them together, not note by note.
    Open-part codes (outside the label space) keep the name mentions they were proposed for."""
    known = set(coder.labels.codes_)
    codes = [[p.code for p in decision.predictions if p.code in known] for decision in decisions]
    for decision, spans in zip(decisions, coder.evidence_batch(texts, codes), strict=True):
        for prediction in decision.predictions:
            if prediction.code in known:
                prediction.evidence = spans[prediction.code]  # the model's own span records


def route_reasons(
    accepted: list[str],
    uncertain: list[str],
    *,
    truncated: bool = False,
    unlisted: int = 0,
    unlisted_likeliest: float | None = None,
    facts: RoutingFacts | None = None,
    unseen: Sequence[str] = (),
    unaffirmed: Sequence[str] = (),
) -> list[str]:
    """Every reason a note needs review; empty means it can be auto-coded.

    `unlisted` counts uncertain codes beyond the policy's review cap (not in `uncertain`),
    `unlisted_likeliest` is the highest probability among them (what a reviewer may skip).
    `unseen` are codes beyond the label space proposed but not accepted (the open part);
    `unaffirmed` listed codes the note names only negated, hypothetical, about family or
    within a longer name of another code (`Coder.unaffirmed`).
    `facts` answer the ICD-10-CM rules; where they are None or do not cover an accepted
    code (a hand-built Coder's), the accepted codes are looked up in the tabular.
    """
    if facts is None or not facts.covers(accepted):
        facts = RoutingFacts.for_codes(accepted)
    reasons = [f"uncertain: {code}" for code in uncertain]
    reasons += [f"unseen code: {code} (outside the label space)" for code in unseen]
    reasons += [
        f"not affirmed: {code} (named only negated, hypothetical, about family"
        " or within a longer name of another code)"
        for code in unaffirmed
    ]
    if unlisted:
        likeliest = "" if unlisted_likeliest is None else f", {_likeliest(unlisted_likeliest)}"
        reasons.append(f"review cap: {unlisted} more uncertain codes not listed{likeliest}")
    if truncated:
        reasons.append("truncated: the model read only part of the note")
    if not accepted:
        reasons.append("no accepted code")
    reasons += _excludes1_reasons(facts.excludes1_conflicts(accepted))
    reasons += [
        f"non-billable: {code}"
        for code in accepted
        if code.startswith("ICD10CM:") and not facts.is_billable(code)
    ]
    return reasons


def _excludes1_reasons(conflicts: Sequence[tuple[str, str]]) -> list[str]:
    """One reason per pair: codes that exclude each other (E10.9, E11.9) read once."""
    pairs = set(conflicts)
    reasons = []
    for first, second in conflicts:
        if (second, first) not in pairs:
            reasons.append(f"excludes1: {first} excludes {second}")
        elif first < second:
            reasons.append(f"excludes1: {first} and {second} exclude each other")
    return reasons


def _likeliest(probability: float) -> str:
    """How likely the codes the review cap left off are, at most (never "at 0.000")."""
    if probability < 0.001:
        return "the likeliest below 0.001"
    return f"the likeliest at {probability:.3f}"
