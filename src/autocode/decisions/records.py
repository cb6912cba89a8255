"""What the Coder decided about a note, as typed records with one Arrow and one JSON form.

`Decision` (route, reasons, auto-accepted codes) holds one `Prediction` per code
the note lists, each with its `EvidenceSpan`s. Every consumer reads these records
through the two forms defined here: the batch output's Parquet parts and Spark
(`to_arrow`), the pyfunc's JSON columns and the review queue (`to_json`). `EvidenceSpan`
and its JSON form are the models' own (`models/evidence.py`), re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from operator import itemgetter
from typing import Any, Self

import numpy as np
import pyarrow as pa

from autocode.models.evidence import WEIGHT_DIGITS, EvidenceSpan

AUTO = "auto"
REVIEW = "review"
ROUTES = (AUTO, REVIEW)
# 2: a prediction says which term rule's mention accepted it (`Prediction.rule_span`).
# Batch output written in another format is not continued (`infer.manifest`).
RECORDS_FORMAT = 2


@dataclass
class Prediction:
    """One code of a note: its calibrated probability and what the policy made of it.

    `accepted`: above the code's review band (auto-coded); `predicted`: at or above its
    decision threshold. A listed code that is neither is uncertain. `rule_span`: where a
    term rule accepted the code (or a backing term, the model's probability at the
    backing threshold), the characters [start, end) of the note's mention of the term
    (`decisions.term_rules`): why no coder was asked, for an auditor.
    """

    code: str
    probability: float
    accepted: bool
    predicted: bool
    evidence: list[EvidenceSpan] = field(default_factory=list)
    rule_span: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "probability": self.probability,
            "accepted": self.accepted,
            "predicted": self.predicted,
            "evidence": [span.to_json() for span in self.evidence],
            "rule_span": _rule_span_struct(self.rule_span),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(
            code=str(value["code"]),
            probability=float(value["probability"]),
            accepted=bool(value["accepted"]),
            predicted=bool(value["predicted"]),
            evidence=[EvidenceSpan.from_json(span) for span in value.get("evidence", [])],
            rule_span=_span_or_none(value.get("rule_span")),  # absent in format 1
        )


def _span_or_none(value: dict[str, Any] | None) -> tuple[int, int] | None:
    return None if value is None else (int(value["start"]), int(value["end"]))


@dataclass
class Decision:
    """What the Coder says about one note: `auto`, or `review` with the reasons why."""

    codes: list[str]  # auto-accepted codes
    predictions: list[Prediction]  # every code not confidently absent, most probable first
    route: str
    reasons: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"route {self.route!r} is not one of {', '.join(ROUTES)}")

    def to_json(self) -> dict[str, Any]:
        return {
            "codes": list(self.codes),
            "predictions": [prediction.to_json() for prediction in self.predictions],
            "route": self.route,
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Self:
        return cls(
            codes=[str(code) for code in value["codes"]],
            predictions=[Prediction.from_json(p) for p in value["predictions"]],
            route=str(value["route"]),
            reasons=[str(reason) for reason in value["reasons"]],
        )


SPAN_ARROW = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("weight", pa.float64())])
RULE_SPAN_ARROW = pa.struct([("start", pa.int32()), ("end", pa.int32())])
PREDICTION_ARROW = pa.struct(
    [
        ("code", pa.string()),
        ("probability", pa.float64()),
        ("accepted", pa.bool_()),
        ("predicted", pa.bool_()),
        ("evidence", pa.list_(SPAN_ARROW)),
        ("rule_span", RULE_SPAN_ARROW),  # null: no term rule accepted the code
    ]
)
DECISIONS_SCHEMA = pa.schema(
    [
        pa.field("note_id", pa.string(), nullable=False),
        pa.field("codes", pa.list_(pa.string())),
        pa.field("predictions", pa.list_(PREDICTION_ARROW)),
        pa.field("route", pa.string()),
        pa.field("reasons", pa.list_(pa.string())),
        pa.field("model_uri", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("coded_at", pa.timestamp("us", tz="UTC")),
    ]
)


def to_arrow(
    note_ids: Sequence[str],
    decisions: Sequence[Decision],
    model_uri: str,
    model_version: str,
    coded_at: datetime,
) -> pa.Table:
    """One row per note in `DECISIONS_SCHEMA`: the batch output's part files.

    The rows of `to_json`, built column by column: one flat list per field and the list
    offsets, not a dict per note, prediction and span (a part holds ~100k spans).
    """
    n_notes = len(note_ids)
    if len(decisions) != n_notes:
        raise ValueError(f"{n_notes} note ids but {len(decisions)} decisions")
    predictions = [p for decision in decisions for p in decision.predictions]
    spans = [span for p in predictions for span in p.evidence]
    # The columns read from the span tuples by `map`s: loops in C, not in Python.
    weights = map(itemgetter(2), spans)
    span_structs = pa.StructArray.from_arrays(
        [
            pa.array(list(map(itemgetter(0), spans)), pa.int32()),
            pa.array(list(map(itemgetter(1), spans)), pa.int32()),
            pa.array(list(map(round, weights, repeat(WEIGHT_DIGITS))), pa.float64()),
        ],
        fields=list(SPAN_ARROW),
    )
    prediction_structs = pa.StructArray.from_arrays(
        [
            pa.array([p.code for p in predictions], pa.string()),
            pa.array([p.probability for p in predictions], pa.float64()),
            pa.array([p.accepted for p in predictions], pa.bool_()),
            pa.array([p.predicted for p in predictions], pa.bool_()),
            _lists([len(p.evidence) for p in predictions], span_structs),
            pa.array([_rule_span_struct(p.rule_span) for p in predictions], RULE_SPAN_ARROW),
        ],
        fields=list(PREDICTION_ARROW),
    )
    columns = [
        pa.array(note_ids, pa.string()),
        _lists(
            [len(d.codes) for d in decisions],
            pa.array([c for d in decisions for c in d.codes], pa.string()),
        ),
        _lists([len(d.predictions) for d in decisions], prediction_structs),
        pa.array([d.route for d in decisions], pa.string()),
        _lists(
            [len(d.reasons) for d in decisions],
            pa.array([r for d in decisions for r in d.reasons], pa.string()),
        ),
        pa.array([model_uri] * n_notes, pa.string()),
        pa.array([model_version] * n_notes, pa.string()),
        pa.array([coded_at] * n_notes, DECISIONS_SCHEMA.field("coded_at").type),
    ]
    return pa.Table.from_arrays(columns, schema=DECISIONS_SCHEMA)


def _rule_span_struct(span: tuple[int, int] | None) -> dict[str, int] | None:
    return None if span is None else {"start": span[0], "end": span[1]}


def _lists(lengths: list[int], values: pa.Array) -> pa.ListArray:
    """Consecutive runs of `values`, one list per length."""
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values)
