"""The wrong-password limit, kept in the queue: a sliding window per account and address,
on SQLite and PostgreSQL, with a clock the tests move."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from autocode.review import ReviewStore
from autocode.review.auth import LoginLimiter
from autocode.review.store import LoginFailureRow

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def store(queue_url: str) -> Iterator[ReviewStore]:
    with ReviewStore(queue_url) as store:
        yield store


def limiter(store: ReviewStore, clock: Clock) -> LoginLimiter:
    return LoginLimiter(store, max_failures=3, window_s=600, clock=clock)


def test_an_account_waits_until_its_oldest_counted_failure_leaves_the_window(
    store: ReviewStore,
):
    clock = Clock()
    limit = limiter(store, clock)
    for _ in range(3):
        assert limit.retry_after("Rob", "10.0.0.1") == 0.0
        limit.failed("Rob", "10.0.0.1")
        clock.advance(100)
    # Failures at 0, 100 and 200 s; now 300 s: the one at 0 s leaves the window at 600 s.
    assert limit.retry_after("rob", "10.0.0.2") == pytest.approx(300.0)
    clock.advance(299)
    assert limit.retry_after("ROB", "10.0.0.3") == pytest.approx(1.0)
    clock.advance(1)
    assert limit.retry_after("rob", "10.0.0.1") == 0.0
    # Another account from the same address is not locked (3 of the address's 12).
    assert limit.retry_after("rita", "10.0.0.1") == 0.0


def test_an_address_is_locked_after_four_times_the_accounts_limit(store: ReviewStore):
    clock = Clock()
    limit = limiter(store, clock)
    for k in range(11):
        limit.failed(f"nobody-{k}", "10.0.0.9")
    assert limit.retry_after("rita", "10.0.0.9") == 0.0
    limit.failed("nobody-11", "10.0.0.9")
    assert limit.retry_after("rita", "10.0.0.9") == pytest.approx(600.0)
    assert limit.retry_after("rita", "10.0.0.8") == 0.0


def test_a_right_password_clears_the_accounts_failures_not_the_addresses(store: ReviewStore):
    clock = Clock()
    limit = limiter(store, clock)
    for _ in range(2):
        limit.failed("rob", "10.0.0.1")
    limit.succeeded("rob")
    limit.failed("rob", "10.0.0.1")
    assert limit.retry_after("rob", "10.0.0.1") == 0.0  # 1 failure since, not 3
    with store.reading() as session:
        assert len(session.scalars(select(LoginFailureRow)).all()) == 3 + 1  # address rows


def test_failures_that_left_the_window_are_dropped_and_no_name_is_stored(
    store: ReviewStore,
):
    clock = Clock()
    limit = limiter(store, clock)
    typed = "my Password 123 typed as a name"
    limit.failed(typed, "10.0.0.1")
    clock.advance(601)
    limit.failed("rob", "10.0.0.2")
    with store.reading() as session:
        rows = session.scalars(select(LoginFailureRow)).all()
    assert sorted(row.at for row in rows) == [clock.now, clock.now]  # the old pair is gone
    assert all(len(row.key) == 64 and "rob" not in row.key for row in rows)
    assert limit.retry_after(typed, "10.0.0.1") == 0.0
