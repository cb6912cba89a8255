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

from sqlalchemy import or_, select
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


def actions(store: ReviewStore) -> list[str]:
    """The actions the log holds, alphabetically: what the audit page can filter on."""
    with store.reading() as session:
        return list(session.scalars(select(AuditRow.action).distinct().order_by(AuditRow.action)))


def described(state: dict[str, Any] | None) -> str:
    """A before/after state in words, one "key: value" per field: lists joined, booleans
    as yes/no ("status: done · codes: ICD10CM:E11.9, ICD10CM:I10 · comment: yes")."""
    if not state:
        return ""
    return " · ".join(f"{key.replace('_', ' ')}: {_value(value)}" for key, value in state.items())


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) if value else "none"
    return "none" if value is None else str(value)


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
    store: ReviewStore,
    *,
    case_id: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """The newest entries first: all, or those of one case, actor (who acted, or whose
    account was acted on) or action."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if case_id is not None:
        query = query.where(AuditRow.case_id == case_id)
    if actor:
        query = query.where(or_(AuditRow.actor == actor, AuditRow.target_user == actor))
    if action:
        query = query.where(AuditRow.action == action)
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
