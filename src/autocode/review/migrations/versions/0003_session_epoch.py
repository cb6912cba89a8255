"""Accounts get a session epoch: logging out, deactivating an account or giving it a new
password bumps it, and every session issued before no longer opens (`User.credential_stamp`).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "review_users",
        sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"),
    )
