"""The reviewer app: queue priority and code filter columns, leases, users, audit log.

Existing cases get their confidence and code list computed from their stored predictions,
a batch at a time, so an old queue keeps every case and sorts like a new one.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from autocode.review.store import UTCDateTime, case_confidence, code_list

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.add_column(
        "review_cases", sa.Column("confidence", sa.Float, nullable=False, server_default="0")
    )
    op.add_column(
        "review_cases", sa.Column("code_list", sa.Text, nullable=False, server_default="|")
    )
    op.add_column("review_cases", sa.Column("lease_holder", sa.String(255), nullable=True))
    op.add_column("review_cases", sa.Column("lease_token", sa.String(64), nullable=True))
    op.add_column("review_cases", sa.Column("lease_expires_at", UTCDateTime, nullable=True))
    op.add_column("review_cases", sa.Column("comment", sa.Text, nullable=True))
    op.add_column("review_decisions", sa.Column("model_accepted", sa.Boolean, nullable=True))
    _fill_derived_columns()
    op.create_index(
        "ix_review_cases_pending",
        "review_cases",
        ["confidence", "id"],
        sqlite_where=sa.text("status != 'done'"),
        postgresql_where=sa.text("status != 'done'"),
    )
    op.create_index(
        "ix_review_cases_status_priority", "review_cases", ["status", "confidence", "id"]
    )
    op.create_index("ix_review_cases_lease", "review_cases", ["lease_expires_at"])
    op.create_table(
        "review_users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("role IN ('reviewer', 'admin')", name="ck_review_users_role"),
    )
    op.create_table(
        "review_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("case_id", sa.Integer, nullable=True),
        sa.Column("target_user", sa.String(255), nullable=True),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
    )
    op.create_index("ix_review_audit_at", "review_audit", ["at"])
    op.create_index("ix_review_audit_action", "review_audit", ["action"])
    op.create_index("ix_review_audit_case_id", "review_audit", ["case_id"])


def _fill_derived_columns() -> None:
    connection = op.get_bind()
    cases = sa.table(
        "review_cases",
        sa.column("id", sa.Integer),
        sa.column("predictions", sa.JSON),
        sa.column("confidence", sa.Float),
        sa.column("code_list", sa.Text),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(cases.c.id, cases.c.predictions)
            .where(cases.c.id > last)
            .order_by(cases.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        connection.execute(
            cases.update()
            .where(cases.c.id == sa.bindparam("case_id"))
            .values(confidence=sa.bindparam("conf"), code_list=sa.bindparam("codes")),
            [{"case_id": i, "conf": case_confidence(p), "codes": code_list(p)} for i, p in rows],
        )
        last = rows[-1][0]
