"""Score a Coder on labelled notes, counting every gold code.

Gold codes outside the Coder's label space cannot be predicted, but they are
still gold: they get extra columns with probability 0, so recall is honest, and
the ranking metrics count them as never retrieved (below every real column).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from autocode import metrics
from autocode.infer.coder import Coder
from autocode.infer.policy import ABOVE_ONE, ReviewPolicy, automation_report
from autocode.knowledge import CodeKnowledge
from autocode.labels import LabelSpace


@dataclass
class Evaluation:
    report: dict[str, Any]
    labels: list[str]  # label space codes, then unseen gold codes
    gold: sp.csr_matrix
    probs: np.ndarray
    predicted: np.ndarray
    known_labels: int

    def per_code_table(self, coder: Coder, knowledge: CodeKnowledge | None) -> pd.DataFrame:
        """Support, P/R/F1, thresholds and (with `knowledge`) the description of every code
        seen or predicted."""
        precision, recall, f1, support = metrics.per_code_prf(self.gold, self.predicted)
        predicted_count = np.asarray(self.predicted.sum(axis=0)).ravel()
        known = self.known_labels
        train_counts = np.concatenate(
            [coder.labels.counts_, np.zeros(len(self.labels) - known, dtype=np.int64)]
        )
        thresholds = np.concatenate(
            [coder.thresholds.per_code, np.full(len(self.labels) - known, np.nan)]
        )
        accept = np.concatenate([coder.policy.accept, np.full(len(self.labels) - known, np.nan)])
        table = pd.DataFrame(
            {
                "code": self.labels,
                "support": support,
                "predicted": predicted_count,
                "train_count": train_counts,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "threshold": thresholds,
                "accept_threshold": accept,
            }
        )
        table = table[(table.support > 0) | (table.predicted > 0)]
        if knowledge is not None:
            table["description"] = [knowledge.description(code) for code in table.code]
        return table.sort_values(["support", "code"], ascending=[False, True])


def evaluate_coder(
    coder: Coder, texts: Sequence[str], codes: Sequence[Sequence[str]]
) -> Evaluation:
    if not texts:
        raise ValueError("no notes to evaluate: the selected split(s) are empty")
    probs = coder.predict_proba(texts)
    known = len(coder.labels)
    labels, gold = _gold_with_unseen(coder.labels, codes)
    unseen = len(labels) - known
    probs_all = np.hstack([probs, np.zeros((len(texts), unseen), dtype=probs.dtype)])
    predicted = np.hstack(
        [coder.thresholds.apply(probs), np.zeros((len(texts), unseen), dtype=bool)]
    )
    train_counts = np.concatenate([coder.labels.counts_, np.zeros(unseen, dtype=np.int64)])
    report = metrics.evaluate(
        gold,
        probs_all,
        predicted,
        labels,
        train_counts=train_counts,
        unranked=np.arange(len(labels)) >= known,
    )
    report.update(automation_report(gold, probs_all, _policy_with_unseen(coder.policy, unseen)))
    report["unseen_gold_codes"] = unseen
    return Evaluation(report, labels, gold, probs_all, predicted, known)


def _gold_with_unseen(
    space: LabelSpace, codes: Sequence[Sequence[str]]
) -> tuple[list[str], sp.csr_matrix]:
    known = list(space.codes_)
    unseen = sorted({c for note_codes in codes for c in note_codes} - set(known))
    # Column order: the Coder's labels first, unseen gold codes after.
    extended = LabelSpace.from_codes(known + unseen)
    return extended.codes_, extended.encode(codes)


def _policy_with_unseen(policy: ReviewPolicy, unseen: int) -> ReviewPolicy:
    """Unseen codes are never accepted and never uncertain: they are missed."""
    return ReviewPolicy(
        accept=np.concatenate([policy.accept, np.full(unseen, ABOVE_ONE)]),
        reject=np.concatenate([policy.reject, np.full(unseen, ABOVE_ONE)]),
        target_precision=policy.target_precision,
        target_recall=policy.target_recall,
        reachable=policy.reachable,
    )
