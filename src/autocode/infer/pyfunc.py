"""The Coder as an MLflow pyfunc model: DataFrame of notes in, decisions out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from autocode.infer.coder import CODER_ARTIFACT, Coder
from autocode.infer.routing import decide

INPUT_COLUMNS = ("note_id", "text")
OUTPUT_COLUMNS = ("note_id", "codes", "predictions", "route", "reasons")
# Inference params of the logged signature, with their defaults: evidence spans are
# optional because they cost several times the prediction itself.
PREDICT_PARAMS = {"evidence": True}


class CoderPyfunc(PythonModel):
    """Input: `note_id` and `text` columns. Output: codes, predictions (JSON), route, reasons.

    `params={"evidence": False}` leaves the evidence spans out of the predictions.
    """

    def load_context(self, context: Any) -> None:
        self.coder = Coder.load(Path(context.artifacts[CODER_ARTIFACT]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        evidence = (params or {}).get("evidence", PREDICT_PARAMS["evidence"])
        return predict_frame(self.coder, model_input, evidence=bool(evidence))


def predict_frame(coder: Coder, notes: pd.DataFrame, *, evidence: bool = True) -> pd.DataFrame:
    missing = [column for column in INPUT_COLUMNS if column not in notes.columns]
    if missing:
        raise ValueError(f"input is missing column(s) {missing}; expected {list(INPUT_COLUMNS)}")
    texts = [_text(position, text) for position, text in enumerate(notes["text"])]
    if not texts:
        return pd.DataFrame({column: [] for column in OUTPUT_COLUMNS})
    probs = coder.predict_proba(texts)
    evidence_texts = texts if evidence else None
    decisions = decide(coder, probs, evidence_texts, truncated=coder.truncated(texts))
    return pd.DataFrame(
        {
            "note_id": [str(note_id) for note_id in notes["note_id"]],
            "codes": [";".join(d.codes) for d in decisions],
            "predictions": [json.dumps(d.predictions) for d in decisions],
            "route": [d.route for d in decisions],
            "reasons": [json.dumps(d.reasons) for d in decisions],
        }
    )


def _text(position: int, text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"row {position}: text must be a non-empty string")
    return text
