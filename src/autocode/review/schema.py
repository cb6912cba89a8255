"""The queue's schema version: create a new queue at the latest revision, upgrade an old one.

Alembic holds the migrations (`autocode/review/migrations`). A queue created before them
(tables but no `alembic_version`) is stamped with the baseline revision, then upgraded, so
no case is lost. Opening a queue never upgrades it silently: `ReviewStore` creates a new
queue at the head revision and refuses an old one, naming `autocode review migrate`.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

from autocode.redaction import redacted

BASELINE = "0001"
HEAD = "0004"  # tests check it matches the migrations' head
# "autocode": one migrator at a time per database (below 2**63: a signed bigint as is)
_PG_MIGRATION_LOCK = 0x6175746F636F6465


class SchemaVersionError(ValueError):
    """The queue's schema is older or newer than this autocode's."""


@dataclass(frozen=True)
class Migration:
    before: str | None  # None: no queue tables at all
    after: str


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "autocode.review:migrations")
    config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    """The stored revision; BASELINE for a queue made before migrations; None for none."""
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None and inspect(connection).has_table("review_cases"):
        return BASELINE
    return revision


def upgrade(writer: Engine) -> Migration:
    """Bring the queue at `writer` to HEAD in one transaction; what it was and is now."""
    with writer.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Two processes opening a new queue at once would both create the tables.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        before = current_revision(connection)
        if before != HEAD:
            config = alembic_config(connection)
            if before == BASELINE and not _has_version_table(connection):
                command.stamp(config, BASELINE)
            command.upgrade(config, "head")
        return Migration(before=before, after=current_revision(connection) or HEAD)


def ensure_current(reader: Engine, writer: Engine) -> None:
    """Create a new queue at HEAD; refuse one at another revision with what to run."""
    shown_url = redacted(reader.url.render_as_string(hide_password=False))
    with reader.connect() as connection:
        revision = current_revision(connection)
        connection.rollback()
    if revision == HEAD:
        return
    if revision is None:
        upgrade(writer)
        return
    raise SchemaVersionError(
        f"the queue at {shown_url} has schema revision {revision}, this autocode uses {HEAD}: "
        + (
            f"run `autocode review migrate --db {shown_url}` to upgrade it in place"
            if revision < HEAD
            else "upgrade autocode to open it"
        )
    )


def _has_version_table(connection: Connection) -> bool:
    return inspect(connection).has_table("alembic_version")
