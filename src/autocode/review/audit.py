"""The append-only audit log: every case change, every admin action, every login and log
out, before and after.

Entries are only ever inserted (no function here or elsewhere updates or deletes them).
Their `before`/`after` hold statuses, lease holders, code lists and roles; never note text,
and a reviewer's comment only as whether there was one, since comments can quote the note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from autocode.review.store import AuditRow, ReviewStore


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    case_id: int | None
    target_user: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def record(
    session: Session,
    at: datetime,
    actor: str,
    action: str,
    *,
    case_id: int | None = None,
    target_user: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Append one entry inside the caller's transaction, so it commits with the change."""
    session.add(
        AuditRow(
            at=at,
            actor=actor,
            action=action,
            case_id=case_id,
            target_user=target_user,
            before=before,
            after=after,
        )
    )


def entries(
    store: ReviewStore, *, case_id: int | None = None, limit: int = 200
) -> list[AuditEntry]:
    """The newest entries first, for one case or all."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if case_id is not None:
        query = query.where(AuditRow.case_id == case_id)
    with store.reading() as session:
        return [
            AuditEntry(
                row.id,
                row.at,
                row.actor,
                row.action,
                row.case_id,
                row.target_user,
                row.before,
                row.after,
            )
            for row in session.scalars(query)
        ]
