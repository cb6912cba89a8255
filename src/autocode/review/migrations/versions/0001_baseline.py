"""The queue as `ReviewStore` created it before migrations: cases and decisions.

An existing queue without an alembic_version table is stamped with this revision (its
tables already exist), then upgraded; a new queue runs it to create them.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("note_id", sa.String(255), nullable=False),
        sa.Column("model_uri", sa.String(1024), nullable=False),
        sa.Column("model_version", sa.String(255), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("route_reasons", sa.JSON, nullable=False),
        sa.Column("predictions", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("note_id", "model_version", name="uq_review_cases_note"),
    )
    op.create_index("ix_review_cases_status", "review_cases", ["status"])
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "case_id",
            sa.Integer,
            sa.ForeignKey("review_cases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reviewer", sa.String(255), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.CheckConstraint(
            "action IN ('accept', 'reject', 'add')", name="ck_review_decisions_action"
        ),
    )
    op.create_index("ix_review_decisions_case_id", "review_decisions", ["case_id"])
