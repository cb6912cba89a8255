"""The review queue store, against SQLite and a real PostgreSQL (see conftest.py)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from autocode.decisions.records import REVIEW, Decision, Prediction
from autocode.review import (
    ACCEPT,
    ADD,
    DONE,
    IN_REVIEW,
    OPEN,
    REJECT,
    EnqueueResult,
    NewCase,
    ReviewStore,
    default_queue_url,
)
from autocode.review import store as store_module
from autocode.review.store import QueueUnavailableError, check_queue

TEXT = "Type 2 diabetes, on metformin. Hypertension noted."
DIABETES, HYPERTENSION, ANEMIA, GOUT, ASTHMA, MIGRAINE = (
    "ICD10CM:E11.9",
    "ICD10CM:I10",
    "ICD10CM:D64.9",
    "ICD10CM:M10.9",
    "ICD10CM:J45.909",
    "ICD10CM:G43.909",
)
PREDICTIONS: list[dict[str, Any]] = [
    {
        "code": DIABETES,
        "probability": 0.97,
        "accepted": True,
        "predicted": True,
        "evidence": [{"start": 0, "end": 15, "weight": 0.8}],
    },
    {"code": HYPERTENSION, "probability": 0.91, "accepted": True, "predicted": True},
    {"code": ANEMIA, "probability": 0.55, "accepted": False, "predicted": True},
    {"code": GOUT, "probability": 0.40, "accepted": False, "predicted": False},
]


def new_case(note: int, version: str = "1", text: str = TEXT) -> NewCase:
    return NewCase(
        note_id=f"note-{note}",
        model_uri=f"models:/autocode/{version}",
        model_version=version,
        text=text,
        reasons=[f"uncertain: {ANEMIA}", f"uncertain: {GOUT}"],
        predictions=PREDICTIONS,
    )


@pytest.fixture
def store(queue_url: str) -> Iterator[ReviewStore]:
    with ReviewStore(queue_url) as opened:
        yield opened


def test_default_queue_is_a_sqlite_file_in_the_current_directory(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.undo()  # conftest points every test's default queue at its tmp dir
    assert default_queue_url() == "sqlite:///review-queue.db"


def test_enqueue_inserts_every_new_case(store: ReviewStore):
    assert store.enqueue(new_case(i) for i in range(5)) == EnqueueResult(5, 0)
    assert store.count() == store.count(OPEN) == 5
    assert store.count(DONE) == 0


def test_enqueue_again_inserts_nothing(store: ReviewStore):
    store.enqueue(new_case(i) for i in range(5))
    assert store.enqueue(new_case(i) for i in range(5)) == EnqueueResult(0, 5)
    assert store.count() == 5


def test_enqueue_mixed_batch_inserts_only_the_new_cases(store: ReviewStore):
    store.enqueue(new_case(i) for i in range(3))
    # 1 and 2 are queued, 3 and 4 are new, and 4 repeats within the batch.
    batch = [new_case(1), new_case(2), new_case(3), new_case(4), new_case(4)]
    assert store.enqueue(batch) == EnqueueResult(inserted=2, already_present=3)
    assert store.count() == 5


def test_same_note_under_a_new_model_version_is_a_new_case(store: ReviewStore):
    store.enqueue([new_case(0, version="1")])
    assert store.enqueue([new_case(0, version="2")]) == EnqueueResult(1, 0)
    assert sorted(case.model_version for case in store.cases()) == ["1", "2"]


def test_case_round_trips_text_reasons_and_predictions_with_evidence(store: ReviewStore):
    store.enqueue([new_case(0)])
    (listed,) = store.cases(OPEN)
    case = store.get(listed.id)
    assert (case.note_id, case.model_uri, case.model_version) == (
        "note-0",
        "models:/autocode/1",
        "1",
    )
    assert case.text == TEXT
    assert case.reasons == [f"uncertain: {ANEMIA}", f"uncertain: {GOUT}"]
    assert case.predictions == PREDICTIONS
    span = case.predictions[0]["evidence"][0]
    assert case.text[span["start"] : span["end"]] == "Type 2 diabetes"
    assert (case.status, case.decisions) == (OPEN, [])
    assert case.created_at.tzinfo == UTC


def test_decisions_and_export_give_the_reviewed_codes(store: ReviewStore):
    store.enqueue([new_case(0), new_case(1)])
    case_id = store.cases()[0].id
    store.record_decision(case_id, HYPERTENSION, REJECT, "coder-a")  # model accepted it
    store.record_decision(case_id, ANEMIA, ACCEPT, "coder-a")  # uncertain, now in
    store.record_decision(case_id, "icd10cm:j45909", ADD, "coder-a", comment="wheeze")  # normalised
    store.record_decision(case_id, MIGRAINE, ADD, "coder-a")
    store.record_decision(case_id, MIGRAINE, REJECT, "coder-b")  # the later decision wins
    assert store.get(case_id).status == IN_REVIEW
    store.close_case(case_id)

    case = store.get(case_id)
    assert case.status == DONE
    assert [(d.code, d.action, d.reviewer) for d in case.decisions][2] == (ASTHMA, ADD, "coder-a")
    assert case.decisions[2].comment == "wheeze"
    # Model accepted {E11.9, I10}; - I10 + D64.9 + J45.909 (+ G43.909 - G43.909); M10.9 untouched.
    expected = {"note_id": "note-0", "text": TEXT, "codes": [ANEMIA, DIABETES, ASTHMA]}
    assert list(store.export_reviewed()) == [expected]  # note-1 is still open


def test_export_keeps_the_latest_review_of_a_note(store: ReviewStore):
    store.enqueue([new_case(0, version="1"), new_case(0, version="2")])
    first, second = store.cases()
    store.record_decision(second.id, GOUT, ACCEPT, "coder-a")
    store.close_case(second.id)
    store.close_case(first.id)
    assert [note["codes"] for note in store.export_reviewed()] == [[DIABETES, HYPERTENSION]]


def test_invalid_action_error_names_the_value(store: ReviewStore):
    store.enqueue([new_case(0)])
    with pytest.raises(ValueError, match="'approve'"):
        store.record_decision(store.cases()[0].id, DIABETES, "approve", "coder-a")


def test_accepting_an_unpredicted_code_or_deciding_on_a_done_case_is_refused(
    store: ReviewStore,
):
    store.enqueue([new_case(0)])
    case_id = store.cases()[0].id
    with pytest.raises(ValueError, match=f"cannot accept {ASTHMA}.*use 'add'"):
        store.record_decision(case_id, ASTHMA, ACCEPT, "coder-a")
    store.close_case(case_id)
    with pytest.raises(ValueError, match="done"):
        store.record_decision(case_id, DIABETES, ACCEPT, "coder-a")
    with pytest.raises(KeyError, match="no review case"):
        store.get(case_id + 100)


def test_two_stores_enqueueing_overlapping_batches_create_no_duplicates(queue_url: str):
    stores = [ReviewStore(queue_url), ReviewStore(queue_url)]
    batches = [range(0, 60), range(30, 90)]
    start = threading.Barrier(2)
    results: list[EnqueueResult] = [EnqueueResult(0, 0)] * 2

    def enqueue(k: int) -> None:
        start.wait()
        results[k] = stores[k].enqueue(new_case(i) for i in batches[k])

    threads = [threading.Thread(target=enqueue, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[0].count() == 90
    assert sum(result.inserted for result in results) == 90
    assert [result.inserted + result.already_present for result in results] == [60, 60]
    for opened in stores:
        opened.close()


def test_insert_race_falls_back_to_insert_or_skip_per_case(
    store: ReviewStore, monkeypatch: pytest.MonkeyPatch
):
    store.enqueue(new_case(i) for i in range(3))
    # As if another writer committed cases 0-2 after this writer looked them up.
    monkeypatch.setattr(store_module, "_existing_keys", lambda session, keys: set())
    assert store.enqueue(new_case(i) for i in range(5)) == EnqueueResult(2, 3)
    assert store.count() == 5


def test_new_case_from_a_routing_decision():
    predictions = [Prediction.from_json(prediction) for prediction in PREDICTIONS]
    decision = Decision([DIABETES, HYPERTENSION], predictions, REVIEW, ["uncertain: X"])
    case = NewCase.from_decision("note-0", TEXT, decision, "models:/autocode/3", "3")
    assert case.key == ("note-0", "3")
    expected = [prediction.to_json() for prediction in predictions]
    assert (case.reasons, case.predictions, case.text) == (["uncertain: X"], expected, TEXT)
    assert case.predictions[0] is not PREDICTIONS[0]  # a copy: the queue owns it


def test_note_text_stays_out_of_errors_and_reprs():
    secret = "Patient Jane Roe, MRN 12345, seen today."
    assert secret not in repr(new_case(0, text=secret))
    with pytest.raises(ValueError, match=r"evidence span 0-15 for ICD10CM:E11\.9") as error:
        new_case(0, text=secret[:10])
    assert secret[:10] not in str(error.value)


def test_a_new_sqlite_queue_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask, under which SQLite's files are 0644
    try:
        with ReviewStore(f"sqlite:///{tmp_path / 'queue.db'}") as store:
            store.enqueue([new_case(1)])
            files = sorted(tmp_path.glob("queue.db*"))  # the database, its -wal and -shm
            assert {path.name for path in files} >= {"queue.db", "queue.db-wal"}
            modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files}
    finally:
        os.umask(previous)
    assert set(modes.values()) == {0o600}, modes


def test_check_queue_names_a_bad_url_and_hides_the_password(tmp_path: Path) -> None:
    with pytest.raises(QueueUnavailableError, match="not a database URL"):
        check_queue("notaurl")
    with pytest.raises(QueueUnavailableError) as raised:
        check_queue("postgresql+psycopg://coder:s3cret@127.0.0.1:9/queue")
    assert "s3cret" not in str(raised.value) and "127.0.0.1:9" in str(raised.value)
    check_queue(f"sqlite:///{tmp_path / 'ok.db'}")  # a good one passes and creates the tables
    with ReviewStore(f"sqlite:///{tmp_path / 'ok.db'}") as store:
        assert store.count() == 0
