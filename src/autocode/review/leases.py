"""Claiming and submitting cases: a reviewer works on a case under a time-limited lease.

A claim is one conditional UPDATE (the case is not done, and nobody else holds a live
lease), so of two reviewers racing for a case exactly one gets it, on SQLite (writers queue
on BEGIN IMMEDIATE) and on PostgreSQL (the second UPDATE re-checks the row once the first
commits). A submit carries the lease's token: one that expired, was released or was
reassigned, or a case already closed, is refused with a LeaseError that says which, so no
decision overwrites another. An expired lease needs no sweeper: claims ignore it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from autocode.codes.systems import CodeError, normalize_code
from autocode.review import audit
from autocode.review.store import (
    ACCEPT,
    ADD,
    DONE,
    REJECT,
    AuditRow,
    CaseRow,
    DecisionRow,
    ReviewStore,
    _decision_snapshot,
    reviewed_codes,
)

DEFAULT_LEASE = timedelta(minutes=30)
# A case a reviewer skipped goes to others; their own "next" passes over it this long.
SKIP_MEMORY = timedelta(hours=12)
SKIP = "skip"
MAX_COMMENT_CHARS = 4000
_NEXT_CANDIDATES = 20


class LeaseError(ValueError):
    """The case cannot be claimed, or a decision on it is refused; the message says why."""


@dataclass(frozen=True)
class Lease:
    case_id: int
    holder: str
    token: str
    expires_at: datetime


def available(reviewer: str, now: datetime) -> ColumnElement[bool]:
    """Cases `reviewer` may claim: not done, and unleased, expired or already theirs."""
    return and_(
        CaseRow.status != DONE,
        or_(
            CaseRow.lease_holder.is_(None),
            CaseRow.lease_expires_at <= now,
            CaseRow.lease_holder == reviewer,
        ),
    )


def claim(store: ReviewStore, case_id: int, reviewer: str, ttl: timedelta = DEFAULT_LEASE) -> Lease:
    """Lease the case to `reviewer` (renewing their own lease with a new token)."""
    now = store.clock()
    with store.writing() as session:
        before = _lease_state(session, case_id, now)
        lease = _take(session, case_id, reviewer, now, ttl)
        if lease is None:
            raise LeaseError(_why_unavailable(session, case_id, reviewer, now))
        audit.record(
            session, now, reviewer, "claim", case_id=case_id, before=before, after=_state(lease)
        )
        return lease


def claim_next(
    store: ReviewStore,
    reviewer: str,
    ttl: timedelta = DEFAULT_LEASE,
    filters: Sequence[ColumnElement[bool]] = (),
) -> Lease | None:
    """Lease the highest-priority case `reviewer` may claim; None when the queue is empty."""
    now = store.clock()
    with store.writing() as session:
        # SKIP LOCKED (PostgreSQL) sends concurrent reviewers to different cases instead of
        # queueing them all behind the first; SQLite writers are serialised anyway.
        candidates = session.scalars(
            select(CaseRow.id)
            .where(available(reviewer, now), _not_skipped(reviewer, now), *filters)
            .order_by(CaseRow.confidence, CaseRow.id)
            .limit(_NEXT_CANDIDATES)
            .with_for_update(skip_locked=True)
        ).all()
        for case_id in candidates:
            before = _lease_state(session, case_id, now)
            lease = _take(session, case_id, reviewer, now, ttl)
            if lease is not None:
                audit.record(
                    session,
                    now,
                    reviewer,
                    "claim",
                    case_id=case_id,
                    before=before,
                    after=_state(lease),
                )
                return lease
    return None


def held_lease(store: ReviewStore, case_id: int, reviewer: str) -> Lease | None:
    """`reviewer`'s live lease on the case, if any."""
    now = store.clock()
    with store.reading() as session:
        row = session.get(CaseRow, case_id)
        if row is None:
            raise KeyError(f"no review case with id {case_id!r}")
        live = row.lease_expires_at is not None and row.lease_expires_at > now
        if row.status == DONE or row.lease_holder != reviewer or not live:
            return None
        assert row.lease_token is not None and row.lease_expires_at is not None
        return Lease(case_id, reviewer, row.lease_token, row.lease_expires_at)


def submit(
    store: ReviewStore,
    case_id: int,
    token: str,
    reviewer: str,
    verdicts: Mapping[str, str],
    added: Sequence[str] = (),
    comment: str | None = None,
) -> list[str]:
    """Record the reviewer's verdict on every predicted code and the codes they added, and
    close the case; the note's codes after review.

    `verdicts` maps predicted codes to accept/reject; a predicted code left out keeps the
    model's call. Refused (LeaseError) unless `token` is `reviewer`'s lease, live, or
    expired with nobody having claimed the case since.
    """
    if comment is not None and len(comment) > MAX_COMMENT_CHARS:
        raise ValueError(f"comment is {len(comment)} characters; at most {MAX_COMMENT_CHARS}")
    now = store.clock()
    with store.writing() as session:
        case = session.get(CaseRow, case_id, with_for_update=True)
        if case is None:
            raise KeyError(f"no review case with id {case_id!r}")
        _check_lease(case, token, reviewer)
        before = {"status": case.status, "codes": _codes(case)}
        rows = _decision_rows(case, verdicts, added, reviewer, now)
        session.add_all(rows)
        case.status, case.comment, case.updated_at = DONE, comment or None, now
        case.lease_holder = case.lease_token = case.lease_expires_at = None
        session.flush()
        session.refresh(case, ["decisions"])
        codes = _codes(case)
        after = {"status": DONE, "codes": codes, "comment": bool(comment)}
        audit.record(session, now, reviewer, "submit", case_id=case_id, before=before, after=after)
        return codes


def skip(store: ReviewStore, case_id: int, token: str, reviewer: str) -> bool:
    """Give the case back to the queue for others: `reviewer`'s own lease, by its token.
    Their `claim_next` passes over it for `SKIP_MEMORY`; they can still open it from the
    queue. False, and nothing changed, where the lease is no longer theirs (expired and
    claimed, released, reassigned) or the case is closed."""
    now = store.clock()
    with store.writing() as session:
        before = _lease_state(session, case_id, now)
        result = session.execute(
            update(CaseRow)
            .where(
                CaseRow.id == case_id,
                CaseRow.status != DONE,
                CaseRow.lease_holder == reviewer,
                CaseRow.lease_token == token,
            )
            .values(lease_holder=None, lease_token=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            return False
        audit.record(session, now, reviewer, SKIP, case_id=case_id, before=before, after={})
        return True


def _not_skipped(reviewer: str, now: datetime) -> ColumnElement[bool]:
    """Cases `reviewer` did not skip within `SKIP_MEMORY` (the audit log says which), or
    holds now all the same (reassigned to them since): a held case is never passed over."""
    skipped = select(AuditRow.case_id).where(
        AuditRow.action == SKIP,
        AuditRow.actor == reviewer,
        AuditRow.at > now - SKIP_MEMORY,
        AuditRow.case_id.is_not(None),  # NOT IN over a NULL would match nothing
    )
    held = and_(CaseRow.lease_holder == reviewer, CaseRow.lease_expires_at > now)
    return or_(CaseRow.id.not_in(skipped), held)


def release(store: ReviewStore, case_id: int, actor: str) -> None:
    """End any lease on the case, returning it to the queue (an admin action)."""
    now = store.clock()
    with store.writing() as session:
        before = _lease_state(session, case_id, now)
        session.execute(
            update(CaseRow)
            .where(CaseRow.id == case_id)
            .values(lease_holder=None, lease_token=None, lease_expires_at=None)
        )
        audit.record(
            session,
            now,
            actor,
            "release",
            case_id=case_id,
            target_user=before["lease_holder"],  # whose lease it ended, for the log's filter
            before=before,
            after={},
        )


def reassign(
    store: ReviewStore, case_id: int, to: str, actor: str, ttl: timedelta = DEFAULT_LEASE
) -> Lease:
    """Give the case's lease to reviewer `to`, whoever held it (an admin action)."""
    now = store.clock()
    with store.writing() as session:
        before = _lease_state(session, case_id, now)
        if before["status"] == DONE:
            raise LeaseError(f"review case {case_id} is done: there is nothing to reassign")
        lease = Lease(case_id, to, secrets.token_urlsafe(24), now + ttl)
        session.execute(
            update(CaseRow)
            .where(CaseRow.id == case_id)
            .values(lease_holder=to, lease_token=lease.token, lease_expires_at=lease.expires_at)
        )
        audit.record(
            session,
            now,
            actor,
            "reassign",
            case_id=case_id,
            target_user=to,
            before=before,
            after=_state(lease),
        )
        return lease


# ----------------------------------------------------------------------------- helpers


def _take(
    session: Session, case_id: int, reviewer: str, now: datetime, ttl: timedelta
) -> Lease | None:
    lease = Lease(case_id, reviewer, secrets.token_urlsafe(24), now + ttl)
    result = session.execute(
        update(CaseRow)
        .where(CaseRow.id == case_id, available(reviewer, now))
        .values(lease_holder=reviewer, lease_token=lease.token, lease_expires_at=lease.expires_at)
        .execution_options(synchronize_session=False)
    )
    return lease if getattr(result, "rowcount", 0) == 1 else None


def _lease_state(session: Session, case_id: int, now: datetime) -> dict[str, Any]:
    row = session.execute(
        select(CaseRow.status, CaseRow.lease_holder, CaseRow.lease_expires_at).where(
            CaseRow.id == case_id
        )
    ).first()
    if row is None:
        raise KeyError(f"no review case with id {case_id!r}")
    status, holder, expires = row
    live = holder is not None and expires is not None and expires > now
    return {"status": status, "lease_holder": holder if live else None}


def _state(lease: Lease) -> dict[str, Any]:
    return {"lease_holder": lease.holder, "lease_expires_at": lease.expires_at.isoformat()}


def _why_unavailable(session: Session, case_id: int, reviewer: str, now: datetime) -> str:
    state = _lease_state(session, case_id, now)
    if state["status"] == DONE:
        return f"review case {case_id} is already done"
    return f"review case {case_id} is being reviewed by {state['lease_holder']}"


def _check_lease(case: CaseRow, token: str, reviewer: str) -> None:
    """Refused unless the case is open and `token` is `reviewer`'s lease on it. An expired
    lease whose token still matches was claimed by nobody since: the lease keeps two
    reviewers off one case, and no one else has worked on this one, so its submit stands
    (refusing it would only throw away the coder's work: a long case, a break)."""
    if case.status == DONE:
        raise LeaseError(
            f"review case {case.id} was already closed at {case.updated_at:%Y-%m-%d %H:%M} UTC; "
            "your decisions were not recorded"
        )
    if case.lease_token is None or not secrets.compare_digest(case.lease_token, token):
        holder = case.lease_holder
        taken = f"it is now leased to {holder}" if holder else "it was released"
        raise LeaseError(
            f"your lease on review case {case.id} is no longer valid ({taken}); "
            "your decisions were not recorded"
        )
    if case.lease_holder != reviewer:
        raise LeaseError(f"review case {case.id} is leased to {case.lease_holder}, not you")


def _reviewed_code(raw: str) -> str:
    """The canonical code a reviewer sent; a bare value is told to name its system."""
    if ":" not in raw:
        raise CodeError(
            f"invalid code {raw!r}: write it with its system, as in ICD10CM:{raw.strip()}"
        )
    return normalize_code(raw)


def _decision_rows(
    case: CaseRow,
    verdicts: Mapping[str, str],
    added: Sequence[str],
    reviewer: str,
    now: datetime,
) -> list[DecisionRow]:
    model_calls = {p["code"]: bool(p.get("accepted")) for p in case.predictions}
    canonical = {_reviewed_code(code): action for code, action in verdicts.items()}
    new_codes = list(dict.fromkeys(_reviewed_code(raw) for raw in added))
    # Adding a code the model predicted but did not accept is accepting it.
    canonical.update({code: ACCEPT for code in new_codes if code in model_calls})
    for code, action in canonical.items():
        if code not in model_calls:
            raise ValueError(f"{code} is not predicted on review case {case.id}: add it instead")
        if action not in (ACCEPT, REJECT):
            raise ValueError(f"invalid verdict {action!r} for {code}: expected accept or reject")
    rows = [
        DecisionRow(
            case_id=case.id,
            code=code,
            action=canonical.get(code, ACCEPT if accepted else REJECT),
            reviewer=reviewer,
            decided_at=now,
            model_accepted=accepted,
        )
        for code, accepted in model_calls.items()
    ]
    for code in new_codes:
        if code in model_calls:
            continue
        rows.append(
            DecisionRow(
                case_id=case.id,
                code=code,
                action=ADD,
                reviewer=reviewer,
                decided_at=now,
                model_accepted=False,
            )
        )
    return rows


def _codes(case: CaseRow) -> list[str]:
    return reviewed_codes(case.predictions, [_decision_snapshot(d) for d in case.decisions])
