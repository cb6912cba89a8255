"""Routing policy: which codes are auto-accepted, which are absent, which need review.

Tuned on the validation split's CALIBRATED probabilities. For code c, an entry with
p >= accept[c] is auto-accepted, p < reject[c] is confidently absent, and
reject[c] <= p < accept[c] is uncertain. A note is auto-coded only when none of its
entries is uncertain; otherwise it goes to the review queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from autocode.decisions._inputs import (
    FloatArray,
    Matrix,
    as_gold,
    as_probs,
    check_fraction,
    check_partition,
)

# An accept threshold no probability reaches: the policy accepts nothing.
ABOVE_ONE = float(np.nextafter(1.0, 2.0))
CURVE_TARGETS: FloatArray = np.linspace(0.80, 0.99, 20)
ACCEPTED, REJECTED, UNCERTAIN = 1, 0, -1


@dataclass(frozen=True)
class RoutingDefaults:
    """The routing settings' defaults, written once: configs and tuning both read them."""

    target_precision: float = 0.95
    target_recall: float = 0.95
    min_support: int = 20
    max_review_codes: int | None = 30


ROUTING_DEFAULTS = RoutingDefaults()


@dataclass(frozen=True, eq=False)
class ReviewPolicy:
    """Per-code accept and reject thresholds, and the targets they were tuned for.

    ``reachable`` is False when no threshold reached ``target_precision`` on validation;
    then every accept threshold is ``ABOVE_ONE`` and no code is ever auto-accepted.
    ``max_review_codes`` caps the uncertain codes a note sends to review (its most probable ones): a
    weak model's recall target pulls reject thresholds near zero, and a reviewer cannot
    weigh hundreds of candidates.
    """

    accept: FloatArray
    reject: FloatArray
    target_precision: float
    target_recall: float
    reachable: bool
    max_review_codes: int | None = None

    def __post_init__(self) -> None:
        accept = np.array(self.accept, dtype=np.float64)
        reject = np.array(self.reject, dtype=np.float64)
        if accept.ndim != 1 or accept.size == 0 or reject.shape != accept.shape:
            raise ValueError(
                f"accept and reject must be non-empty 1-D arrays of one length; "
                f"got shapes {accept.shape} and {reject.shape}"
            )
        bad = np.flatnonzero((reject < 0) | (reject > accept) | (accept > ABOVE_ONE))
        if bad.size:
            first = int(bad[0])
            raise ValueError(
                "thresholds must satisfy 0 <= reject <= accept <= ABOVE_ONE; label "
                f"{first} has reject {reject[first]} and accept {accept[first]}"
            )
        check_fraction(self.target_precision, "target_precision")
        check_fraction(self.target_recall, "target_recall")
        if self.max_review_codes is not None and (
            isinstance(self.max_review_codes, bool)
            or not isinstance(self.max_review_codes, int | np.integer)
            or self.max_review_codes < 1
        ):
            raise ValueError(
                f"max_review_codes must be an integer >= 1 or None, got {self.max_review_codes!r}"
            )
        for name, array in (("accept", accept), ("reject", reject)):
            array.flags.writeable = False
            object.__setattr__(self, name, array)

    def classify(self, probs: np.ndarray) -> npt.NDArray[np.int8]:
        """Per entry: 1 accepted, 0 rejected, -1 uncertain (in the review band)."""
        values = self._checked(probs)
        decisions = np.full(values.shape, UNCERTAIN, dtype=np.int8)
        decisions[values >= self.accept] = ACCEPTED
        decisions[values < self.reject] = REJECTED
        if self.max_review_codes is not None:
            _keep_most_probable_uncertain(decisions, values, self.max_review_codes)
        return decisions

    def accepts(self, probs: np.ndarray) -> npt.NDArray[np.bool_]:
        """Per entry: accepted by `classify` (which the review cap never changes), without
        working out the review band."""
        values = self._checked(probs)
        return (values >= self.accept) & (values >= self.reject)

    def _checked(self, probs: np.ndarray) -> FloatArray:
        values = as_probs(probs)
        if values.shape[1] != self.accept.size:
            raise ValueError(f"probs have {values.shape[1]} labels; policy has {self.accept.size}")
        return values

    def cut_by_cap(
        self, probs: np.ndarray, status: npt.NDArray[np.int8] | None = None
    ) -> npt.NDArray[np.bool_]:
        """Per entry: in the review band, but left off the list by the `max_review_codes`
        cap (which `classify` turns into a rejection). `status`: `classify(probs)`, when
        the caller has it."""
        values = as_probs(probs)
        if self.max_review_codes is None:
            return np.zeros(values.shape, np.bool_)
        status = self.classify(values) if status is None else status
        return (status == REJECTED) & (values >= self.reject) & (values < self.accept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accept": self.accept.tolist(),
            "reject": self.reject.tolist(),
            "target_precision": self.target_precision,
            "target_recall": self.target_recall,
            "reachable": self.reachable,
            "max_review_codes": self.max_review_codes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        return cls(
            accept=np.asarray(d["accept"], dtype=np.float64),
            reject=np.asarray(d["reject"], dtype=np.float64),
            target_precision=float(d["target_precision"]),
            target_recall=float(d["target_recall"]),
            reachable=bool(d["reachable"]),
            max_review_codes=None
            if d.get("max_review_codes") is None
            else int(d["max_review_codes"]),
        )


def _keep_most_probable_uncertain(decisions: np.ndarray, values: FloatArray, limit: int) -> None:
    """Per row, turn uncertain entries beyond the `limit` most probable into rejections.

    Equal probabilities keep the lower label index first. Done for all rows at once (a
    partition finds each row's `limit`-th largest uncertain value): a row-by-row sort
    cost a batch job as much as writing its output.
    """
    uncertain = decisions == UNCERTAIN
    over = uncertain.sum(axis=1, keepdims=True) > limit
    if not over.any():
        return
    keyed = np.negative(values, where=uncertain, out=np.full(values.shape, np.inf))
    # Per row, minus the `limit`-th largest uncertain value; +inf where fewer are uncertain.
    kth = np.partition(keyed, limit - 1, axis=1)[:, limit - 1 : limit]
    above = keyed < kth
    tied = keyed == kth
    room = limit - above.sum(axis=1, keepdims=True)
    keep = above | (tied & (np.cumsum(tied, axis=1) <= room))
    decisions[uncertain & over & ~keep] = REJECTED


@dataclass(frozen=True)
class Settled:
    """Per code, the entries accepted whatever the policy says: how many are gold, and
    how many in all (`tune_review_bands`' ``settled``)."""

    gold: npt.NDArray[np.int64]
    total: npt.NDArray[np.int64]

    @classmethod
    def none(cls, codes: int) -> Settled:
        return cls(np.zeros(codes, np.int64), np.zeros(codes, np.int64))

    @property
    def pooled(self) -> tuple[int, int]:
        return int(self.gold.sum()), int(self.total.sum())

    def of_code(self, code: int) -> tuple[int, int]:
        return int(self.gold[code]), int(self.total[code])

    def of_columns(self, columns: np.ndarray) -> Settled:
        return Settled(self.gold[columns], self.total[columns])


def _lowest_precise_threshold(
    scores: FloatArray,
    positive_scores: FloatArray,
    target: float,
    floor: float = 0.0,
    settled: tuple[int, int] = (0, 0),
) -> float:
    """Lowest t >= floor such that the entries with score >= t reach ``target`` precision,
    counted together with ``settled`` (gold, all) entries accepted anyway.

    Only positives' scores are candidates: moving a cut down past a negative alone adds
    a false positive and no true one. ``ABOVE_ONE`` when no candidate reaches the target.
    """
    positives = np.sort(positive_scores)
    candidates = np.unique(positives[positives >= floor])
    everything = np.sort(scores, axis=None)
    tp = positives.size - np.searchsorted(positives, candidates, side="left") + settled[0]
    predicted = everything.size - np.searchsorted(everything, candidates, side="left")
    reaching = candidates[tp / (predicted + settled[1]) >= target]
    return float(reaching[0]) if reaching.size else ABOVE_ONE


def backing_threshold(
    y_true: Matrix,
    probs: np.ndarray,
    backed: npt.NDArray[np.bool_],
    target_precision: float = ROUTING_DEFAULTS.target_precision,
    min_support: int = ROUTING_DEFAULTS.min_support,
) -> float | None:
    """The lowest calibrated probability from which the (notes, codes) entries a term backs
    (`decisions.term_rules`, measured held out as these probabilities are) reach
    ``target_precision`` on their own, over at least ``min_support`` entries; None where
    none does. Entries a rule accepts anyway belong to the rules, not here: leave them out
    of ``backed``."""
    values = as_probs(probs)
    if backed.shape != values.shape:
        raise ValueError(f"backed has shape {backed.shape}; probs have {values.shape}")
    rows, cols = np.nonzero(backed)
    if rows.size == 0:
        return None
    scores = values[rows, cols]
    gold = np.asarray(as_gold(y_true, values.shape)[rows, cols]).ravel() > 0
    threshold = _lowest_precise_threshold(scores, scores[gold], target_precision)
    if threshold > 1.0 or np.count_nonzero(scores >= threshold) < min_support:
        return None
    return threshold


def _reject_threshold(positive_scores: FloatArray, target_recall: float) -> float:
    """Highest t such that at most (1 - target_recall) of the gold entries score below t.

    With no gold entry there is nothing to miss but no evidence either: 0.0, so nothing
    is confidently rejected.
    """
    if positive_scores.size == 0:
        return 0.0
    positives = np.sort(positive_scores)
    # The tolerance keeps (1 - 0.9) * 10 = 0.999... from rounding down to 0 misses.
    allowed_misses = int(np.floor((1 - target_recall) * positives.size + 1e-9))
    return float(positives[min(allowed_misses, positives.size - 1)])


def _tune(
    values: FloatArray,
    gold: sp.csr_array,
    target_precision: float,
    min_support: int,
    target_recall: float,
    max_review_codes: int | None = None,
    settled: Settled | None = None,
) -> ReviewPolicy:
    for name, target in (("target_precision", target_precision), ("target_recall", target_recall)):
        if not 0.0 < target <= 1.0:
            raise ValueError(f"{name} must lie in (0, 1]; got {target!r}")
    if min_support < 1:
        raise ValueError(f"min_support must be >= 1; got {min_support}")
    if settled is None:
        settled = Settled.none(values.shape[1])
    # 1. Pooled, because most codes are too rare to measure precision on alone.
    rows, cols = gold.nonzero()
    global_accept = _lowest_precise_threshold(
        values, values[rows, cols], target_precision, settled=settled.pooled
    )
    accept = np.full(values.shape[1], global_accept)
    by_code = sp.csc_array(gold)
    support = np.diff(by_code.indptr)
    # 2. Codes with enough support must also reach the target on their own, so a frequent
    #    imprecise code cannot hide behind the precise majority in the pooled count.
    for code in np.flatnonzero(support >= min_support):
        gold_rows = by_code.indices[by_code.indptr[code] : by_code.indptr[code + 1]]
        column = values[:, code]
        accept[code] = _lowest_precise_threshold(
            column,
            column[gold_rows],
            target_precision,
            floor=global_accept,
            settled=settled.of_code(int(code)),
        )
    # 3. Rejecting is pooled and global: missing a gold code costs the same for every code,
    #    and the false-negative mass needs all codes' positives to be estimated at all.
    reject = np.minimum(_reject_threshold(values[rows, cols], target_recall), accept)
    reachable = global_accept <= 1.0
    return ReviewPolicy(
        accept, reject, target_precision, target_recall, reachable, max_review_codes
    )


def tune_review_bands(
    y_true: Matrix,
    probs: np.ndarray,
    target_precision: float = ROUTING_DEFAULTS.target_precision,
    min_support: int = ROUTING_DEFAULTS.min_support,
    target_recall: float = ROUTING_DEFAULTS.target_recall,
    max_review_codes: int | None = ROUTING_DEFAULTS.max_review_codes,
    groups: Sequence[np.ndarray] | None = None,
    settled: npt.NDArray[np.bool_] | None = None,
) -> ReviewPolicy:
    """Accept and reject thresholds per code from validation calibrated probabilities.

    1. Global accept: the lowest t at which all (document, code) entries with p >= t,
       pooled, reach ``target_precision``. If no t does, the target is unreachable:
       accept is ``ABOVE_ONE`` (nothing auto-accepted) and ``reachable`` is False.
    2. Codes with at least ``min_support`` validation positives get the lowest
       t >= global at which that code alone reaches the target (``ABOVE_ONE`` if none);
       the others keep the global threshold.
    3. Reject: the highest t such that at most (1 - ``target_recall``) of all gold
       entries score below it, so confident rejections miss few real codes; clipped to
       each code's accept threshold so that the bands never invert.
    4. ``max_review_codes`` (stored, applied by ``classify``) caps each note's review list.

    ``groups``: column sets that are each tuned on their own, steps 1 and 3 pooling within
    a set only (`tune_decisions` passes each code system's codes: PCS's weaker scores
    must not raise the CM accept threshold, nor CM's many codes set PCS's). Together they
    must cover every column. A set without a gold entry keeps the pooled bands.
    ``reachable`` is then True when any set can accept a code.

    ``settled``: (notes, codes) entries accepted whatever the policy says (by term
    rules, measured held out as these scores are). Steps 1 and 2 then count them as
    accepted at every t, and only the others' scores are cut: what is accepted in all,
    theirs and the policy's, reaches the target (tuned on every entry alike, the policy
    counted the rules' surest codes as its own and accepted less precise ones beside
    them). They are left out of step 3's gold: nothing rejects them.
    """
    values = as_probs(probs)
    gold = as_gold(y_true, values.shape)
    counts = None
    if settled is not None:
        if settled.shape != values.shape:
            raise ValueError(f"settled has shape {settled.shape}; probs have {values.shape}")
        settled_gold = gold.multiply(sp.csr_array(settled)).toarray() > 0
        counts = Settled(settled_gold.sum(axis=0), settled.sum(axis=0))
        values = np.where(settled, -1.0, values)  # below every threshold
        gold = sp.csr_array(gold.multiply(sp.csr_array(~settled)))
        gold.eliminate_zeros()
    return _tune_groups(
        values, gold, target_precision, min_support, target_recall, max_review_codes, groups, counts
    )


def _tune_groups(
    values: FloatArray,
    gold: sp.csr_array,
    target_precision: float,
    min_support: int,
    target_recall: float,
    max_review_codes: int | None,
    groups: Sequence[np.ndarray] | None,
    settled: Settled | None = None,
) -> ReviewPolicy:
    """`tune_review_bands` on checked inputs."""
    if groups is None:
        return _tune(
            values, gold, target_precision, min_support, target_recall, max_review_codes, settled
        )
    check_partition(groups, values.shape[1])
    accept, reject = np.empty(values.shape[1]), np.empty(values.shape[1])
    reachable = False
    pooled: ReviewPolicy | None = None  # tuned only for a set without gold of its own
    for columns in groups:
        group_gold = sp.csr_array(gold[:, columns])
        if group_gold.nnz:
            part = _tune(
                values[:, columns],
                group_gold,
                target_precision,
                min_support,
                target_recall,
                settled=None if settled is None else settled.of_columns(columns),
            )
            accept[columns], reject[columns] = part.accept, part.reject
            reachable |= part.reachable
            continue
        if pooled is None:
            pooled = _tune(
                values, gold, target_precision, min_support, target_recall, settled=settled
            )
        accept[columns], reject[columns] = pooled.accept[columns], pooled.reject[columns]
        reachable |= bool((pooled.accept[columns] <= 1.0).any())
    return ReviewPolicy(
        accept, reject, target_precision, target_recall, reachable, max_review_codes
    )


def _statuses(
    values: FloatArray,
    policy: ReviewPolicy,
    accepted_by_rule: npt.NDArray[np.bool_] | None = None,
    held: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.int8]:
    """The policy's status of every entry, with its accepts of `held` entries uncertain
    and the entries a term rule accepts accepted (as `routing.decide` routes them)."""
    decisions = policy.classify(values)
    if held is not None:
        decisions[held & (decisions == ACCEPTED)] = UNCERTAIN
    if accepted_by_rule is not None:
        decisions[accepted_by_rule] = ACCEPTED
    return decisions


def _report(decisions: npt.NDArray[np.int8], gold: sp.csr_array) -> dict[str, Any]:
    auto = ~(decisions == UNCERTAIN).any(axis=1)
    rows, cols = gold.nonzero()
    gold_in_auto = auto[rows]
    accepted = np.count_nonzero(decisions[auto] == ACCEPTED)
    gold_total = np.count_nonzero(gold_in_auto)
    tp = np.count_nonzero(decisions[rows[gold_in_auto], cols[gold_in_auto]] == ACCEPTED)
    documents, auto_documents = decisions.shape[0], int(auto.sum())
    return {
        "documents": documents,
        "auto_documents": auto_documents,
        "automation_rate": auto_documents / documents,
        "auto_precision": tp / accepted if accepted else None,
        "auto_recall": tp / gold_total if gold_total else None,
    }


def automation_report(
    y_true: Matrix,
    probs: np.ndarray,
    policy: ReviewPolicy,
    accepted_by_rule: npt.NDArray[np.bool_] | None = None,
    held: npt.NDArray[np.bool_] | None = None,
) -> dict[str, Any]:
    """How much a policy automates, and how well, on labelled data.

    ``automation_rate`` is the share of documents with no uncertain entry (routed
    ``auto``); ``auto_precision`` and ``auto_recall`` pool the accepted codes against the
    gold codes of those documents only. A ratio with a zero denominator is undefined:
    None (`null` in JSON, not logged to MLflow).
    ``accepted_by_rule``: entries a term rule accepts whatever the policy says
    (`decisions.term_rules`). ``held``: entries whose accept by the policy goes to review
    instead (codes named only negated or within other codes' names, `Coder.unaffirmed`).
    ``code_automation_rate`` and ``code_auto_precision``: the share of all gold codes
    accepted, and the accepted codes' precision, over every note.
    """
    values = as_probs(probs)
    decisions = _statuses(values, policy, accepted_by_rule, held)
    gold = as_gold(y_true, values.shape)
    return _report(decisions, gold) | _code_report(decisions, gold)


def automation_curve(
    y_true: Matrix,
    probs: np.ndarray,
    targets: Sequence[float] | FloatArray = CURVE_TARGETS,
    min_support: int = ROUTING_DEFAULTS.min_support,
    target_recall: float = ROUTING_DEFAULTS.target_recall,
    groups: Sequence[np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """For each target precision: the tuned policy's automation report on the same data.

    The trade-off curve behind the choice of ``target_precision``; each row is
    ``automation_report`` plus ``target_precision``, ``reachable`` and the code-level
    figures of ``code_automation``. ``groups`` as ``tune_review_bands`` takes them.
    """
    values = as_probs(probs)
    gold = as_gold(y_true, values.shape)
    curve = []
    for target in targets:
        policy = _tune_groups(values, gold, float(target), min_support, target_recall, None, groups)
        decisions = policy.classify(values)
        report = _report(decisions, gold) | _code_report(decisions, gold)
        curve.append({"target_precision": float(target), "reachable": policy.reachable, **report})
    return curve


def code_automation(y_true: Matrix, probs: np.ndarray, policy: ReviewPolicy) -> dict[str, Any]:
    """Code-level automation: what a coder no longer confirms, whatever the note's route.

    ``code_automation_rate`` is the share of gold codes the policy accepts without review,
    over every note; ``code_auto_precision`` the share of accepted codes that are gold
    (None when none is accepted).
    """
    values = as_probs(probs)
    return _code_report(policy.classify(values), as_gold(y_true, values.shape))


def _code_report(decisions: npt.NDArray[np.int8], gold: sp.csr_array) -> dict[str, Any]:
    return code_level_report(decisions == ACCEPTED, gold)


def code_level_report(accepted: npt.NDArray[np.bool_], gold: Matrix) -> dict[str, Any]:
    """The share of the gold codes `accepted` holds, and the precision of its accepts
    (None where there is nothing to divide by: undefined, not 0)."""
    rows, cols = gold.nonzero()
    hits = int(np.count_nonzero(accepted[rows, cols]))
    n_accepted = int(np.count_nonzero(accepted))
    return {
        "code_automation_rate": hits / rows.size if rows.size else None,
        "code_auto_precision": hits / n_accepted if n_accepted else None,
    }
