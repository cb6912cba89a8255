"""Leases on SQLite and PostgreSQL: one winner per case, stale submits refused, expiry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from autocode.review import DONE, OPEN, ReviewStore, audit, leases
from autocode.review.leases import LeaseError
from review.test_store import ANEMIA, ASTHMA, DIABETES, GOUT, HYPERTENSION, new_case


@pytest.fixture
def store(queue_url: str) -> Iterator[ReviewStore]:
    with ReviewStore(queue_url) as opened:
        opened.enqueue(new_case(i) for i in range(3))
        yield opened


def first_id(store: ReviewStore) -> int:
    return store.cases(OPEN)[0].id


def test_two_reviewers_racing_for_one_case_exactly_one_wins(queue_url: str):
    with ReviewStore(queue_url) as setup:
        setup.enqueue([new_case(0)])
        case_id = first_id(setup)
    stores = [ReviewStore(queue_url) for _ in range(8)]
    start = threading.Barrier(len(stores))
    outcomes: list[str] = [""] * len(stores)

    def race(k: int) -> None:
        start.wait()
        try:
            leases.claim(stores[k], case_id, f"coder-{k}")
            outcomes[k] = "won"
        except LeaseError as error:
            outcomes[k] = str(error)

    threads = [threading.Thread(target=race, args=(k,)) for k in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [k for k, outcome in enumerate(outcomes) if outcome == "won"]
    assert len(winners) == 1
    holder = f"coder-{winners[0]}"
    assert all(f"being reviewed by {holder}" in o for o in outcomes if o != "won")
    for opened in stores:
        opened.close()


def test_two_reviewers_submitting_one_case_lose_no_update(store: ReviewStore):
    case_id = first_id(store)
    first = leases.claim(store, case_id, "coder-a")
    store.clock = lambda: datetime.now(UTC) + timedelta(hours=1)  # coder-a's lease expired
    second = leases.claim(store, case_id, "coder-b")
    with pytest.raises(LeaseError, match=r"no longer valid .*leased to coder-b"):
        leases.submit(store, case_id, first.token, "coder-a", {DIABETES: "reject"})
    codes = leases.submit(store, case_id, second.token, "coder-b", {ANEMIA: "accept"}, [ASTHMA])
    assert codes == [ANEMIA, DIABETES, HYPERTENSION, ASTHMA]
    with pytest.raises(LeaseError, match="already closed"):
        leases.submit(store, case_id, second.token, "coder-b", {})
    case = store.get(case_id)
    assert case.status == DONE and case.reviewed_codes() == codes
    assert {d.reviewer for d in case.decisions} == {"coder-b"}


def test_an_expired_lease_returns_the_case_to_the_queue_but_its_work_stands_until_claimed(
    store: ReviewStore,
):
    case_id = first_id(store)
    lease = leases.claim(store, case_id, "coder-a", ttl=timedelta(minutes=5))
    with pytest.raises(LeaseError, match="being reviewed by coder-a"):
        leases.claim(store, case_id, "coder-b")
    later = datetime.now(UTC) + timedelta(minutes=6)
    store.clock = lambda: later
    # Nobody claimed it since: coder-a's submit, made after a break, is recorded.
    assert leases.submit(store, case_id, lease.token, "coder-a", {DIABETES: "reject"}) == [
        HYPERTENSION
    ]
    assert store.get(case_id).status == DONE

    other = first_id(store)
    stale = leases.claim(store, other, "coder-a", ttl=timedelta(minutes=5))
    store.clock = lambda: later + timedelta(minutes=6)
    nxt = leases.claim_next(store, "coder-b")
    assert nxt is not None and nxt.case_id == other  # back at the head of the queue
    with pytest.raises(LeaseError, match=r"no longer valid .*leased to coder-b"):
        leases.submit(store, other, stale.token, "coder-a", {})


def test_claim_next_hands_concurrent_reviewers_different_cases(store: ReviewStore):
    got = [leases.claim_next(store, f"coder-{k}") for k in range(4)]
    ids = [lease.case_id for lease in got if lease is not None]
    assert len(ids) == len(set(ids)) == 3 and got[3] is None


def test_claim_next_takes_the_least_confident_case_first(queue_url: str):
    with ReviewStore(queue_url) as store:
        sure = new_case(0)
        unsure = new_case(1)
        object.__setattr__(unsure, "predictions", [{"code": GOUT, "probability": 0.52}])
        store.enqueue([sure, unsure])
        lease = leases.claim_next(store, "coder-a")
        assert lease is not None and store.get(lease.case_id).note_id == "note-1"


def test_release_and_reassign_are_audited(store: ReviewStore):
    case_id = first_id(store)
    lease = leases.claim(store, case_id, "coder-a")
    moved = leases.reassign(store, case_id, "coder-b", actor="boss")
    with pytest.raises(LeaseError, match="leased to coder-b"):
        leases.submit(store, case_id, lease.token, "coder-a", {})
    leases.release(store, case_id, actor="boss")
    with pytest.raises(LeaseError, match="it was released"):
        leases.submit(store, case_id, moved.token, "coder-b", {})
    actions = [(e.actor, e.action, e.before, e.target_user) for e in audit.entries(store)]
    assert actions[:3] == [
        ("boss", "release", {"status": OPEN, "lease_holder": "coder-b"}, "coder-b"),  # whose
        ("boss", "reassign", {"status": OPEN, "lease_holder": "coder-a"}, "coder-b"),
        ("coder-a", "claim", {"status": OPEN, "lease_holder": None}, None),
    ]


def test_submit_audit_records_codes_before_and_after_but_no_comment_text(store: ReviewStore):
    case_id = first_id(store)
    lease = leases.claim(store, case_id, "coder-a")
    leases.submit(store, case_id, lease.token, "coder-a", {HYPERTENSION: "reject"}, [], "MRN 99")
    entry = audit.entries(store, case_id=case_id)[0]
    assert entry.before == {"status": OPEN, "codes": [DIABETES, HYPERTENSION]}
    assert entry.after == {"status": DONE, "codes": [DIABETES], "comment": True}
    assert store.get(case_id).decisions[1].model_accepted is True


def test_verdict_on_an_unpredicted_code_is_refused(store: ReviewStore):
    case_id = first_id(store)
    lease = leases.claim(store, case_id, "coder-a")
    with pytest.raises(ValueError, match=f"{ASTHMA} is not predicted"):
        leases.submit(store, case_id, lease.token, "coder-a", {ASTHMA: "accept"})
    assert store.get(case_id).status == OPEN


def test_a_skipped_case_goes_to_others_and_the_skippers_next_passes_it_by(store: ReviewStore):
    first = leases.claim_next(store, "coder-a")
    assert first is not None
    assert leases.skip(store, first.case_id, first.token, "coder-a") is True
    # Given back: coder-a's next passes it by; coder-b's next is that case.
    again = leases.claim_next(store, "coder-a")
    assert again is not None and again.case_id != first.case_id
    other = leases.claim_next(store, "coder-b")
    assert other is not None and other.case_id == first.case_id
    # The old token, on a lease no longer coder-a's, changes nothing.
    assert leases.skip(store, first.case_id, first.token, "coder-a") is False
    assert store.get(first.case_id).lease_holder == "coder-b"
    [entry] = audit.entries(store, action="skip")
    assert (entry.actor, entry.case_id, entry.before, entry.after) == (
        "coder-a",
        first.case_id,
        {"status": OPEN, "lease_holder": "coder-a"},
        {},
    )
    # coder-b skips it too: still not coder-a's next, until the skip is forgotten.
    assert leases.skip(store, other.case_id, other.token, "coder-b") is True
    third = leases.claim_next(store, "coder-a")
    assert third is not None and third.case_id != first.case_id
    store.clock = lambda: datetime.now(UTC) + leases.SKIP_MEMORY + timedelta(minutes=1)
    remembered_no_more = leases.claim_next(store, "coder-a")
    assert remembered_no_more is not None and remembered_no_more.case_id == first.case_id


def test_a_skipped_case_reassigned_to_the_skipper_is_not_passed_over(store: ReviewStore):
    first = leases.claim_next(store, "coder-a")
    assert first is not None and leases.skip(store, first.case_id, first.token, "coder-a")
    leases.reassign(store, first.case_id, "coder-a", actor="admin")
    # Held again: her next is that case, not another one beside it.
    again = leases.claim_next(store, "coder-a")
    assert again is not None and again.case_id == first.case_id
