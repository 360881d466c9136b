"""Cache epoch: the durable copy of the profile cache's epoch.

Revision ID: 0004_cache_epoch
Revises: 0003_profile_version
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0004_cache_epoch"
down_revision = "0003_profile_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- Raised by a writer that could not invalidate the cache; every process lifts Redis's
    -- epoch to this value, retiring entries that may have missed the invalidation.
    CREATE TABLE cache_epoch (
        id integer PRIMARY KEY CHECK (id = 1),
        epoch bigint NOT NULL
    );
    INSERT INTO cache_epoch VALUES (1, 1);
    """)


def downgrade() -> None:
    op.execute("DROP TABLE cache_epoch")
