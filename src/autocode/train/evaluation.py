"""Score a Coder on labelled notes as it codes them, counting every gold code.

The headline figures score the Coder's label space and its open part's proposals
together (`decisions.widening`): a gold code outside the label space is a hit where the
open part proposed it (proposals are listed from the open part's own threshold) and a
miss where it did not. Gold codes nobody scores stay gold: they get columns with
probability 0, so recall is honest, and the ranking metrics count them as never
retrieved (below every ranked entry).

`label_space_only` repeats the figures without the open part, so a reader sees what it
adds; `open_part` gives its own: the proposals, their precision, and the recall on gold
codes outside the label space (codes training never showed, or too rarely to learn).
Without an open part, both sets of figures are the same.
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
from autocode.decisions.policy import automation_report, code_level_report
from autocode.decisions.widening import Widened, coder_widened
from autocode.knowledge import CodeKnowledge, system_columns

LABEL_SPACE_ONLY = "label_space_only"
OPEN_PART = "open_part"


@dataclass
class Evaluation:
    report: dict[str, Any]
    scored: Widened  # the label space's codes, then the outer ones, as the Coder coded them
    label_space_only: Widened  # the same notes without the open part's proposals

    @property
    def labels(self) -> list[str]:
        return self.scored.codes

    @property
    def gold(self) -> sp.csr_matrix:
        return self.scored.gold

    @property
    def probs(self) -> np.ndarray:
        return self.scored.probs

    @property
    def predicted(self) -> np.ndarray:
        return self.scored.predicted

    def per_code_table(self, coder: Coder, knowledge: CodeKnowledge | None) -> pd.DataFrame:
        """Support, P/R/F1, thresholds and (with `knowledge`) the description of every code
        seen or predicted; an open-part code has the open part's thresholds."""
        precision, recall, f1, support = metrics.per_code_prf(self.gold, self.predicted)
        predicted_count = np.asarray(self.predicted.sum(axis=0)).ravel()
        thresholds, accept = _outer_thresholds(coder, self.labels[self.scored.known :])
        table = pd.DataFrame(
            {
                "code": self.labels,
                "support": support,
                "predicted": predicted_count,
                "train_count": self.scored.train_counts,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "threshold": np.concatenate([coder.thresholds.per_code, thresholds]),
                "accept_threshold": np.concatenate([coder.policy.accept, accept]),
            }
        )
        table = table[(table.support > 0) | (table.predicted > 0)]
        if knowledge is not None:
            table["description"] = [knowledge.description(code) for code in table.code]
        return table.sort_values(["support", "code"], ascending=[False, True])


def evaluate_coder(
    coder: Coder,
    texts: Sequence[str],
    codes: Sequence[Sequence[str]],
    raw: np.ndarray | None = None,
) -> Evaluation:
    """Score `coder` on labelled notes: `texts` and each note's gold `codes`; `raw`: its
    model's scores of `texts` where the caller already has them (not predicted again).

    The Coder predicts calibrated probabilities, applies its thresholds and lists its open
    part's proposals (see the module docstring). The report: `metrics.evaluate` (overall,
    per system, per training-frequency bucket) and the review policy's automation report
    of the Coder as it codes; the same under `label_space_only`; `open_part` (`open_report`);
    and `unseen_gold_codes`, how many distinct gold codes lie outside the label space. The
    returned `Evaluation` also holds the widened scores and gold, with and without the open
    part (`per_code_table` reads the first).
    Logs nothing itself; raises ValueError when there are no notes.
    """
    if not texts:
        raise ValueError("no notes to evaluate: the selected split(s) are empty")
    widened = coder_widened(coder, texts, codes, raw)
    report = scored_report(widened.as_coded)
    report[LABEL_SPACE_ONLY] = scored_report(widened.label_space_only)
    report[OPEN_PART] = open_report(widened.as_coded)
    report["unseen_gold_codes"] = int(widened.label_space_only.outer.sum())
    return Evaluation(report, widened.as_coded, widened.label_space_only)


def scored_report(scored: Widened) -> dict[str, Any]:
    """`metrics.evaluate` of widened decisions, the calibration of the label space's
    candidates (`ece_candidates`), and their policy's automation report."""
    report = metrics.evaluate(
        scored.gold,
        scored.probs,
        scored.predicted,
        scored.codes,
        train_counts=scored.train_counts,
        unranked=scored.unranked,
    )
    # Over the label space's candidates (the learned model's; the open part's are
    # `open_report`'s): where a coder reads the probabilities.
    report["ece_candidates"] = metrics.candidate_calibration(
        scored.gold[:, : scored.known], scored.probs[:, : scored.known]
    )
    if scored.policy is not None:
        report.update(
            automation_report(
                scored.gold, scored.probs, scored.policy, scored.rule_accepted, scored.unaffirmed
            )
        )
        _add_code_automation_per_system(report, scored)
    return report


def _add_code_automation_per_system(report: dict[str, Any], scored: Widened) -> None:
    """Each system's accepts without review, the share of its gold codes they are, and
    their precision: what a coder of that system no longer confirms."""
    accepted, gold, per_system = scored.accepted, scored.gold, report.get("per_system", {})
    for system, columns in system_columns(scored.codes).items():
        if system not in per_system:
            continue
        system_accepted = accepted[:, columns]
        per_system[system].update(
            code_accepted=int(np.count_nonzero(system_accepted)),
            **code_level_report(system_accepted, gold[:, columns]),
        )


def open_report(scored: Widened) -> dict[str, Any]:
    """The open part's figures, overall and per code system: `proposals` (note, code)
    pairs proposed and `proposals_gold` of them gold, their `proposal_precision`;
    `unseen_gold` gold pairs outside the label space and `unseen_recall`, the share of
    them proposed. A ratio with nothing to divide by is undefined: None, like the
    automation figures (`policy.code_level_report`), and not logged. `ece_candidates`: the
    calibration of its proposals (`metrics.candidate_calibration`)."""
    report = _open_counts(scored, np.arange(len(scored.codes)))
    # Every proposal (an outer code not proposed scores 0), however improbable.
    report["ece_candidates"] = metrics.candidate_calibration(
        scored.gold[:, scored.known :], scored.probs[:, scored.known :], min_probability=0.0
    )
    report["per_system"] = {
        system: _open_counts(scored, columns)
        for system, columns in system_columns(scored.codes).items()
    }
    return report


def _open_counts(scored: Widened, columns: np.ndarray) -> dict[str, Any]:
    gold = sp.csr_matrix(scored.gold[:, columns])
    outer = scored.outer[columns]
    proposed = scored.proposed[:, columns]
    proposals = int(proposed.sum())
    hits = int(gold.multiply(proposed).sum())
    unseen_gold = int(gold[:, np.flatnonzero(outer)].sum())
    return {
        "proposals": proposals,
        "proposals_gold": hits,
        "proposal_precision": hits / proposals if proposals else None,
        "unseen_gold": unseen_gold,
        "unseen_recall": hits / unseen_gold if unseen_gold else None,
    }


def _outer_thresholds(coder: Coder, outer: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Listing and accept thresholds of codes outside the label space: their open part's
    for the codes one can propose, NaN for the rest (nothing codes them)."""
    listing, accept = np.full(len(outer), np.nan), np.full(len(outer), np.nan)
    for k, code in enumerate(outer):
        part = coder.open_part_of(code)
        if part is not None:
            listing[k] = part.threshold
            accept[k] = np.nan if part.accept_threshold is None else part.accept_threshold
    return listing, accept
