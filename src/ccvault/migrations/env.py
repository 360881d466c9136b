"""Alembic environment: runs our raw-SQL revisions over psycopg 3 through SQLAlchemy."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from ccvault.storage.urls import sqlalchemy_url

# Any number of `ccv serve`/`ccv worker` processes may start at once; one migrates at a time.
MIGRATION_LOCK_KEY = 7_337_001


def run_migrations_online() -> None:
    """Run the pending revisions inside one transaction holding the migration lock."""
    url = context.config.attributes.get("database_url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no database URL given to the migration environment")
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, transaction_per_migration=False)
            with context.begin_transaction():
                # Transaction-scoped: released by the commit or the rollback, whatever happens.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY}
                )
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline SQL generation is not supported; run `ccv migrate`")
run_migrations_online()
