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


def test_arrow_rows_of_several_notes_keep_each_notes_own_lists() -> None:
    # Notes with no prediction, no reason, several spans, a weight that to_json rounds:
    # the column-built table must cut every nested list at the right note.
    decisions = [
        Decision([], [], "review", ["no accepted code"]),
        DECISION,
        Decision(
            ["CPT:99231", "ICD10CM:N44.8"],
            [
                Prediction("CPT:99231", 0.99, True, True, [EvidenceSpan(0, 4, 1 / 3)]),
                Prediction(
                    "ICD10CM:N44.8",
                    0.91,
                    True,
                    True,
                    [EvidenceSpan(5, 9, 0.25), EvidenceSpan(20, 31, 0.125)],
                ),
            ],
            "auto",
        ),
        Decision([], [Prediction("ICD10CM:I10", 0.3, False, False)], "review", ["a", "b"]),
    ]
    coded_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ids = ["n0", "n1", "n2", "n3"]
    rows = to_arrow(ids, decisions, "m", "sha256:abc", coded_at).to_pylist()
    assert [row["note_id"] for row in rows] == ids
    assert [{k: row[k] for k in ("codes", "predictions", "route", "reasons")} for row in rows] == [
        decision.to_json() for decision in decisions
    ]
    assert rows[2]["predictions"][0]["evidence"] == [{"start": 0, "end": 4, "weight": 0.333333}]
    assert rows[2]["predictions"][1]["evidence"][1] == {"start": 20, "end": 31, "weight": 0.125}
    assert rows[0]["predictions"] == [] and rows[2]["reasons"] == []


def test_arrow_refuses_ids_and_decisions_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="2 note ids for 1 decisions"):
        to_arrow(["n1", "n2"], [DECISION], "m", "v", datetime(2026, 1, 1, tzinfo=UTC))


def test_an_unknown_route_is_named() -> None:
    with pytest.raises(ValueError, match="route 'maybe' is not one of auto, review"):
        Decision([], [], "maybe")
