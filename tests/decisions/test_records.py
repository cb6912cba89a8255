"""Decision records: one JSON form and one Arrow form, each the inverse of reading it back."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from autocode.decisions.records import (
    DECISIONS_SCHEMA,
    Decision,
    EvidenceSpan,
    Prediction,
    to_arrow,
)

DECISION = Decision(
    codes=["ICD10CM:E11.9"],
    predictions=[
        Prediction("ICD10CM:E11.9", 0.97, True, True, [EvidenceSpan(3, 11, 0.5)], (3, 18)),
        Prediction("ICD10CM:I10", 0.4, False, False),
    ],
    route="review",
    reasons=["uncertain: ICD10CM:I10"],
)


def test_json_round_trip_keeps_every_field() -> None:
    as_json = DECISION.to_json()
    assert as_json["predictions"][0]["evidence"] == [{"start": 3, "end": 11, "weight": 0.5}]
    assert as_json["predictions"][1]["evidence"] == []
    assert [p["rule_span"] for p in as_json["predictions"]] == [{"start": 3, "end": 18}, None]
    assert Decision.from_json(as_json) == DECISION


def test_json_of_format_1_reads_without_rule_spans() -> None:
    """Review cases queued before format 2 have no `rule_span`: no rule accepted them."""
    as_json = DECISION.to_json()
    for prediction in as_json["predictions"]:
        del prediction["rule_span"]
    assert [p.rule_span for p in Decision.from_json(as_json).predictions] == [None, None]


def test_arrow_rows_are_the_json_form_plus_the_model_and_time() -> None:
    coded_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    table = to_arrow(["n1"], [DECISION], "models:/m/1", "sha256:abc", coded_at)
    assert table.schema.equals(DECISIONS_SCHEMA)
    [row] = table.to_pylist()
    assert row == {"note_id": "n1", **DECISION.to_json()} | {
        "model_uri": "models:/m/1",
        "model_version": "sha256:abc",
        "coded_at": coded_at,
    }


def test_an_unknown_route_is_named() -> None:
    with pytest.raises(ValueError, match="route 'maybe' is not one of auto, review"):
        Decision([], [], "maybe")


def test_arrow_columns_equal_the_table_of_the_json_rows() -> None:
    """Built column by column, the table is the one `Table.from_pylist` makes of the JSON
    rows: empty lists, notes without predictions, weights rounded as `to_json` rounds."""
    coded_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    spans = [EvidenceSpan(0, 4, 0.123456789), EvidenceSpan(9, 12, 1 / 3)]
    decisions = [
        DECISION,
        Decision([], [], "review", ["no accepted code"]),
        Decision(
            ["ICD10CM:I10", "ICD10PCS:BW03"],
            [
                Prediction("ICD10CM:I10", 0.91, True, True, spans),
                Prediction("ICD10PCS:BW03", 0.99, True, True),
                Prediction("ICD10CM:E11.9", 0.2, False, True, spans[:1]),
            ],
            "auto",
        ),
    ]
    ids = ["n1", "n2", "n3"]
    table = to_arrow(ids, decisions, "models:/m/1", "sha256:abc", coded_at)
    rows = [
        {"note_id": note_id, **d.to_json(), "model_uri": "models:/m/1"}
        | {"model_version": "sha256:abc", "coded_at": coded_at}
        for note_id, d in zip(ids, decisions, strict=True)
    ]
    assert table.equals(pa.Table.from_pylist(rows, schema=DECISIONS_SCHEMA))
    assert table.to_pylist()[2]["predictions"][0]["evidence"][0]["weight"] == 0.123457
    assert [p["rule_span"] for p in table.to_pylist()[0]["predictions"]] == [
        {"start": 3, "end": 18},
        None,
    ]
    assert to_arrow([], [], "m", "v", coded_at).num_rows == 0
    with pytest.raises(ValueError, match="2 note ids but 1 decisions"):
        to_arrow(["a", "b"], [DECISION], "m", "v", coded_at)
