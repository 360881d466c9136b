"""A secret per tenant, kept in the database.

It signs what the vault hands a tenant and must recognise later (list cursors) and keys
what must not name a customer (erasure receipts' and audit entries' subject hashes). Kept
in PostgreSQL, so every API process and every restart agrees on it without a setting to
distribute; 32 random bytes from two v4 UUIDs (244 random bits: gen_random_uuid is built
in since PostgreSQL 13, gen_random_bytes would need pgcrypto).

Revision ID: 0009_tenant_secrets
Revises: 0008_orphan_window_functions
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0009_tenant_secrets"
down_revision = "0008_orphan_window_functions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Every tenant, existing ones included, gets its own secret."""
    op.execute(
        """
        ALTER TABLE tenants ADD COLUMN secret bytea NOT NULL
            DEFAULT (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))
            CHECK (length(secret) >= 32)
        """
    )


def downgrade() -> None:
    """Drop the secrets (cursors minted with them stop verifying)."""
    op.execute("ALTER TABLE tenants DROP COLUMN secret")
