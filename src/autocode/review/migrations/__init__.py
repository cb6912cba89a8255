"""Alembic migrations of the review queue; run them with `autocode review migrate`."""
