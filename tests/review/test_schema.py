"""Schema migrations: a queue written before them upgrades in place without losing a case."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from argon2 import PasswordHasher
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    insert,
    text,
)

from autocode.review import ReviewStore, leases, schema
from autocode.review.auth import authenticate, update_user
from autocode.review.schema import SchemaVersionError
from autocode.review.store import Base, case_confidence, migrate_queue
from review.app_client import PASSWORD
from review.test_store import DIABETES, PREDICTIONS, TEXT

# The tables exactly as ReviewStore's create_all wrote them before migrations existed.
OLD = MetaData()
OLD_CASES = Table(
    "review_cases",
    OLD,
    Column("id", Integer, primary_key=True),
    Column("note_id", String(255), nullable=False),
    Column("model_uri", String(1024), nullable=False),
    Column("model_version", String(255), nullable=False),
    Column("text", Text, nullable=False),
    Column("route_reasons", JSON, nullable=False),
    Column("predictions", JSON, nullable=False),
    Column("status", String(16), nullable=False, server_default="open", index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("note_id", "model_version", name="uq_review_cases_note"),
)
OLD_DECISIONS = Table(
    "review_decisions",
    OLD,
    Column("id", Integer, primary_key=True),
    Column(
        "case_id",
        Integer,
        ForeignKey("review_cases.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("code", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("reviewer", String(255), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("comment", Text),
    CheckConstraint("action IN ('accept', 'reject', 'add')", name="ck_review_decisions_action"),
)
N_OLD_CASES = 2500  # more than one migration batch


def write_old_queue(url: str) -> None:
    engine = create_engine(url)
    OLD.create_all(engine)
    now = datetime(2024, 5, 1, tzinfo=UTC)
    rows = [
        {
            "note_id": f"old-{i}",
            "model_uri": "models:/autocode/1",
            "model_version": "1",
            "text": TEXT,
            "route_reasons": ["uncertain: ICD10CM:D64.9"],
            "predictions": PREDICTIONS if i % 2 else PREDICTIONS[:2],
            "status": "done" if i == 0 else "open",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(N_OLD_CASES)
    ]
    with engine.begin() as connection:
        connection.execute(insert(OLD_CASES), rows)
        connection.execute(
            insert(OLD_DECISIONS),
            [
                {
                    "case_id": 1,
                    "code": DIABETES,
                    "action": "reject",
                    "reviewer": "coder-a",
                    "decided_at": now,
                }
            ],
        )
    engine.dispose()


def test_head_constant_matches_the_migrations():
    assert ScriptDirectory.from_config(schema.alembic_config()).get_current_head() == schema.HEAD


def test_an_old_queue_upgrades_in_place_without_losing_a_case(queue_url: str):
    write_old_queue(queue_url)
    with pytest.raises(SchemaVersionError, match="autocode review migrate --db"):
        ReviewStore(queue_url)
    migration = migrate_queue(queue_url)
    assert (migration.before, migration.after) == (schema.BASELINE, schema.HEAD)

    with ReviewStore(queue_url) as store:
        assert store.count() == N_OLD_CASES and store.count("done") == 1
        assert [note["codes"] for note in store.export_reviewed()] == [["ICD10CM:I10"]]
        case = store.get(2)
        assert case.text == TEXT and case.predictions == PREDICTIONS
        assert case.confidence == case_confidence(PREDICTIONS) == pytest.approx(0.55)
        # The old cases work in the reviewer app: the least confident comes first.
        lease = leases.claim_next(store, "coder-a")
        assert lease is not None and lease.case_id == 2
    assert migrate_queue(queue_url).before == schema.HEAD


def test_a_new_queue_is_created_at_the_head_revision(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with ReviewStore(url) as store, store.engine.connect() as connection:
        assert schema.current_revision(connection) == schema.HEAD


def test_a_queue_at_0002_keeps_its_accounts_through_0003(queue_url: str):
    """0003 adds the accounts' session epoch; existing accounts keep logging in."""
    engine = create_engine(queue_url)
    with engine.begin() as connection:
        command.upgrade(schema.alembic_config(connection), "0002")
        connection.execute(
            text(
                "INSERT INTO review_users (name, role, password_hash, active, created_at) "
                "VALUES ('rita', 'reviewer', :hash, :active, :at)"
            ),
            {"hash": _hash(PASSWORD), "active": True, "at": datetime(2026, 1, 1, tzinfo=UTC)},
        )
    engine.dispose()
    assert migrate_queue(queue_url).before == "0002"
    with ReviewStore(queue_url) as store:
        user = authenticate(store, "rita", PASSWORD)
        assert user is not None and len(user.credential_stamp) == 32
        # A deactivation bumps the epoch: the stamp changes, and stays changed.
        update_user(store, "rita", "ada", active=False)
        back = update_user(store, "rita", "ada", active=True)
        assert back.credential_stamp != user.credential_stamp


def _hash(password: str) -> str:
    return PasswordHasher().hash(password)


def test_the_migrations_build_the_tables_the_store_maps(queue_url: str):
    """Alembic's autogenerate finds nothing to add, drop or change between the migrated
    queue and the store's row classes (a table or index written in one and not the other)."""
    migrate_queue(queue_url)
    engine = create_engine(queue_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
