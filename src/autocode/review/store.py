"""The review queue: cases a certified coder reviews, their decisions, and the labels they yield.

One case per note and model version (`UNIQUE(note_id, model_version)`), so re-running a
batch job never queues a note twice. A case holds what the reviewer needs on one screen:
the note text, the routing reasons, and every prediction with its probability and evidence
spans (`start`/`end` character offsets into the text). Reviewers accept, reject or add codes;
closing a case makes it `done`, and `export_reviewed` turns done cases into canonical notes
for training.

Privacy: the queue stores full note text (and reviewers' free-text comments), so it is a
clinical datastore: keep it behind login on storage approved for PHI, like the notes
themselves. This module never logs, and keeps note text out of its exceptions and reprs;
the engine hides SQL parameters from logs and error messages for the same reason.

Any SQLAlchemy URL works. The default, `sqlite:///review-queue.db` in the current directory,
suits one machine; a team points `--queue` at a shared server such as
`postgresql+psycopg://user@host/autocode`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    make_url,
    select,
    tuple_,
)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
    sessionmaker,
)
from sqlalchemy.types import TypeDecorator

from autocode.codes.systems import normalize_code
from autocode.corpus.validity import MAX_ID_CHARS, character_problem
from autocode.private_files import ensure_private_file
from autocode.redaction import redacted
from autocode.review.schema import Migration, SchemaVersionError, ensure_current, upgrade

if TYPE_CHECKING:
    from autocode.decisions.records import Decision

OPEN, IN_REVIEW, DONE = "open", "in_review", "done"
STATUSES = (OPEN, IN_REVIEW, DONE)
ACCEPT, REJECT, ADD = "accept", "reject", "add"
ACTIONS = (ACCEPT, REJECT, ADD)

DEFAULT_QUEUE_URL = "sqlite:///review-queue.db"
_KEY_CHUNK = 500  # keys per lookup query: 1,000 bound parameters, well under every backend's cap
_EXPORT_BATCH = 500
_SQLITE_BUSY_TIMEOUT_S = 30
# A server that does not answer is reported after this long, not after the OS's minutes.
_CONNECT_TIMEOUT_S = 10
_WRITE = "autocode_write"  # execution option marking a session that writes (see _configure_sqlite)


def default_queue_url() -> str:
    """`sqlite:///review-queue.db`: a SQLite file in the current directory."""
    return DEFAULT_QUEUE_URL


def queue_location(url: str) -> str:
    """Where the queue at `url` lives, the same from any directory: the URL with its
    password hidden and a SQLite file's path made absolute (`sqlite:///review-queue.db`
    is a file in the current directory). A batch job records it, so that its resumed
    run writes its review cases to the queue that holds the first run's."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database).resolve()))
    return shown_url(parsed)


def shown_url(url: URL) -> str:
    """The URL as messages show it: its password masked, in `user:password@` and in a
    `?password=` query alike (SQLAlchemy's own hiding misses the second)."""
    return redacted(url.render_as_string(hide_password=False))


class QueueUnavailableError(ValueError):
    """The queue URL is malformed, or its database cannot be opened or reached."""


def check_queue(url: str) -> None:
    """Open the queue once (creating its tables), so a bad `--queue` fails before any work.

    Raises QueueUnavailableError with one line naming the URL (password hidden).
    """
    open_queue(url).close()


def open_queue(url: str, option: str = "--queue") -> ReviewStore:
    """The queue at `url`, created if it does not exist; else QueueUnavailableError in
    one line naming `option` and the URL (password hidden): a malformed URL, a database
    that cannot be reached, a queue of another schema revision."""
    try:
        shown = shown_url(make_url(url))
    except ArgumentError:
        raise QueueUnavailableError(
            f"{option} {url!r} is not a database URL (e.g. sqlite:///review-queue.db or "
            "postgresql+psycopg://user@host/autocode)"
        ) from None
    try:
        return ReviewStore(url)
    except DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise QueueUnavailableError(f"{option} {shown}: cannot open the queue: {reason}") from None
    except (ArgumentError, ImportError, OSError, SchemaVersionError) as error:
        raise QueueUnavailableError(f"{option} {shown}: cannot open the queue: {error}") from None


def migrate_queue(url: str) -> Migration:
    """Upgrade the queue at `url` in place to this autocode's schema (creating a new one)."""
    engine = _create_engine(url)
    try:
        return upgrade(engine.execution_options(**{_WRITE: True}))
    finally:
        engine.dispose()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ----------------------------------------------------------------------------- tables


class Base(DeclarativeBase):
    pass


class CaseRow(Base):
    """`review_cases`: one note awaiting (or past) review under one model version.

    `confidence` and `code_list` are derived from the predictions when the case is queued,
    so the queue page can order and filter 100,000 cases through an index instead of
    reading JSON; the lease columns say who holds the case and until when.
    """

    __tablename__ = "review_cases"
    # No CHECK on status: PostgreSQL reports a failing CHECK with the whole row, note text
    # included; status is validated in Python instead.
    __table_args__ = (
        UniqueConstraint("note_id", "model_version", name="uq_review_cases_note"),
        # The pending queue (everything not done) in priority order; partial, so closed cases
        # never slow it down. Queries must repeat the literal `status != 'done'` to use it.
        Index(
            "ix_review_cases_pending",
            "confidence",
            "id",
            sqlite_where=sql_text("status != 'done'"),
            postgresql_where=sql_text("status != 'done'"),
        ),
        Index("ix_review_cases_status_priority", "status", "confidence", "id"),
        # Counting live leases must not read every case's text.
        Index("ix_review_cases_lease", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    note_id: Mapped[str] = mapped_column(String(MAX_ID_CHARS))  # the loader's own limit
    model_uri: Mapped[str] = mapped_column(String(1024))
    model_version: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    route_reasons: Mapped[list[str]] = mapped_column(JSON)
    predictions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=OPEN, server_default=OPEN, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, onupdate=_utcnow)
    confidence: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    code_list: Mapped[str] = mapped_column(Text, default="|", server_default="|")
    lease_holder: Mapped[str | None] = mapped_column(String(255))
    lease_token: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    comment: Mapped[str | None] = mapped_column(Text)  # the reviewer's, on submit
    decisions: Mapped[list[DecisionRow]] = relationship(
        back_populates="case", order_by="DecisionRow.id", passive_deletes=True
    )


class DecisionRow(Base):
    """`review_decisions`: one reviewer's accept, reject or add of one code on one case."""

    __tablename__ = "review_decisions"
    __table_args__ = (
        CheckConstraint("action IN ('accept', 'reject', 'add')", name="ck_review_decisions_action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("review_cases.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    reviewer: Mapped[str] = mapped_column(String(255))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    comment: Mapped[str | None] = mapped_column(Text)
    # The model's call on the code when the reviewer decided (None before the reviewer app):
    # what the dashboard's agreement figures compare against.
    model_accepted: Mapped[bool | None] = mapped_column(Boolean)
    case: Mapped[CaseRow] = relationship(back_populates="decisions")


class UserRow(Base):
    """`review_users`: an account of the reviewer app (argon2 hash, never the password)."""

    __tablename__ = "review_users"
    __table_args__ = (
        CheckConstraint("role IN ('reviewer', 'admin')", name="ck_review_users_role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    # Bumped by a deactivation or a new password: sessions issued before stop opening.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AuditRow(Base):
    """`review_audit`: append-only; who did what to which case or account, before and after.

    `before`/`after` hold statuses, lease holders, codes and roles, never note text or
    comments (a comment is recorded as present or not).
    """

    __tablename__ = "review_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32), index=True)
    case_id: Mapped[int | None] = mapped_column(index=True)
    target_user: Mapped[str | None] = mapped_column(String(255))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LoginFailureRow(Base):
    """`review_login_failures`: when a wrong password was given, per account and per
    address; `key` is an HMAC of which under the sessions' secret (`auth.LoginLimiter`),
    never the name typed."""

    __tablename__ = "review_login_failures"
    __table_args__ = (
        Index("ix_review_login_failures_key_at", "key", "at"),
        Index("ix_review_login_failures_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


# ----------------------------------------------------------------------------- values


@dataclass(frozen=True)
class NewCase:
    """A routed note to put in the queue; `text` stays out of the repr."""

    note_id: str
    model_uri: str
    model_version: str
    text: str = field(repr=False)
    reasons: list[str]
    predictions: list[dict[str, Any]]

    def __post_init__(self) -> None:
        # Checked here so a bad case never reaches the database, whose errors can quote the row.
        _require_name("note_id", self.note_id, MAX_ID_CHARS)
        _require_name("model_uri", self.model_uri, 1024)
        _require_name("model_version", self.model_version, 255)
        if not isinstance(self.text, str):
            raise TypeError(f"case text must be str, got {type(self.text).__name__}")
        # The loader's rules: what it quarantines, the queue refuses (PostgreSQL holds no NUL).
        for name, value in (("note_id", self.note_id), ("text", self.text)):
            problem = character_problem(name, value)
            if problem is not None:
                raise ValueError(problem)
        if not all(isinstance(reason, str) for reason in self.reasons):
            raise TypeError("case reasons must be strings")
        for prediction in self.predictions:
            _check_prediction(len(self.text), prediction)

    @classmethod
    def from_decision(
        cls, note_id: str, text: str, decision: Decision, model_uri: str, model_version: str
    ) -> NewCase:
        """The case for one note the Coder decided on (normally one routed to review)."""
        return cls(
            note_id=note_id,
            model_uri=model_uri,
            model_version=model_version,
            text=text,
            reasons=list(decision.reasons),
            predictions=[prediction.to_json() for prediction in decision.predictions],
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.note_id, self.model_version)


@dataclass(frozen=True)
class EnqueueResult:
    inserted: int
    already_present: int  # in the queue before this call, or repeated within it


@dataclass(frozen=True)
class ReviewDecision:
    id: int
    case_id: int
    code: str
    action: str
    reviewer: str
    decided_at: datetime
    comment: str | None
    model_accepted: bool | None = None  # the model's call when decided; None before the app


@dataclass(frozen=True)
class ReviewCase:
    """A snapshot of one case and its decisions, oldest first; `text` stays out of the repr."""

    id: int
    note_id: str
    model_uri: str
    model_version: str
    text: str = field(repr=False)
    reasons: list[str]
    predictions: list[dict[str, Any]]
    status: str
    created_at: datetime
    updated_at: datetime
    decisions: list[ReviewDecision]
    confidence: float = 0.0
    comment: str | None = field(default=None, repr=False)  # free text: may quote the note
    lease_holder: str | None = None
    lease_expires_at: datetime | None = None

    def reviewed_codes(self) -> list[str]:
        """The note's codes after review, sorted: see `reviewed_codes`."""
        return reviewed_codes(self.predictions, self.decisions)


def reviewed_codes(
    predictions: Sequence[dict[str, Any]], decisions: Sequence[ReviewDecision]
) -> list[str]:
    """Codes the model accepted, then each decision in order: accept/add puts a code in,
    reject takes it out, so a reviewer's later decision on a code overrides an earlier one.

    A code nobody decided on keeps the model's call (in only if the model accepted it).
    """
    codes = {prediction["code"] for prediction in predictions if prediction.get("accepted")}
    for decision in decisions:
        if decision.action == REJECT:
            codes.discard(decision.code)
        else:
            codes.add(decision.code)
    return sorted(codes)


# ----------------------------------------------------------------------------- the store


class ReviewStore:
    """The review queue at a SQLAlchemy URL.

    A new database gets the tables at the current schema revision; a queue at an older
    revision raises SchemaVersionError naming `autocode review migrate` (see schema.py).
    """

    def __init__(self, url: str) -> None:
        self.engine = _create_engine(url)
        writer = self.engine.execution_options(**{_WRITE: True})
        try:
            ensure_current(self.engine, writer)
        except BaseException:
            self.engine.dispose()
            raise
        self.clock = _utcnow  # tests move time forward to expire leases
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(writer, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"ReviewStore({shown_url(self.engine.url)!r})"

    def close(self) -> None:
        self.engine.dispose()

    def reading(self) -> Session:
        """A session for queries (use as a context manager)."""
        return self._read()

    def writing(self) -> AbstractContextManager[Session]:
        """A write transaction (SQLite: BEGIN IMMEDIATE), committed when the block ends."""
        return self._write.begin()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def enqueue(self, cases: Iterable[NewCase]) -> EnqueueResult:
        """Add the cases not yet queued for their (note_id, model_version), in one transaction."""
        given = list(cases)
        unique: dict[tuple[str, str], NewCase] = {}
        for case in given:
            unique.setdefault(case.key, case)
        # Every writer inserts in key order, so two on PostgreSQL wait on each other
        # instead of deadlocking.
        batch = [unique[key] for key in sorted(unique)]
        try:
            with self._write.begin() as session:
                inserted = _insert_missing(session, batch)
        except IntegrityError:
            # Another writer committed some of these cases after our lookup.
            with self._write.begin() as session:
                inserted = _insert_each(session, batch)
        return EnqueueResult(inserted=inserted, already_present=len(given) - inserted)

    def count(self, status: str | None = None) -> int:
        """Cases in the queue, or only those with `status`."""
        query = select(func.count()).select_from(CaseRow)
        if status is not None:
            query = query.where(CaseRow.status == _check_status(status))
        with self._read() as session:
            return session.scalar(query) or 0

    def cases(self, status: str | None = OPEN, limit: int | None = 100) -> list[ReviewCase]:
        """Cases with `status` (all when None), oldest first."""
        query = select(CaseRow).options(selectinload(CaseRow.decisions)).order_by(CaseRow.id)
        if status is not None:
            query = query.where(CaseRow.status == _check_status(status))
        with self._read() as session:
            return [_case_snapshot(row) for row in session.scalars(query.limit(limit))]

    def get(self, case_id: int) -> ReviewCase:
        """One case; KeyError if there is none with this id."""
        with self._read() as session:
            return _case_snapshot(_case_row(session, case_id))

    def record_decision(
        self, case_id: int, code: str, action: str, reviewer: str, comment: str | None = None
    ) -> ReviewDecision:
        """Record a reviewer's accept/reject of a predicted code, or add of a missing one.

        The case moves to `in_review`; decisions on a `done` case are refused.
        """
        if action not in ACTIONS:
            raise ValueError(f"invalid review action {action!r}: expected one of {ACTIONS}")
        _require_name("reviewer", reviewer, 255)
        with self._write.begin() as session:
            case = _case_row(session, case_id, lock=True)
            if case.status == DONE:
                raise ValueError(f"review case {case_id} is done: its decisions are final")
            row = DecisionRow(
                case_id=case.id,
                code=_decision_code(case, code, action),
                action=action,
                reviewer=reviewer,
                comment=comment,
            )
            session.add(row)
            case.status = IN_REVIEW
            case.updated_at = _utcnow()
            session.flush()
            return _decision_snapshot(row)

    def close_case(self, case_id: int) -> None:
        """Mark the case `done`: its reviewed codes become training labels."""
        with self._write.begin() as session:
            case = _case_row(session, case_id, lock=True)
            if case.status != DONE:
                case.status = DONE
                case.updated_at = _utcnow()

    def export_reviewed(self) -> Iterator[dict[str, Any]]:
        """Canonical notes (note_id, text, codes) from done cases, by note_id.

        A note reviewed under several model versions yields its latest closed review only,
        since canonical note ids are unique.
        """
        query = (
            select(CaseRow)
            .where(CaseRow.status == DONE)
            .options(selectinload(CaseRow.decisions))
            .order_by(CaseRow.note_id, CaseRow.updated_at.desc(), CaseRow.id.desc())
            .execution_options(yield_per=_EXPORT_BATCH)
        )
        with self._read() as session:
            previous = None
            for row in session.scalars(query):
                if row.note_id != previous:
                    yield _canonical_note(_case_snapshot(row))
                previous = row.note_id


# ----------------------------------------------------------------------------- helpers


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    connect_args: dict[str, Any] = {"timeout": _SQLITE_BUSY_TIMEOUT_S} if sqlite else {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
    if sqlite:
        _create_sqlite_file_privately(parsed)
    # Parameters carry note text: keep them out of logs and exception messages.
    engine = create_engine(url, hide_parameters=True, connect_args=connect_args)
    if sqlite:
        _configure_sqlite(engine)
    return engine


def _create_sqlite_file_privately(url: URL) -> None:
    """The queue holds note text: its file is owner-only (SQLite gives WAL files the same mode).

    SQLite itself would create the file world-readable under the usual umask. A missing
    directory is left for SQLite to report.
    """
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        ensure_private_file(Path(database))
    except FileNotFoundError:
        return


def _configure_sqlite(engine: Engine) -> None:
    """Foreign keys on; WAL so readers never block the writer; writers lock up front."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy emits BEGIN itself (below); the driver's own BEGIN skips SELECTs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A transaction that reads and then writes fails at once ("database is locked") when
        # another writer got in between; BEGIN IMMEDIATE makes writers queue at the start.
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _insert_missing(session: Session, batch: list[NewCase]) -> int:
    existing = _existing_keys(session, [case.key for case in batch])
    missing = [_row(case) for case in batch if case.key not in existing]
    if missing:
        session.execute(insert(CaseRow), missing)
    return len(missing)


def _insert_each(session: Session, batch: list[NewCase]) -> int:
    """Insert-or-skip row by row, each in a savepoint, so one duplicate skips only itself."""
    existing = _existing_keys(session, [case.key for case in batch])
    inserted = 0
    for case in batch:
        if case.key in existing:
            continue
        try:
            with session.begin_nested():
                session.execute(insert(CaseRow), [_row(case)])
            inserted += 1
        except IntegrityError:
            if not _has_case(session, case.key):
                raise  # not a duplicate: a real integrity problem
    return inserted


def _existing_keys(session: Session, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (note_id, model_version) keys already queued, looked up a chunk at a time."""
    columns = tuple_(CaseRow.note_id, CaseRow.model_version)
    found: set[tuple[str, str]] = set()
    for start in range(0, len(keys), _KEY_CHUNK):
        query = select(CaseRow.note_id, CaseRow.model_version).where(
            columns.in_(keys[start : start + _KEY_CHUNK])
        )
        found.update((note_id, version) for note_id, version in session.execute(query))
    return found


def _has_case(session: Session, key: tuple[str, str]) -> bool:
    note_id, model_version = key
    query = select(CaseRow.id).where(
        CaseRow.note_id == note_id, CaseRow.model_version == model_version
    )
    return session.scalar(query) is not None


def _row(case: NewCase) -> dict[str, Any]:
    return {
        "note_id": case.note_id,
        "model_uri": case.model_uri,
        "model_version": case.model_version,
        "text": case.text,
        "route_reasons": case.reasons,
        "predictions": case.predictions,
        "confidence": case_confidence(case.predictions),
        "code_list": code_list(case.predictions),
    }


def case_confidence(predictions: Sequence[dict[str, Any]]) -> float:
    """How sure the model is of its least certain call: min over codes of max(p, 1 - p).

    0.5 is a coin toss on some code; a case without predictions scores 0, first in the queue,
    since the model had nothing to offer on it.
    """
    sureness = [
        max(float(p["probability"]), 1.0 - float(p["probability"]))
        for p in predictions
        if isinstance(p.get("probability"), int | float)
    ]
    return min(sureness, default=0.0)


def code_list(predictions: Sequence[dict[str, Any]]) -> str:
    """`|A|B|`: the predicted codes, most probable first (the queue page shows the first
    few), delimited so `LIKE '%|A|%'` matches whole codes only."""
    ranked = sorted(predictions, key=lambda p: -(p.get("probability") or 0.0))
    return "|" + "".join(f"{p['code']}|" for p in ranked)


def _case_row(session: Session, case_id: int, lock: bool = False) -> CaseRow:
    # Writers lock the row (PostgreSQL) so a decision and a close cannot overwrite each other.
    row = session.get(CaseRow, case_id, with_for_update=lock)
    if row is None:
        raise KeyError(f"no review case with id {case_id!r}")
    return row


def _decision_code(case: CaseRow, code: str, action: str) -> str:
    """The canonical code; accept and reject apply to codes predicted or added on the case."""
    canonical = normalize_code(code)
    if action == ADD:
        return canonical
    predicted = [prediction["code"] for prediction in case.predictions]
    added = [decision.code for decision in case.decisions if decision.action == ADD]
    if canonical not in predicted + added:
        raise ValueError(
            f"cannot {action} {canonical}: review case {case.id} neither predicts nor has added "
            f"it (predicted: {', '.join(predicted) or 'none'}); use 'add' for a missing code"
        )
    return canonical


def _case_snapshot(row: CaseRow) -> ReviewCase:
    return ReviewCase(
        id=row.id,
        note_id=row.note_id,
        model_uri=row.model_uri,
        model_version=row.model_version,
        text=row.text,
        reasons=list(row.route_reasons),
        predictions=list(row.predictions),
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        decisions=[_decision_snapshot(decision) for decision in row.decisions],
        confidence=row.confidence,
        comment=row.comment,
        lease_holder=row.lease_holder,
        lease_expires_at=row.lease_expires_at,
    )


def _canonical_note(case: ReviewCase) -> dict[str, Any]:
    return {"note_id": case.note_id, "text": case.text, "codes": case.reviewed_codes()}


def _decision_snapshot(row: DecisionRow) -> ReviewDecision:
    return ReviewDecision(
        id=row.id,
        case_id=row.case_id,
        code=row.code,
        action=row.action,
        reviewer=row.reviewer,
        decided_at=row.decided_at,
        comment=row.comment,
        model_accepted=row.model_accepted,
    )


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"invalid review status {status!r}: expected one of {STATUSES}")
    return status


def _require_name(name: str, value: object, max_length: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > max_length:
        raise ValueError(f"{name} is {len(value)} characters long; the queue allows {max_length}")


def _check_prediction(text_length: int, prediction: dict[str, Any]) -> None:
    """A prediction names its code; its evidence spans lie inside the note."""
    code = prediction.get("code")
    if not isinstance(code, str):
        raise ValueError("a prediction has no code string")
    for span in prediction.get("evidence", []):
        start, end = span.get("start"), span.get("end")
        inside = isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= text_length
        if not inside:
            raise ValueError(
                f"evidence span {start!r}-{end!r} for {code} does not lie "
                f"inside the note ({text_length} characters)"
            )
