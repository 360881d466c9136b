"""Profile version: incremented by every mutation, so the cache can refuse stale entries.

Revision ID: 0003_profile_version
Revises: 0002_schema_layer
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0003_profile_version"
down_revision = "0002_schema_layer"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE customer_profiles ADD COLUMN version bigint NOT NULL DEFAULT 1")


def downgrade() -> None:
    op.execute("ALTER TABLE customer_profiles DROP COLUMN version")
