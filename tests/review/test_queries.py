"""The queue's filters: which cases a code, system or reason filter finds."""

from __future__ import annotations

import dataclasses

import pytest

from autocode.review import ReviewStore
from autocode.review.queries import QueueFilter, queue_page
from review.test_store import new_case

GOUT, CPT_VISIT = "ICD10CM:M10.9", "CPT:99213"


@pytest.fixture
def store(queue_url: str):
    with ReviewStore(queue_url) as opened:
        diabetes = new_case(0)  # diabetes, hypertension, anemia, gout: the test cases' codes
        visit = dataclasses.replace(
            new_case(1),
            predictions=[{"code": CPT_VISIT, "probability": 0.6}],
            reasons=[f"uncertain: {CPT_VISIT}"],
        )
        opened.enqueue([diabetes, visit])
        yield opened


def found(store: ReviewStore, **filters: str) -> list[str]:
    return [row.note_id for row in queue_page(store, QueueFilter(**filters)).rows]


def test_a_code_is_found_written_whole_or_bare_in_any_system(store: ReviewStore):
    assert found(store, code=GOUT) == ["note-0"]
    assert found(store, code="m10.9") == ["note-0"]  # bare, System "any": every system tried
    assert found(store, code="99213") == ["note-1"]  # CPT, PCS prefix and ICD-9 forms alike
    assert found(store, code="M10.9", system="ICD10CM") == ["note-0"]
    assert found(store, code="I21.9") == []


def test_system_and_reason_filters(store: ReviewStore):
    assert found(store, system="CPT") == ["note-1"]
    assert found(store, reason="M10.9") == ["note-0"]
    assert sorted(found(store)) == ["note-0", "note-1"]


def test_a_bad_filter_is_named(store: ReviewStore):
    with pytest.raises(ValueError, match=r"invalid code filter 'XYZ!'"):
        found(store, code="XYZ!")
    with pytest.raises(ValueError, match=r"invalid status filter 'lost'"):
        found(store, status="lost")
