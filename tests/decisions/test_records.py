"""Decision records: one JSON form and one Arrow form, each the inverse of reading it back."""

from __future__ import annotations

from datetime import UTC, datetime

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
        Prediction("ICD10CM:E11.9", 0.97, True, True, [EvidenceSpan(3, 11, 0.5)]),
        Prediction("ICD10CM:I10", 0.4, False, False),
    ],
    route="review",
    reasons=["uncertain: ICD10CM:I10"],
)


def test_json_round_trip_keeps_every_field() -> None:
    as_json = DECISION.to_json()
    assert as_json["predictions"][0]["evidence"] == [{"start": 3, "end": 11, "weight": 0.5}]
    assert as_json["predictions"][1]["evidence"] == []
    assert Decision.from_json(as_json) == DECISION


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
