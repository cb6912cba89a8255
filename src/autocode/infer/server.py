"""`autocode serve`: the Coder over HTTP, without note text in any answer.

`POST /invocations` takes what `mlflow models serve` takes for the registered model
(`dataframe_records` or `dataframe_split`, with `note_id` and `text`, and optional
`params: {"evidence": false}`) and answers the same `{"predictions": [...]}`. What differs
is every other answer: MLflow's scoring server quotes a body that is not JSON back to the
caller, and returns a traceback for an error inside the model. Here an error is one
line naming the row, field or byte position (`predict_frame`'s rules: those of batch
coding), a body over the size cap is refused unread, and nothing of the body is logged.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from autocode.decisions.coder import Coder
from autocode.infer.pyfunc import INPUT_COLUMNS, PREDICT_PARAMS, predict_frame

logger = logging.getLogger(__name__)
DEFAULT_MAX_BODY_BYTES = 20 * 2**20  # 20 notes of 1,000,000 characters


class RequestError(ValueError):
    """A request the server refuses; the message names what, never the content."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ServedModel:
    coder: Coder
    uri: str  # as the operator named it
    version: str  # `loading.model_identity`: the content, whatever the address


def create_app(model: ServedModel, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    app = FastAPI(title="autocode", docs_url=None, redoc_url=None, openapi_url=None)
    # One prediction at a time: a Coder's caches are not shared between threads, and a
    # CPU-bound request gains nothing from another beside it.
    predicting = threading.Lock()

    def predict(notes: pd.DataFrame, evidence: bool) -> pd.DataFrame:
        with predicting:
            return predict_frame(model.coder, notes, evidence=evidence)

    @app.get("/ping")
    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": model.uri, "model_version": model.version}

    @app.post("/invocations")
    async def invocations(request: Request) -> JSONResponse:
        try:
            body = await _body(request, max_body_bytes)
            notes, evidence = _notes(body)
            # Off the event loop, so that /ping answers while a long request is coded.
            frame = await run_in_threadpool(predict, notes, evidence)
        except RequestError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        except ValueError as error:  # `predict_frame`'s: a row and a rule, no text
            return JSONResponse({"error": str(error)}, status_code=400)
        except Exception as error:  # any other failure: its kind only, never its message
            logger.error("prediction failed: %s", type(error).__name__)
            return JSONResponse({"error": "internal error"}, status_code=500)
        return JSONResponse({"predictions": frame.to_dict(orient="records")})

    return app


async def _body(request: Request, max_body_bytes: int) -> Any:
    """The request's JSON, read only up to the cap; errors say where, never what."""
    if "json" not in request.headers.get("content-type", ""):
        raise RequestError("send application/json", status=415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body_bytes:
        raise RequestError(_too_large(max_body_bytes), status=413)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_body_bytes:
            raise RequestError(_too_large(max_body_bytes), status=413)
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(f"body is not UTF-8 (byte {error.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(
            f"body is not JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None


def _too_large(max_body_bytes: int) -> str:
    return f"body over {max_body_bytes:,} bytes (autocode serve --max-body-mb)"


def _notes(body: Any) -> tuple[pd.DataFrame, bool]:
    """The notes frame and the evidence flag of an MLflow-style request body."""
    if not isinstance(body, dict):
        raise RequestError("body must be a JSON object with dataframe_records or dataframe_split")
    params = body.get("params") or {}
    evidence = (
        params.get("evidence", PREDICT_PARAMS["evidence"]) if isinstance(params, dict) else None
    )
    if not isinstance(evidence, bool):
        raise RequestError("params.evidence must be true or false")
    if "dataframe_records" in body:
        records = body["dataframe_records"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RequestError("dataframe_records must be a list of objects")
        return pd.DataFrame.from_records(records, columns=_columns(records)), evidence
    if "dataframe_split" in body:
        split = body["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
            raise RequestError("dataframe_split must be an object with columns and data")
        data = split.get("data")
        if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
            raise RequestError("dataframe_split.data must be a list of rows")
        columns = split["columns"]
        for position, row in enumerate(data):
            if len(row) != len(columns):
                raise RequestError(f"row {position}: {len(row)} values for {len(columns)} columns")
        return pd.DataFrame(data, columns=columns), evidence
    raise RequestError("body must hold dataframe_records or dataframe_split")


def _columns(records: list[dict[str, Any]]) -> list[str]:
    """The input columns and any others the records carry (an empty list: the inputs)."""
    seen = dict.fromkeys(INPUT_COLUMNS)
    for record in records:
        seen.update(dict.fromkeys(record))
    return [str(column) for column in seen]
