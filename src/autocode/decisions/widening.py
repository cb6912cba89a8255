"""A Coder's decisions on labelled notes as it codes them: the label space's columns
widened with every other code that is gold or that the open part proposed.

Columns: the label space's codes, then the other codes (sorted). A label-space column
holds the Coder's calibrated probabilities and threshold decisions. An outer column holds
the open part's proposals (each is listed, so predicted, at its probability) and zero,
not predicted, wherever nothing was proposed: a gold code there is a miss. Such an entry
was never ranked either, so `unranked` marks it for the ranking metrics.

`train.evaluation` scores the Coder on this, and `bench/codiesp.py` reads its figures per
training-frequency bucket from it: one widening for both.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from autocode.decisions.coder import Coder
from autocode.decisions.open_codes import OpenCodes, OpenProposal, part_for
from autocode.decisions.policy import ABOVE_ONE, ACCEPTED, ReviewPolicy
from autocode.labels import LabelSpace

# The review band's floor for outer codes where the open part lists from 0: a code never
# proposed (probability 0) is rejected, never uncertain.
_SMALLEST_PROBABILITY = float(np.nextafter(0.0, 1.0))


@dataclass(frozen=True)
class Widened:
    """Notes x codes: the label space (`known` leading columns), then the outer codes."""

    codes: list[str]
    known: int
    gold: sp.csr_matrix
    probs: npt.NDArray[np.floating]
    predicted: npt.NDArray[np.bool_]
    train_counts: npt.NDArray[np.int64]  # 0 for the outer codes
    policy: ReviewPolicy | None = None  # over every column (`widened_policy`)
    # (notes, codes): accepted by the Coder's term rules (listed too); None: no rules.
    rule_accepted: npt.NDArray[np.bool_] | None = None
    # (notes, codes): named only in contexts that do not code; the policy's accepts of
    # them go to review (`Coder.unaffirmed`). None: not looked for.
    unaffirmed: npt.NDArray[np.bool_] | None = None

    @property
    def outer(self) -> npt.NDArray[np.bool_]:
        """The columns outside the label space."""
        return np.arange(len(self.codes)) >= self.known

    @property
    def proposed(self) -> npt.NDArray[np.bool_]:
        """(notes, codes): the open part's proposals."""
        return self.predicted & self.outer

    @property
    def unranked(self) -> npt.NDArray[np.bool_]:
        """For `metrics.evaluate`: the outer columns, or, once any outer code is proposed,
        the outer entries that were not (a code ranks only in the notes it was proposed for)."""
        proposed = self.proposed
        return self.outer & ~proposed if proposed.any() else self.outer

    @property
    def accepted(self) -> npt.NDArray[np.bool_]:
        """(notes, codes): accepted without review, by the policy or a term rule; none
        without a policy."""
        if self.policy is None:
            return np.zeros(self.probs.shape, bool)
        accepted = np.asarray(self.policy.classify(self.probs) == ACCEPTED)
        if self.unaffirmed is not None:
            accepted &= ~self.unaffirmed
        return accepted if self.rule_accepted is None else accepted | self.rule_accepted


def widen(
    space: LabelSpace,
    gold_codes: Sequence[Sequence[str]],
    probs: np.ndarray,
    predicted: np.ndarray,
    proposals: Sequence[Sequence[OpenProposal]] | None = None,
    *,
    policy: ReviewPolicy | None = None,
    open_parts: Sequence[OpenCodes] = (),
    rule_accepted: Sequence[Collection[str]] | None = None,
    unaffirmed: Sequence[Collection[str]] | None = None,
) -> Widened:
    """The label space's `probs` and `predicted` widened with the gold codes it lacks and
    the open `proposals` (one list per note); with the Coder's review `policy`, that
    policy widened for the outer codes (`widened_policy`, with the Coder's `open_parts`).
    `rule_accepted[i]`: label-space codes note i's term rules accept (and so list);
    `unaffirmed[i]`: those it names only negated, hypothetical, about family or within
    longer names of other codes (`Coder.unaffirmed`)."""
    n_notes, known = len(gold_codes), list(space.codes_)
    if probs.shape != (n_notes, len(known)) or predicted.shape != probs.shape:
        raise ValueError(
            f"probs {probs.shape} and predicted {predicted.shape} must both be "
            f"({n_notes} notes, {len(known)} codes of the label space)"
        )
    proposals = proposals if proposals is not None else [[] for _ in gold_codes]
    if len(proposals) != n_notes:
        raise ValueError(f"{len(proposals)} proposal lists for {n_notes} notes")
    extra = {c for codes in gold_codes for c in codes} | {p.code for ps in proposals for p in ps}
    codes = known + sorted(extra - set(known))
    column = {c: j for j, c in enumerate(codes)}
    # The scores' own precision: a float32 copy of float64 scores could tie two codes.
    wide_probs = np.zeros((n_notes, len(codes)), np.result_type(probs.dtype, np.float32))
    wide_predicted = np.zeros((n_notes, len(codes)), bool)
    wide_probs[:, : len(known)] = probs
    wide_predicted[:, : len(known)] = predicted
    for i, note in enumerate(proposals):
        for p in note:
            if column[p.code] < len(known):
                raise ValueError(f"open proposal {p.code} is a code of the label space")
            wide_probs[i, column[p.code]] = p.probability
            wide_predicted[i, column[p.code]] = True
    by_rule = _marked(rule_accepted, column, wide_predicted.shape)
    if by_rule is not None:
        wide_predicted |= by_rule
    not_affirmed = _marked(unaffirmed, column, wide_predicted.shape)
    gold = LabelSpace.from_codes(codes).encode(gold_codes).astype(bool)
    counts = np.zeros(len(codes), np.int64)
    counts[: len(known)] = space.counts_
    wide_policy = (
        None if policy is None else widened_policy(policy, codes[len(known) :], open_parts)
    )
    return Widened(
        codes,
        len(known),
        gold,
        wide_probs,
        wide_predicted,
        counts,
        wide_policy,
        by_rule,
        not_affirmed,
    )


def widened_policy(
    policy: ReviewPolicy, outer: Sequence[str], open_parts: Sequence[OpenCodes] = ()
) -> ReviewPolicy:
    """`policy` with the `outer` codes appended, routed as `routing.decide` routes them: a
    proposal is accepted from its open part's `accept_threshold` and goes to review below
    it; a code nobody proposed (probability 0) is rejected, a miss. A code no open part
    proposes (another system's, or with no open part) is never accepted, never uncertain."""
    thresholds = [_outer_band(code, open_parts) for code in outer]
    accept = np.array([a for a, _ in thresholds], np.float64).reshape(len(outer))
    reject = np.array([r for _, r in thresholds], np.float64).reshape(len(outer))
    return ReviewPolicy(
        accept=np.concatenate([policy.accept, accept]),
        reject=np.concatenate([policy.reject, reject]),
        target_precision=policy.target_precision,
        target_recall=policy.target_recall,
        reachable=policy.reachable,
        max_review_codes=policy.max_review_codes,
    )


def _outer_band(code: str, open_parts: Sequence[OpenCodes]) -> tuple[float, float]:
    """(accept, reject) probabilities of an outer code: its open part's, if any."""
    part = part_for(code, open_parts)
    if part is None:
        return ABOVE_ONE, ABOVE_ONE
    accept = ABOVE_ONE if part.accept_threshold is None else part.accept_threshold
    return accept, min(max(part.threshold, _SMALLEST_PROBABILITY), accept)


@dataclass(frozen=True)
class CoderWidened:
    """A Coder's widened decisions on the same notes, with and without its open part."""

    as_coded: Widened  # the label space and the open part's proposals
    label_space_only: Widened  # the label space alone: every outer gold code is missed


def _marked(
    note_codes: Sequence[Collection[str]] | None,
    column: Mapping[str, int],
    shape: tuple[int, ...],
) -> npt.NDArray[np.bool_] | None:
    """A (notes, codes) mask true at each note's `note_codes`; None for None."""
    if note_codes is None:
        return None
    mask = np.zeros(shape, bool)
    for i, codes in enumerate(note_codes):
        mask[i, [column[c] for c in codes]] = True
    return mask


def coder_widened(
    coder: Coder,
    texts: Sequence[str],
    gold_codes: Sequence[Sequence[str]],
    raw: np.ndarray | None = None,
) -> CoderWidened:
    """The Coder's calibrated probabilities, thresholds, open proposals, term rules,
    unaffirmed codes and review policy on `texts`, computed once and widened with and
    without the open part (the same without an open part). `raw`: its model's scores of
    `texts`, where the caller has them (a transformer's are minutes of work)."""
    if raw is not None and raw.shape != (len(texts), len(coder.labels)):
        raise ValueError(
            f"raw scores have shape {raw.shape}; {len(texts)} notes and "
            f"{len(coder.labels)} labels need ({len(texts)}, {len(coder.labels)})"
        )
    probs = coder.predict_proba(texts) if raw is None else coder.calibrator.transform(raw)
    predicted = coder.thresholds.apply(probs)
    proposals = coder.open_proposals(texts)
    rule_accepted = coder.rule_accepts(texts, probs)
    unaffirmed = coder.unaffirmed(texts, probs)
    as_coded, label_space_only = (
        widen(
            coder.labels,
            gold_codes,
            probs,
            predicted,
            note_proposals,
            policy=coder.policy,
            open_parts=coder.open_parts,
            rule_accepted=rule_accepted,
            unaffirmed=unaffirmed,
        )
        for note_proposals in (proposals, None)
    )
    return CoderWidened(as_coded, label_space_only)
