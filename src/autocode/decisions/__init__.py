"""The decision layer: calibration, thresholds, review bands, routing and the Coder.

Used by `train/` (tuning) and `infer/` (execution) alike; it never imports either.
"""

from autocode.decisions.coder import Coder
from autocode.decisions.records import AUTO, REVIEW, Decision, EvidenceSpan, Prediction
from autocode.decisions.routing import decide

__all__ = ["AUTO", "REVIEW", "Coder", "Decision", "EvidenceSpan", "Prediction", "decide"]
