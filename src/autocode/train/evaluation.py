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
from autocode.decisions.coder import Coder
from autocode.decisions.policy import ABOVE_ONE, ReviewPolicy, automation_report
from autocode.knowledge import CodeKnowledge
from autocode.labels import GoldWithUnseen, gold_with_unseen


@dataclass
class Evaluation:
    report: dict[str, Any]
    scored: GoldWithUnseen  # label space codes, then unseen gold codes, and their gold
    probs: np.ndarray
    predicted: np.ndarray

    @property
    def labels(self) -> list[str]:
        return self.scored.labels

    @property
    def gold(self) -> sp.csr_matrix:
        return self.scored.gold

    def per_code_table(self, coder: Coder, knowledge: CodeKnowledge | None) -> pd.DataFrame:
        """Support, P/R/F1, thresholds and (with `knowledge`) the description of every code
        seen or predicted."""
        precision, recall, f1, support = metrics.per_code_prf(self.gold, self.predicted)
        predicted_count = np.asarray(self.predicted.sum(axis=0)).ravel()
        known = self.scored.known
        train_counts = self.scored.pad(coder.labels.counts_[np.newaxis, :])[0]
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
    """Score `coder` on labelled notes: `texts` and each note's gold `codes`.

    The Coder predicts calibrated probabilities and applies its thresholds; gold codes
    outside its label space are kept as extra columns it cannot predict (see the module
    docstring). The returned `Evaluation` holds the metrics report (`metrics.evaluate`:
    overall, per system and per training-frequency bucket, plus the review policy's
    automation report and `unseen_gold_codes`), the scored codes and gold, and the padded
    probabilities and predictions, for `per_code_table`. Logs nothing itself; raises
    ValueError when there are no notes.
    """
    if not texts:
        raise ValueError("no notes to evaluate: the selected split(s) are empty")
    probs = coder.predict_proba(texts)
    scored = gold_with_unseen(coder.labels, codes)
    probs_all = scored.pad(probs)
    predicted = scored.pad(coder.thresholds.apply(probs))
    train_counts = scored.pad(coder.labels.counts_[np.newaxis, :])[0]
    report = metrics.evaluate(
        scored.gold,
        probs_all,
        predicted,
        scored.labels,
        train_counts=train_counts,
        unranked=scored.unranked,
    )
    policy = _policy_with_unseen(coder.policy, scored.unseen)
    report.update(automation_report(scored.gold, probs_all, policy))
    report["unseen_gold_codes"] = scored.unseen
    return Evaluation(report, scored, probs_all, predicted)


def _policy_with_unseen(policy: ReviewPolicy, unseen: int) -> ReviewPolicy:
    """Unseen codes are never accepted and never uncertain: they are missed."""
    return ReviewPolicy(
        accept=np.concatenate([policy.accept, np.full(unseen, ABOVE_ONE)]),
        reject=np.concatenate([policy.reject, np.full(unseen, ABOVE_ONE)]),
        target_precision=policy.target_precision,
        target_recall=policy.target_recall,
        reachable=policy.reachable,
    )
