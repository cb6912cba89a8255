"""The Coder as an MLflow pyfunc model: DataFrame of notes in, decisions out.

The logged signature describes the output and the params, not the input: MLflow's own
input-schema enforcement answers a mismatch (an integer `note_id`, a missing column)
with an error that quotes the whole input frame, note text included, which
`mlflow models serve` returns to the caller and logs. `predict_frame` checks its input
itself, accepts integer ids as strings, and its errors name rows by position only.
"""

from __future__ import annotations

import gc
import json
import numbers
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.pyfunc import PythonModel

from autocode.collector import collector_paused
from autocode.corpus.schema import DEFAULT_MAX_TEXT_CHARS
from autocode.corpus.validity import character_problem, text_too_long
from autocode.decisions.coder import CODER_ARTIFACT, Coder
from autocode.decisions.routing import decide

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
        self.coder = load_for_serving(Path(context.artifacts[CODER_ARTIFACT]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        evidence = (params or {}).get("evidence", PREDICT_PARAMS["evidence"])
        return predict_frame(self.coder, model_input, evidence=bool(evidence))


def pyfunc_script() -> Path:
    """The script logged as the registered model's code (`pyfunc_model.py`): MLflow's
    models from code, so that the model holds no pickle."""
    return Path(__file__).with_name("pyfunc_model.py")


def load_for_serving(directory: Path) -> Coder:
    """The Coder, warmed up, and out of the garbage collector's reach.

    A server holds its Coder (hundreds of thousands of objects: vocabularies, lexicon)
    for its life; left among the collected objects, every full collection would walk
    them all again, inside some request, and that request would pay for it.
    Frozen objects are still freed when nothing refers to them.
    """
    # The batch-coding copy (a transformer's faster CPU encoder): Spark and serving both
    # code in batches.
    coder = warmed_up(Coder.load(directory).for_batch_coding())
    gc.collect()  # garbage of the load and warm-up is not frozen with the Coder
    gc.freeze()
    # The collection walked every object and left them in the CPU's caches: coding the
    # made-up notes again leaves there what coding a note touches (`bench/predict.py`: the
    # demo Coder's first request then costs 1.6x its steady state's, was 2.0-2.3x).
    return warmed_up(coder)


def warmed_up(coder: Coder) -> Coder:
    """The Coder, after coding made-up notes (`Coder.warm_up`) and one through the whole
    request path: the libraries' lazy imports and first-call checks (scikit-learn's input
    validation) are paid at load, not by the first request."""
    coder.warm_up()
    predict_frame(coder, pd.DataFrame({"note_id": ["warm-up"], "text": ["Warm up."]}))
    return coder


def predict_frame(coder: Coder, notes: pd.DataFrame, *, evidence: bool = True) -> pd.DataFrame:
    missing = [column for column in INPUT_COLUMNS if column not in notes.columns]
    if missing:
        raise ValueError(f"input is missing column(s) {missing}; expected {list(INPUT_COLUMNS)}")
    note_ids = [_note_id(position, note_id) for position, note_id in enumerate(notes["note_id"])]
    _check_unique(note_ids)
    texts = [_text(position, text) for position, text in enumerate(notes["text"])]
    if not texts:
        return pd.DataFrame({column: [] for column in OUTPUT_COLUMNS})
    probs = coder.predict_proba(texts)
    evidence_texts = texts if evidence else None
    # The records (many small objects, no cycles) die before the collector, paused while
    # they live, is back: it never walks them.
    with collector_paused():
        decisions = decide(
            coder,
            probs,
            evidence_texts,
            truncated=coder.truncated(texts),
            open_proposals=coder.open_proposals(texts),  # with or without evidence spans
            rule_accepted=coder.rule_accepts(texts, probs),
            unaffirmed=coder.unaffirmed(texts, probs),
        )
        frame = pd.DataFrame(
            {
                "note_id": note_ids,
                "codes": [";".join(d.codes) for d in decisions],
                "predictions": [
                    json.dumps([p.to_json() for p in d.predictions]) for d in decisions
                ],
                "route": [d.route for d in decisions],
                "reasons": [json.dumps(d.reasons) for d in decisions],
            }
        )
        del decisions
    return frame


def coder_signature(output: pd.DataFrame | None = None) -> ModelSignature:
    """Params, and the output columns of `output` if given; no input schema (see the module doc)."""
    # infer_signature describes its first argument as the inputs: used here for the outputs.
    inferred = infer_signature(output, params=PREDICT_PARAMS)
    return ModelSignature(inputs=None, outputs=inferred.inputs, params=inferred.params)


def _note_id(position: int, note_id: object) -> str:
    """A string id, or an integer one as its decimal string (JSON and CSV give either)."""
    if isinstance(note_id, str) and note_id:
        return note_id
    if isinstance(note_id, numbers.Integral) and not isinstance(note_id, bool):
        return str(int(note_id))
    raise ValueError(
        f"row {position}: note_id must be a non-empty string or an integer, "
        f"got {type(note_id).__name__}"
    )


def _check_unique(note_ids: list[str]) -> None:
    """One answer per id, as batch coding quarantines a repeated id (`duplicate_id`)."""
    first: dict[str, int] = {}
    for position, note_id in enumerate(note_ids):
        if note_id in first:
            raise ValueError(f"rows {first[note_id]} and {position}: the same note_id")
        first[note_id] = position


def _text(position: int, text: object) -> str:
    """A text batch coding would code too (`corpus/validity.py`'s rules, its length cap);
    the error names the row and the rule, never the text."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"row {position}: text must be a non-empty string")
    if too_long := text_too_long(text, DEFAULT_MAX_TEXT_CHARS):
        raise ValueError(f"row {position}: text of {too_long}")
    if problem := character_problem("text", text):
        raise ValueError(f"row {position}: {problem}")
    return text
