"""Scoring helpers for bench/codiesp.py: a Coder's closed and open predictions together,
per training-frequency bucket, code-level automation, and ECE over the pairs that matter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from autocode import metrics
from autocode.decisions.coder import Coder
from autocode.decisions.open_codes import OpenProposal
from autocode.decisions.policy import ACCEPTED
from autocode.labels import LabelSpace

# The buckets of a code's training count; "unseen" is 0.
BUCKETS = (("unseen", 0, 0), ("1", 1, 1), ("2-5", 2, 5), ("6-50", 6, 50), (">50", 51, 10**9))
MATTERING_PROBABILITY = 0.01  # ECE over pairs at least this probable, or a note's top-k
MATTERING_TOP_K = 10
AUTOMATION_PRECISION = 0.95


@dataclass
class Scored:
    """Notes x codes: the closed label space, then every other code that is gold or
    proposed; scores, decisions and auto-accepts of one system (zeros where it is silent)."""

    codes: list[str]
    gold: sp.csr_matrix
    probs: np.ndarray
    predicted: np.ndarray
    accepted: np.ndarray
    train_counts: np.ndarray


def widen(
    space: LabelSpace,
    gold_codes: Sequence[Sequence[str]],
    probs: np.ndarray,
    predicted: np.ndarray,
    accepted: np.ndarray | None = None,
    proposals: Sequence[Sequence[OpenProposal]] | None = None,
    auto: Any = None,
) -> Scored:
    """The label space's columns, widened with the gold codes it lacks and the open
    proposals; `auto(probability)` says whether an open proposal is auto-accepted."""
    known = list(space.codes_)
    extra = {c for codes in gold_codes for c in codes} | {
        p.code for note in proposals or [] for p in note
    }
    codes = known + sorted(extra - set(known))
    column = {c: j for j, c in enumerate(codes)}
    n = len(gold_codes)
    wide_probs = np.zeros((n, len(codes)), np.float32)
    wide_pred = np.zeros((n, len(codes)), bool)
    wide_acc = np.zeros((n, len(codes)), bool)
    wide_probs[:, : len(known)] = probs
    wide_pred[:, : len(known)] = predicted
    if accepted is not None:
        wide_acc[:, : len(known)] = accepted
    for i, note in enumerate(proposals or []):
        for p in note:
            j = column[p.code]
            wide_probs[i, j] = p.probability
            wide_pred[i, j] = True
            wide_acc[i, j] = bool(auto(p.probability)) if auto else False
    rows = [i for i, codes_ in enumerate(gold_codes) for c in set(codes_)]
    cols = [column[c] for codes_ in gold_codes for c in set(codes_)]
    gold = sp.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(n, len(codes)))
    counts = np.zeros(len(codes), np.int64)
    counts[: len(known)] = space.counts_
    return Scored(codes, gold, wide_probs, wide_pred, wide_acc, counts)


def coder_scored(
    coder: Coder, texts: Sequence[str], gold_codes: Sequence[Sequence[str]], *, open_part: bool
) -> Scored:
    """The Coder's calibrated probabilities, thresholds and review policy on `texts`, with
    its open part's proposals when `open_part`."""
    probs = coder.predict_proba(texts)
    proposals = coder.open_proposals(texts) if open_part else None
    auto = coder.open_codes.is_auto if coder.open_codes is not None else None
    accepted = coder.policy.classify(probs) == ACCEPTED
    return widen(
        coder.labels, gold_codes, probs, coder.thresholds.apply(probs), accepted, proposals, auto
    )


def system_view(scored: Scored, system: str) -> Scored:
    keep = np.flatnonzero([c.startswith(f"{system}:") for c in scored.codes])
    return Scored(
        [scored.codes[j] for j in keep],
        scored.gold[:, keep],
        scored.probs[:, keep],
        scored.predicted[:, keep],
        scored.accepted[:, keep],
        scored.train_counts[keep],
    )


def overall(scored: Scored) -> dict[str, float]:
    prf = metrics.micro_prf(scored.gold, scored.predicted)
    return {
        "micro_f1": prf.f1,
        "micro_precision": prf.precision,
        "micro_recall": prf.recall,
        "map": metrics.mean_average_precision(scored.gold, scored.probs),
    }


def per_bucket(scored: Scored) -> dict[str, dict[str, float]]:
    """Micro precision, recall and F1 over the codes of each training-count bucket."""
    gold = scored.gold.toarray()
    report = {}
    for name, low, high in BUCKETS:
        columns = (scored.train_counts >= low) & (scored.train_counts <= high)
        g, p = gold[:, columns], scored.predicted[:, columns]
        tp, n_pred, n_gold = int((g & p).sum()), int(p.sum()), int(g.sum())
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
        report[name] = {"gold": n_gold, "precision": precision, "recall": recall, "f1": f1}
    return report


def code_automation(scored: Scored) -> dict[str, float]:
    """The share of gold codes the review policy auto-accepts, and those accepts'
    precision; and, as an upper bound read off dev itself, the largest share of gold codes
    one probability cut accepts at >= 0.95 precision."""
    gold = scored.gold.toarray()
    accepted = scored.accepted
    n_gold = max(int(gold.sum()), 1)
    hits = int((accepted & gold).sum())
    order = np.argsort(-scored.probs, axis=None, kind="stable")
    flat_gold = gold.ravel()[order]
    precision = np.cumsum(flat_gold) / np.arange(1, flat_gold.size + 1)
    covered = np.cumsum(flat_gold) / n_gold
    reaching = covered[precision >= AUTOMATION_PRECISION]
    return {
        "auto_accepted_share_of_gold": hits / n_gold,
        "auto_accepted_precision": hits / max(int(accepted.sum()), 1),
        "dev_oracle_share_at_0.95_precision": float(reaching.max()) if reaching.size else 0.0,
    }


def mattering_ece(scored: Scored, columns: np.ndarray | None = None) -> dict[str, float]:
    """ECE (10 bins) over the pairs that matter: probability >= 0.01 or in a note's top 10
    with a non-zero probability (restricted to `columns` if given), with how many pairs
    that is. An open code never proposed has probability 0: not a candidate."""
    probs = scored.probs if columns is None else scored.probs[:, columns]
    gold = scored.gold.toarray() if columns is None else scored.gold.toarray()[:, columns]
    mask = probs >= MATTERING_PROBABILITY
    if probs.shape[1]:
        top = np.argsort(-probs, axis=1, kind="stable")[:, :MATTERING_TOP_K]
        np.put_along_axis(mask, top, True, axis=1)
        mask &= probs > 0
    p, g = probs[mask].astype(np.float64), gold[mask]
    if not p.size:
        return {"ece": 0.0, "pairs": 0}
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(
        abs(p[bins == b].mean() - g[bins == b].mean()) * (bins == b).sum() / p.size
        for b in range(10)
        if (bins == b).any()
    )
    return {"ece": float(ece), "pairs": int(p.size)}
