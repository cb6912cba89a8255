"""What the queue page and the dashboard show, as indexed queries over the queue.

The pending queue is read in priority order (least confident first, then oldest) by keyset
pagination on (confidence, id) through the partial index `ix_review_cases_pending`, so page
500 costs what page 1 does. Filters are bound parameters; the code and system filters match
whole `|CODE|` entries of `code_list`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func, literal_column, or_, select, tuple_

from autocode.codes.systems import SYSTEMS, CodeError, normalize_code
from autocode.review.store import (
    ACCEPT,
    ADD,
    DONE,
    REJECT,
    STATUSES,
    AuditRow,
    CaseRow,
    DecisionRow,
    ReviewStore,
)

PENDING = "pending"  # every case not done: open, in review, leased or not
PAGE_SIZE = 50


@dataclass(frozen=True)
class QueueFilter:
    """The queue page's filters; `status` is PENDING or one of the stored statuses."""

    status: str = PENDING
    system: str = ""
    code: str = ""
    reason: str = ""

    def conditions(self) -> list[ColumnElement[bool]]:
        """SQL conditions (bound parameters only); ValueError naming a bad filter value."""
        if self.status == PENDING:
            # The literal (not a parameter) lets SQLite and PostgreSQL use the partial index.
            status = CaseRow.status != literal_column("'done'")
        elif self.status in STATUSES:
            status = CaseRow.status == self.status
        else:
            raise ValueError(f"invalid status filter {self.status!r}")
        return [status, *self.match_conditions()]

    def match_conditions(self) -> list[ColumnElement[bool]]:
        """The code, system and reason conditions alone (claiming picks pending cases itself)."""
        found: list[ColumnElement[bool]] = []
        if self.code.strip():
            found.append(or_(*(CaseRow.code_list.contains(f"|{code}|") for code in self._codes())))
        if self.system.strip():
            system = self.system.strip().upper()
            if not system.isalnum():
                raise ValueError(f"invalid code system filter {self.system!r}")
            found.append(CaseRow.code_list.contains(f"|{system}:"))
        if self.reason.strip():
            found.append(
                cast(CaseRow.route_reasons, String).contains(self.reason.strip(), autoescape=True)
            )
        return found

    def _codes(self) -> list[str]:
        """The canonical codes the code filter names: as written with its system; a bare
        value ("I10") in the system chosen, or in every system whose form it has."""
        written = self.code.strip()
        if ":" in written:
            return [normalize_code(written)]
        if self.system.strip():
            return [normalize_code(written, self.system.strip())]
        codes = []
        for system in SYSTEMS:
            try:
                codes.append(normalize_code(written, system))
            except CodeError:
                continue
        if not codes:
            raise ValueError(f"invalid code filter {written!r}: no code system writes it so")
        return codes


@dataclass(frozen=True)
class QueueRow:
    id: int
    note_id: str
    confidence: float
    codes: list[str]
    reasons: list[str]
    status: str
    created_at: datetime
    lease_holder: str | None  # only while the lease is live


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_after: str | None  # the cursor of the next page, None on the last


def queue_page(
    store: ReviewStore, filters: QueueFilter, after: str | None = None, limit: int = PAGE_SIZE
) -> QueuePage:
    """One page of cases in priority order, starting after the cursor `after`."""
    query = select(
        CaseRow.id,
        CaseRow.note_id,
        CaseRow.confidence,
        CaseRow.code_list,
        CaseRow.route_reasons,
        CaseRow.status,
        CaseRow.created_at,
        CaseRow.lease_holder,
        CaseRow.lease_expires_at,
    ).where(*filters.conditions())
    if after:
        confidence, case_id = parse_cursor(after)
        query = query.where(tuple_(CaseRow.confidence, CaseRow.id) > (confidence, case_id))
    query = query.order_by(CaseRow.confidence, CaseRow.id).limit(limit + 1)
    now = store.clock()
    with store.reading() as session:
        found = session.execute(query).all()
    rows = [
        QueueRow(
            id=row.id,
            note_id=row.note_id,
            confidence=row.confidence,
            codes=[code for code in row.code_list.split("|") if code],
            reasons=list(row.route_reasons),
            status=row.status,
            created_at=row.created_at,
            lease_holder=(
                row.lease_holder
                if row.lease_expires_at is not None and row.lease_expires_at > now
                else None
            ),
        )
        for row in found[:limit]
    ]
    more = len(found) > limit
    return QueuePage(rows, f"{rows[-1].confidence!r}:{rows[-1].id}" if more and rows else None)


def parse_cursor(after: str) -> tuple[float, int]:
    try:
        confidence, case_id = after.split(":")
        return float(confidence), int(case_id)
    except ValueError:
        raise ValueError(f"invalid page cursor {after!r}") from None


def status_counts(store: ReviewStore) -> dict[str, int]:
    """Cases per status, plus `leased`: pending cases under a live lease."""
    with store.reading() as session:
        counts = dict(
            session.execute(select(CaseRow.status, func.count()).group_by(CaseRow.status)).all()
        )
        leased = session.scalar(
            select(func.count())
            .select_from(CaseRow)
            .where(CaseRow.status != DONE, CaseRow.lease_expires_at > store.clock())
        )
    return {**{status: counts.get(status, 0) for status in STATUSES}, "leased": leased or 0}


# ----------------------------------------------------------------------------- dashboard


@dataclass
class Agreement:
    """The model's calls against reviewers' on one code or system.

    `precision`: of the codes the model accepted, the share reviewers kept, the real-world
    counterpart of the precision the review policy was tuned for.
    """

    name: str
    model_accepted: int = 0
    kept: int = 0
    rejected: int = 0
    added: int = 0  # codes the model did not accept that reviewers put in

    @property
    def precision(self) -> float | None:
        return self.kept / self.model_accepted if self.model_accepted else None

    @property
    def corrections(self) -> int:
        return self.rejected + self.added


@dataclass
class Dashboard:
    throughput: list[tuple[str, int]]  # (day, cases closed), oldest first
    by_system: list[Agreement]
    by_code: list[Agreement]
    most_corrected: list[Agreement]
    reviewers: list[tuple[str, int]] = field(default_factory=list)  # closed cases per reviewer


def dashboard(store: ReviewStore, days: int = 14, top: int = 15) -> Dashboard:
    since = store.clock() - timedelta(days=days)
    day = func.date(AuditRow.at)
    with store.reading() as session:
        throughput = session.execute(
            select(day, func.count())
            .where(AuditRow.action == "submit", AuditRow.at >= since)
            .group_by(day)
            .order_by(day)
        ).all()
        reviewers = session.execute(
            select(AuditRow.actor, func.count())
            .where(AuditRow.action == "submit", AuditRow.at >= since)
            .group_by(AuditRow.actor)
            .order_by(func.count().desc())
        ).all()
        calls = session.execute(
            select(DecisionRow.code, DecisionRow.model_accepted, DecisionRow.action, func.count())
            .where(DecisionRow.model_accepted.is_not(None))
            .group_by(DecisionRow.code, DecisionRow.model_accepted, DecisionRow.action)
        ).all()
    codes: dict[str, Agreement] = {}
    systems: dict[str, Agreement] = {}
    for code, model_accepted, action, count in calls:
        for name, table in ((code, codes), (code.split(":", 1)[0], systems)):
            _tally(table.setdefault(name, Agreement(name)), model_accepted, action, count)
    by_code = sorted(codes.values(), key=lambda a: (-a.model_accepted, a.name))
    corrected = sorted(
        (a for a in codes.values() if a.corrections), key=lambda a: (-a.corrections, a.name)
    )
    return Dashboard(
        throughput=[(str(d), int(n)) for d, n in throughput],
        by_system=sorted(systems.values(), key=lambda a: a.name),
        by_code=by_code[:top],
        most_corrected=corrected[:top],
        reviewers=[(str(name), int(n)) for name, n in reviewers],
    )


def _tally(agreement: Agreement, model_accepted: bool | None, action: str, count: int) -> None:
    if model_accepted:
        agreement.model_accepted += count
        if action == ACCEPT:
            agreement.kept += count
        elif action == REJECT:
            agreement.rejected += count
    elif action in (ACCEPT, ADD):
        agreement.added += count


def dashboard_json(board: Dashboard) -> dict[str, Any]:
    def rows(agreements: list[Agreement]) -> list[dict[str, Any]]:
        return [
            {
                "name": a.name,
                "model_accepted": a.model_accepted,
                "kept": a.kept,
                "rejected": a.rejected,
                "added": a.added,
                "precision": a.precision,
            }
            for a in agreements
        ]

    return {
        "throughput": [{"day": d, "closed": n} for d, n in board.throughput],
        "by_system": rows(board.by_system),
        "by_code": rows(board.by_code),
        "most_corrected": rows(board.most_corrected),
        "reviewers": [{"name": n, "closed": c} for n, c in board.reviewers],
    }
