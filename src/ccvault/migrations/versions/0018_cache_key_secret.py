"""The cache's key secret: profile cache keys name no customer.

A profile's Redis key is `profile:{tenant_id}:{HMAC-SHA256 hex of tenant and customer id}`
under this deployment-wide secret (README "Profile cache", "Keys"), so nothing in Redis
names a customer: not an entry, and not the value-less tombstone an erasure leaves for
the TTL. One row, like `cache_epoch`: every API process and every restart agrees on the
keys without a setting to distribute; 32 random bytes from two v4 UUIDs, as the tenant
secrets of migration 0009.

Revision ID: 0018_cache_key_secret
Revises: 0017_erasure
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0018_cache_key_secret"
down_revision = "0017_erasure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE cache_key_secret (
        id integer PRIMARY KEY CHECK (id = 1),
        secret bytea NOT NULL
            DEFAULT (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))
            CHECK (length(secret) >= 32)
    );
    INSERT INTO cache_key_secret (id) VALUES (1);
    """)


def downgrade() -> None:
    op.execute("DROP TABLE cache_key_secret")
