"""Wrong passwords are counted in the queue's database, not in one server process: every
process serving the queue, and a restarted one, sees the same failures (`LoginLimiter`).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from autocode.review.store import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_login_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_review_login_failures_key_at", "review_login_failures", ["key", "at"])
    op.create_index("ix_review_login_failures_at", "review_login_failures", ["at"])
