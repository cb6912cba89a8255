"""Alembic's entry point: migrations run on the connection `autocode.review.schema` hands over.

No URL is read here (no alembic.ini, no env vars): the caller owns the connection and its
transaction, so a migration and the lock that serialises migrators commit together.
"""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
