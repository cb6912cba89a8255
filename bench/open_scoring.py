"""Scoring helpers for bench/codiesp.py over a Coder's widened decisions (its label space
and open part together, `autocode.decisions.widening`): figures over chosen columns, per
training-frequency bucket, code-level automation, and ECE over the pairs that matter."""

from __future__ import annotations

import itertools

import numpy as np

from autocode import metrics
from autocode.decisions.widening import Widened

# The buckets of a code's training count; "unseen" is 0.
BUCKETS = (("unseen", 0, 0), ("1", 1, 1), ("2-5", 2, 5), ("6-50", 6, 50), (">50", 51, 10**9))
AUTOMATION_PRECISION = 0.95


def icd10cm_columns(scored: Widened) -> np.ndarray:
    """The ICD-10-CM columns of widened decisions, label space and outer codes alike."""
    return np.flatnonzero([c.startswith("ICD10CM:") for c in scored.codes])


def overall(scored: Widened, columns: np.ndarray) -> dict[str, float]:
    """Micro P/R/F1 and MAP over `columns`, ranked as `autocode evaluate` ranks them (an
    outer code not proposed in a note is never retrieved there)."""
    report = metrics.evaluate(
        scored.gold[:, columns],
        scored.probs[:, columns],
        scored.predicted[:, columns],
        [scored.codes[j] for j in columns],
        unranked=scored.unranked[..., columns],
    )
    return {key: report[key] for key in ("micro_f1", "micro_precision", "micro_recall", "map")}


def per_bucket(scored: Widened, columns: np.ndarray) -> dict[str, dict[str, float]]:
    """Micro precision, recall and F1 over the codes of each training-count bucket."""
    gold = scored.gold[:, columns].toarray()
    predicted, train_counts = scored.predicted[:, columns], scored.train_counts[columns]
    report = {}
    for name, low, high in BUCKETS:
        bucket = (train_counts >= low) & (train_counts <= high)
        g, p = gold[:, bucket], predicted[:, bucket]
        tp, n_pred, n_gold = int((g & p).sum()), int(p.sum()), int(g.sum())
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
        report[name] = {"gold": n_gold, "precision": precision, "recall": recall, "f1": f1}
    return report


def code_automation(scored: Widened, columns: np.ndarray) -> dict[str, float]:
    """The share of gold codes the review policy auto-accepts, and those accepts'
    precision; and, as an upper bound read off dev itself, the largest share of gold codes
    one probability cut accepts at >= 0.95 precision."""
    gold = scored.gold[:, columns].toarray()
    accepted = scored.accepted[:, columns]
    probs = scored.probs[:, columns]
    n_gold = max(int(gold.sum()), 1)
    hits = int((accepted & gold).sum())
    order = np.argsort(-probs, axis=None, kind="stable")
    flat_gold = gold.ravel()[order]
    precision = np.cumsum(flat_gold) / np.arange(1, flat_gold.size + 1)
    covered = np.cumsum(flat_gold) / n_gold
    reaching = covered[precision >= AUTOMATION_PRECISION]
    return {
        "auto_accepted_share_of_gold": hits / n_gold,
        "auto_accepted_precision": hits / max(int(accepted.sum()), 1),
        "dev_oracle_share_at_0.95_precision": float(reaching.max()) if reaching.size else 0.0,
    }


def mattering_ece(scored: Widened, columns: np.ndarray | None = None) -> dict[str, float]:
    """ECE (10 bins) over the pairs that matter (`metrics.candidate_calibration`: at least
    0.01, or a note's top 10 with a probability above 0), restricted to `columns` if given,
    with how many pairs that is."""
    if columns is None:
        return metrics.candidate_calibration(scored.gold, scored.probs)
    return metrics.candidate_calibration(scored.gold[:, columns], scored.probs[:, columns])


# The probabilities routing acts on: where a code is accepted without review or nearly.
CONFIDENT_BINS = (0.5, 0.7, 0.8, 0.9, 0.95, 1.0)


def confident_reliability(scored: Widened, columns: np.ndarray) -> list[dict[str, float]]:
    """Per bin of CONFIDENT_BINS (the last one closed): how many pairs, their mean
    probability and the share that is gold. ECE over every pair that matters is mostly
    the many unlikely pairs; these are the ones an auto-accept rests on."""
    probs = scored.probs[:, columns]
    gold = scored.gold[:, columns].toarray() > 0
    rows = []
    for low, high in itertools.pairwise(CONFIDENT_BINS):
        inside = (probs >= low) & ((probs < high) if high < 1.0 else (probs <= high))
        pairs = int(inside.sum())
        rows.append(
            {
                "bin": f"{low:.2f}-{high:.2f}",
                "pairs": pairs,
                "mean_probability": float(probs[inside].mean()) if pairs else 0.0,
                "gold_share": float(gold[inside].mean()) if pairs else 0.0,
            }
        )
    return rows
