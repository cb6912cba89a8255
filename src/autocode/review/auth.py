"""Reviewer accounts: argon2 password hashes, roles, and the wrong-password rate limit.

Passwords are never stored or logged: only argon2id hashes (argon2-cffi's defaults). An
unknown name costs the same hash check as a wrong password, so timing does not tell which
accounts exist.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from autocode.review import audit
from autocode.review.store import LoginFailureRow, ReviewStore, UserRow

REVIEWER, ADMIN = "reviewer", "admin"
ROLES = (REVIEWER, ADMIN)
MIN_PASSWORD_CHARS = 12
ANONYMOUS = "(not logged in)"  # the audit log's actor of a failed login
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password of any account")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    active: bool
    # Changes with the password and with the account's session epoch (bumped by a log
    # out and a deactivation): a session keeps the stamp it was issued with, so each ends
    # every earlier session, a stolen cookie with it, for good (a reactivated account's
    # old ones too).
    credential_stamp: str = field(default="", repr=False, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"invalid role {role!r}: expected one of {ROLES}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(
            f"the password has {len(password)} characters; at least {MIN_PASSWORD_CHARS} needed"
        )
    return password


def add_user(store: ReviewStore, name: str, role: str, password: str, actor: str) -> User:
    """Create an account; ValueError if the name is taken or the password too short."""
    name = name.strip()
    if not name or len(name) > 255 or any(not c.isprintable() for c in name):
        raise ValueError(f"invalid user name {name!r}: 1-255 printable characters")
    check_role(role)
    password_hash = _HASHER.hash(check_password(password))
    now = store.clock()
    with store.writing() as session:
        if session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
            raise ValueError(f"user {name!r} already exists")
        row = UserRow(name=name, role=role, password_hash=password_hash, created_at=now)
        session.add(row)
        session.flush()
        audit.record(
            session, now, actor, "add_user", target_user=name, after={"role": role, "active": True}
        )
        return _user(row)


def update_user(
    store: ReviewStore,
    name: str,
    actor: str,
    *,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User:
    """Change an account's role, active flag or password (audited; the password never is)."""
    new_hash = None if password is None else _HASHER.hash(check_password(password))
    now = store.clock()
    with store.writing() as session:
        row = session.scalar(select(UserRow).where(UserRow.name == name))
        if row is None:
            raise KeyError(f"no user named {name!r}")
        before = {"role": row.role, "active": row.active}
        if role is not None:
            row.role = check_role(role)
        if active is False or new_hash is not None:
            row.session_epoch += 1  # every session issued before ends
        if active is not None:
            row.active = active
        if new_hash is not None:
            row.password_hash = new_hash
        after = {"role": row.role, "active": row.active, "password_changed": new_hash is not None}
        audit.record(
            session, now, actor, "update_user", target_user=name, before=before, after=after
        )
        return _user(row)


def change_own_password(store: ReviewStore, user: User, current: str, new: str) -> User | None:
    """A user's new password, given their current one (audited as their own change, the
    password never); None when `current` is wrong. Ends the account's earlier sessions.
    A too short `new` is refused first (ValueError), so that the refusal never tells
    whether `current` was right."""
    check_password(new)
    if authenticate(store, user.name, current) is None:
        return None
    return update_user(store, user.name, user.name, password=new)


def record_login(store: ReviewStore, user: User, address: str) -> None:
    """A login, in the audit log: who and from which address (never the password)."""
    now = store.clock()
    with store.writing() as session:
        audit.record(
            session, now, user.name, "login", target_user=user.name, after={"address": address}
        )


def record_failed_login(store: ReviewStore, name: str, address: str) -> None:
    """A wrong name or password, in the audit log, with the address it came from. The
    account is named only where one has that name: a name no account has may be a
    password typed into the name field, and is not written."""
    now = store.clock()
    with store.writing() as session:
        known = session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None
        audit.record(
            session,
            now,
            ANONYMOUS,
            "login failed",
            target_user=name if known else None,
            after={"address": address, "account": "known" if known else "unknown"},
        )


def end_sessions(store: ReviewStore, user_id: int) -> None:
    """Log out: every session of the account issued so far stops opening (its epoch moves
    on), a copied cookie too, not only the browser's; audited."""
    now = store.clock()
    with store.writing() as session:
        row = session.get(UserRow, user_id)
        if row is not None:
            row.session_epoch += 1
            audit.record(session, now, row.name, "logout", target_user=row.name)


def users(store: ReviewStore) -> list[User]:
    with store.reading() as session:
        return [_user(row) for row in session.scalars(select(UserRow).order_by(UserRow.name))]


def user_by_id(store: ReviewStore, user_id: int) -> User | None:
    with store.reading() as session:
        row = session.get(UserRow, user_id)
        return None if row is None else _user(row)


def authenticate(store: ReviewStore, name: str, password: str) -> User | None:
    """The active user with this name and password, else None."""
    with store.reading() as session:
        row = session.scalar(select(UserRow).where(UserRow.name == name))
    try:
        _HASHER.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or not row.active:
        return None
    return _user(row)


def _user(row: UserRow) -> User:
    credentials = f"{row.session_epoch}:{row.password_hash}"
    stamp = hashlib.sha256(credentials.encode("utf-8")).hexdigest()[:32]
    return User(row.id, row.name, row.role, row.active, stamp)


class LoginLimiter:
    """Wrong passwords per account and per address in a sliding window, kept in the queue.

    After `max_failures` failures within `window_s` seconds for an account, or
    `max_failures * 4` from an address (one address may serve several coders), logins are
    refused until the oldest failure leaves the window, or, for an account, until an
    admin sets its password. The failures live in the queue's database
    (`review_login_failures`), so every server process on the queue counts the same ones
    and a restart forgets none, as long as the processes share `secret` (the sessions'
    key, `AUTOCODE_REVIEW_SECRET`; each process's own random one counts per process).
    Each failure is stored under an HMAC of its account or address keyed with `secret`:
    a copy of the queue does not tell which names were typed (a password typed into the
    name field among them) or from where. The processes' clocks (the store's) must agree.
    """

    def __init__(
        self, store: ReviewStore, secret: str, max_failures: int = 5, window_s: float = 900.0
    ) -> None:
        self.store = store
        self.max_failures = max_failures
        self.window = timedelta(seconds=window_s)
        self._secret = secret.encode("utf-8")

    def retry_after(self, account: str, address: str) -> float:
        """Seconds until a login may be tried; 0 when it may now."""
        now = self.store.clock()
        with self.store.reading() as session:
            waits = [
                self._wait(session, self._account_key(account), self.max_failures, now),
                self._wait(session, self._address_key(address), self.max_failures * 4, now),
            ]
        return max(waits)

    def failed(self, account: str, address: str) -> None:
        now = self.store.clock()
        with self.store.writing() as session:
            self._forget_expired(session, now)
            session.add_all(
                LoginFailureRow(key=key, at=now)
                for key in (self._account_key(account), self._address_key(address))
            )

    def succeeded(self, account: str) -> None:
        """The account's failures are forgotten (a right password, or a new one)."""
        with self.store.writing() as session:
            self._forget_expired(session, self.store.clock())
            key = self._account_key(account)
            session.execute(delete(LoginFailureRow).where(LoginFailureRow.key == key))

    def _forget_expired(self, session: Session, now: datetime) -> None:
        """Failures that left the window count no more: dropped at every failure and
        every success, so the table holds little beyond one window's failures."""
        session.execute(delete(LoginFailureRow).where(LoginFailureRow.at <= now - self.window))

    def _wait(self, session: Session, key: str, limit: int, now: datetime) -> float:
        """Seconds until fewer than `limit` of the key's failures are in the window."""
        recent = session.scalars(
            select(LoginFailureRow.at)
            .where(LoginFailureRow.key == key, LoginFailureRow.at > now - self.window)
            .order_by(LoginFailureRow.at.desc())
            .limit(limit)
        ).all()
        if len(recent) < limit:
            return 0.0
        return max(0.0, (recent[-1] + self.window - now).total_seconds())

    def _account_key(self, account: str) -> str:
        return self._key(f"account:{account.lower()}")

    def _address_key(self, address: str) -> str:
        return self._key(f"address:{address}")

    def _key(self, name: str) -> str:
        return hmac.new(self._secret, name.encode("utf-8"), hashlib.sha256).hexdigest()
