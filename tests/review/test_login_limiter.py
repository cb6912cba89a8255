"""The wrong-password limit, kept in the queue: a sliding window per account and address,
on SQLite and PostgreSQL, on the store's clock, which the tests move."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


SECRET = "the servers' shared secret " + "z" * 24


def limiter(store: ReviewStore, clock: Clock) -> LoginLimiter:
    store.clock = clock
    return LoginLimiter(store, SECRET, max_failures=3, window_s=600)


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
    assert limit.retry_after(typed, "10.0.0.1") == 0.0
    # Each key is an HMAC under the servers' secret: not the name or address, nor a
    # plain digest of them, which a dictionary (or every IPv4 address) would reverse.
    plain = [
        hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()
        for kind, value in (("account", "rob"), ("address", "10.0.0.2"))
    ]
    assert {len(row.key) for row in rows} == {64}
    assert not {row.key for row in rows} & set(plain)
    other = LoginLimiter(store, "another secret " + "q" * 24, max_failures=3, window_s=600)
    assert other._account_key("rob") != limit._account_key("rob")
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        files = Path(url.database).parent.glob(Path(url.database).name + "*")  # WAL too
        assert not any(typed.encode() in path.read_bytes() for path in files)


def test_a_success_forgets_expired_failures_of_every_account(store: ReviewStore):
    clock = Clock()
    limit = limiter(store, clock)
    limit.failed("a mistyped name", "10.0.0.1")
    clock.advance(601)
    limit.succeeded("rita")
    with store.reading() as session:
        assert session.scalars(select(LoginFailureRow)).all() == []
