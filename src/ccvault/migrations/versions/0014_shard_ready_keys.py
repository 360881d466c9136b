"""Shard-ready keys: every primary key, unique index and foreign key of a tenant's tables
includes `tenant_id`.

A distributed PostgreSQL (Citus) spreads a table over nodes by one column and can enforce
a primary key, a unique index or a foreign key only when it includes that column: each
node checks its own rows. Distributed by `tenant_id`, a tenant's rows all live on one
node, so these keys stay checkable there. Before this migration the item and profile
tables were keyed by `id` alone and referred to profiles by `profile_id` alone.

`tenant_id` is added last (`(id, tenant_id)`, `(profile_id, tenant_id)`): every index
keeps its leading column, so a lookup by `id` or `profile_id` uses the same index as
before, and every plan of the hot paths stays what it was (the catalog test and the
EXPLAINs in tests/integration/test_shard_ready_schema.py). An `id` is a random UUID, so
`(id, tenant_id)` is unique exactly when `id` is; a profile's tenant never changes, so the
foreign keys accept and refuse the same rows as before (a merge moves items between two
profiles of one tenant).

The foreign keys are found in the catalog, not listed: any key from a tenant table to a
tenant table's `id` gains `tenant_id` on both sides, whichever migration added it.

Not changed: `api_keys.key_hash` stays unique on its own. A request's key is looked up by
its hash before anyone knows the tenant; on Citus `api_keys` is a reference table (a copy
on every node, like `tenants`), where any key is checkable.

Revision ID: 0014_shard_ready_keys
Revises: 0013_value_constraints
Create Date: 2026-12-03
"""

from __future__ import annotations

from typing import NamedTuple

from alembic import op
from sqlalchemy import text

revision = "0014_shard_ready_keys"
down_revision = "0013_value_constraints"
branch_labels = None
depends_on = None

# table -> the primary key's columns before this migration.
_PRIMARY_KEYS = {
    "api_keys": ("id",),
    "customer_profiles": ("id",),
    "channel_identities": ("id",),
    "consents": ("profile_id", "consent_type"),
    "profile_fields": ("id",),
    "profile_assets": ("id",),
    "profile_field_definitions": ("id",),
    "scenario_field_requirements": ("id",),
}

# Foreign keys between two tables that both have tenant_id, whose columns do not include
# it yet (upgrade) or end with it (downgrade: those this migration made).
_FOREIGN_KEYS = """
SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
              ORDER BY k.i)::text[],
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
               JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
              ORDER BY k.i)::text[],
       c.confupdtype, c.confdeltype
  FROM pg_constraint c
 WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
   AND EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.conrelid AND a.attname = 'tenant_id')
   AND EXISTS (SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.confrelid AND a.attname = 'tenant_id')
 ORDER BY 1
"""
_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


class _ForeignKey(NamedTuple):
    name: str
    table: str
    target: str
    columns: list[str]
    target_columns: list[str]
    on_update: str
    on_delete: str

    def add(self, columns: list[str], target_columns: list[str]) -> str:
        return (
            f"ALTER TABLE {self.table} ADD CONSTRAINT {self.name} "
            f"FOREIGN KEY ({', '.join(columns)}) "
            f"REFERENCES {self.target} ({', '.join(target_columns)}) "
            f"ON UPDATE {_ACTIONS[self.on_update]} ON DELETE {_ACTIONS[self.on_delete]}"
        )


def _foreign_keys() -> list[_ForeignKey]:
    rows = op.get_bind().execute(text(_FOREIGN_KEYS)).all()
    return [_ForeignKey(*row) for row in rows]


def _set_primary_keys(with_tenant: bool) -> None:
    for table, columns in _PRIMARY_KEYS.items():
        key = [*columns, "tenant_id"] if with_tenant else list(columns)
        op.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
            f"ADD CONSTRAINT {table}_pkey PRIMARY KEY ({', '.join(key)})"
        )


def upgrade() -> None:
    keys = [fk for fk in _foreign_keys() if "tenant_id" not in fk.columns]
    for fk in keys:  # they depend on the primary keys replaced below
        op.execute(f"ALTER TABLE {fk.table} DROP CONSTRAINT {fk.name}")
    _set_primary_keys(with_tenant=True)
    op.execute("""
    DROP INDEX channel_identities_one_primary;
    CREATE UNIQUE INDEX channel_identities_one_primary
        ON channel_identities (profile_id, tenant_id) WHERE is_primary;
    """)
    for fk in keys:
        op.execute(fk.add([*fk.columns, "tenant_id"], [*fk.target_columns, "tenant_id"]))


def downgrade() -> None:
    keys = [
        fk
        for fk in _foreign_keys()
        if len(fk.columns) > 1 and fk.columns[-1] == "tenant_id" and fk.table != "tenants"
    ]
    for fk in keys:
        op.execute(f"ALTER TABLE {fk.table} DROP CONSTRAINT {fk.name}")
    _set_primary_keys(with_tenant=False)
    op.execute("""
    DROP INDEX channel_identities_one_primary;
    CREATE UNIQUE INDEX channel_identities_one_primary
        ON channel_identities (profile_id) WHERE is_primary;
    """)
    for fk in keys:
        op.execute(fk.add(fk.columns[:-1], fk.target_columns[:-1]))
