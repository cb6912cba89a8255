"""Figures logged with every run: reliability, precision-recall, automation trade-off.

Figures are built with `Figure` directly, not pyplot: no global backend is
touched, so this works on servers, in CI and inside notebooks alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from autocode import metrics


def reliability_figure(
    gold: sp.csr_matrix, raw: np.ndarray, calibrated: np.ndarray, title: str
) -> Figure:
    figure, axis = _figure((5, 5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    for name, probs in (("raw", raw), ("calibrated", calibrated)):
        curve = metrics.reliability_curve(gold, probs, n_bins=10)
        ece = metrics.expected_calibration_error(gold, probs)
        filled = curve.count > 0
        axis.plot(
            curve.mean_predicted[filled],
            curve.observed_frequency[filled],
            marker="o",
            label=f"{name} (ECE {ece:.3f})",
        )
    axis.set(xlabel="predicted probability", ylabel="observed frequency", title=title)
    axis.legend(loc="upper left")
    return figure


def precision_recall_figure(gold: sp.csr_matrix, probs: np.ndarray, title: str) -> Figure:
    """Micro precision and recall over all (note, code) pairs as the threshold moves."""
    thresholds = np.linspace(0.01, 0.99, 50)
    points = [metrics.micro_prf(gold, probs >= t) for t in thresholds]
    figure, axis = _figure((5, 5))
    axis.plot([p.recall for p in points], [p.precision for p in points], marker=".")
    axis.set(xlabel="micro recall", ylabel="micro precision", title=title, xlim=(0, 1), ylim=(0, 1))
    return figure


def automation_figure(curve: list[dict[str, Any]], title: str) -> Figure:
    return _curves_by_target(
        curve, title, ("automation_rate", "automation"), ("auto_precision", "auto precision")
    )


def code_automation_figure(curve: list[dict[str, Any]], title: str) -> Figure:
    """Code level: the share of gold codes accepted without review, and the precision of
    the accepted codes, per target precision (the note-level plot is flat where every note
    holds some uncertain code)."""
    return _curves_by_target(
        curve,
        title,
        ("code_automation_rate", "gold codes"),
        ("code_auto_precision", "accepted precision"),
    )


def _curves_by_target(
    curve: list[dict[str, Any]], title: str, share: tuple[str, str], precision: tuple[str, str]
) -> Figure:
    """Two of the curve's columns, each (key, legend label), against the target precision."""
    figure, axis = _figure((6, 4))
    targets = [row["target_precision"] for row in curve]
    for (key, label), marker in ((share, "o"), (precision, "s")):
        values = [np.nan if row[key] is None else row[key] for row in curve]  # undefined
        axis.plot(targets, values, marker=marker, label=label)
    axis.set(xlabel="target precision", ylabel="share", title=title, ylim=(0, 1.02))
    axis.legend()
    return figure


def _figure(size: tuple[float, float]) -> tuple[Figure, Axes]:
    figure = Figure(figsize=size, layout="tight")
    return figure, figure.add_subplot()
