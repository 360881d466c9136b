"""The schema can be distributed by tenant (Citus): every primary key, unique index and
foreign key of a table with a `tenant_id` column includes it (migration 0014)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from ccvault.storage.urls import libpq_url

# (table, constraint or index) that may leave tenant_id out, and why.
ALLOWED = {
    # A request's key is found by its hash before the tenant is known; on Citus api_keys
    # is a reference table (copied to every node), where any key can be checked.
    ("api_keys", "api_keys_key_hash_key"): "looked up before the tenant is known",
}

# Constraints (primary keys, unique constraints, foreign keys) and unique indexes that
# back no constraint, on the tables that have a tenant_id column, without it.
WITHOUT_TENANT = """
WITH tenant_tables AS (
    SELECT c.oid, c.relname, a.attnum AS tenant_attnum
      FROM pg_class c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
     WHERE c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace
       AND NOT a.attisdropped
)
SELECT t.relname, con.conname, pg_get_constraintdef(con.oid)
  FROM tenant_tables t
  JOIN pg_constraint con ON con.conrelid = t.oid
 WHERE con.contype IN ('p', 'u', 'f') AND NOT t.tenant_attnum = ANY (con.conkey)
UNION ALL
SELECT t.relname, ic.relname, pg_get_indexdef(i.indexrelid)
  FROM tenant_tables t
  JOIN pg_index i ON i.indrelid = t.oid
  JOIN pg_class ic ON ic.oid = i.indexrelid
 WHERE i.indisunique AND NOT t.tenant_attnum = ANY (i.indkey::int2[])
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
 ORDER BY 1, 2
"""


def test_every_key_of_a_tenant_table_includes_tenant_id(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(WITHOUT_TENANT).fetchall()
    offending = [
        f"{table}.{name}: {definition}"
        for table, name, definition in rows
        if (table, name) not in ALLOWED
    ]
    assert offending == []


def test_the_allowed_exceptions_still_exist(database_url: str) -> None:
    """An entry of ALLOWED whose key is gone (or now includes tenant_id) is stale."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(WITHOUT_TENANT).fetchall()
    assert {(table, name) for table, name, _ in rows} >= set(ALLOWED)


def test_an_item_cannot_point_at_another_tenants_profile(database_url: str) -> None:
    """With tenant_id in the foreign key, the database itself refuses a row of one tenant
    that names a profile of another (before, only the queries' filters did)."""
    mine, theirs, profile = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(libpq_url(database_url)) as conn:
        conn.execute(
            "INSERT INTO tenants (id, name, validation_mode) VALUES (%s, %s, 'warn'), "
            "(%s, %s, 'warn')",
            (mine, f"mine-{mine}", theirs, f"theirs-{theirs}"),
        )
        conn.execute(
            "INSERT INTO customer_profiles (id, tenant_id, customer_id) VALUES (%s, %s, 'c1')",
            (profile, theirs),
        )
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "INSERT INTO consents (tenant_id, profile_id, consent_type, granted) "
                "VALUES (%s, %s, 'marketing', true)",
                (mine, profile),
            )
        conn.rollback()
