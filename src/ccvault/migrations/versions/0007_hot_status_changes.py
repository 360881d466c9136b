"""Status changes without index writes: no index mentions `status` any more.

PostgreSQL can update a row in place (a HOT update: no new index entries) only when no
column the update changes appears in any index, key or partial-index predicate. Expiry
and orphan detection change `status` (and `updated_at`, `is_orphaned`), and `status` sat
in four predicates, so each of those updates wrote a new entry into every index of the
table. Here every "current version" predicate is spelled `superseded_at IS NULL AND
deleted_at IS NULL` instead (a new CHECK makes `superseded_at` set exactly on superseded
rows, so it means the same), and the tables keep a fifth of each page free (fillfactor 80)
for the new row versions: a HOT update must fit on the page of the row it replaces, and a
version row is typically updated once or twice in its life (superseded, expired,
orphaned).

The one-active unique index becomes one-current (active, expired or orphaned): stronger,
and what every write already keeps true, since a write supersedes whatever is current. It
also serves the supersede lookups, so the separate "current" index goes. The expiry index
now also holds the expired rows (status is no longer in its predicate): the sweep walks
it in keyset windows (see jobs/sweeps.sql).

Revision ID: 0007_hot_status_changes
Revises: 0006_write_functions
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0007_hot_status_changes"
down_revision = "0006_write_functions"
branch_labels = None
depends_on = None

_TABLES = ("profile_fields", "profile_assets")


def upgrade() -> None:
    # Every write bumps its profile's version (and the orphan sweep bumps thousands): the
    # columns it changes are in no index, so with room on the page those are HOT too.
    op.execute("ALTER TABLE customer_profiles SET (fillfactor = 70)")
    for table in _TABLES:
        op.execute(f"""
        ALTER TABLE {table} ADD CONSTRAINT {table}_superseded_at_check
            CHECK ((status = 'superseded') = (superseded_at IS NOT NULL));
        DROP INDEX {table}_one_active, {table}_current_idx, {table}_expiry_idx,
                   {table}_derived_active_idx;
        -- The invariant: one current version per (tenant, customer, name).
        CREATE UNIQUE INDEX {table}_one_current ON {table} (tenant_id, profile_id, name)
            WHERE superseded_at IS NULL AND deleted_at IS NULL;
        -- The expiry sweep's walk: current items with an expires_at, in (expires_at, id)
        -- order.
        CREATE INDEX {table}_expiry_idx ON {table} (expires_at, id)
            WHERE superseded_at IS NULL AND deleted_at IS NULL AND expires_at IS NOT NULL;
        -- Orphan detection's walk: current derived items in id order.
        CREATE INDEX {table}_derived_idx ON {table} (id)
            WHERE superseded_at IS NULL AND deleted_at IS NULL AND source_uuid IS NOT NULL;
        ALTER TABLE {table} SET (fillfactor = 80);
        """)


def downgrade() -> None:
    op.execute("ALTER TABLE customer_profiles RESET (fillfactor)")
    for table in _TABLES:
        op.execute(f"""
        ALTER TABLE {table} RESET (fillfactor);
        DROP INDEX {table}_derived_idx, {table}_expiry_idx, {table}_one_current;
        CREATE UNIQUE INDEX {table}_one_active ON {table} (tenant_id, profile_id, name)
            WHERE status = 'active' AND deleted_at IS NULL;
        CREATE INDEX {table}_current_idx ON {table} (tenant_id, profile_id, name)
            WHERE status IN ('active', 'expired', 'orphaned') AND deleted_at IS NULL;
        CREATE INDEX {table}_expiry_idx ON {table} (expires_at)
            WHERE status = 'active' AND expires_at IS NOT NULL;
        CREATE INDEX {table}_derived_active_idx ON {table} (id)
            WHERE status = 'active' AND deleted_at IS NULL AND source_uuid IS NOT NULL;
        ALTER TABLE {table} DROP CONSTRAINT {table}_superseded_at_check;
        """)
