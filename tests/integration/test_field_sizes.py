"""Each field version's stored size (migration 0027) is what the profile limit check of
migration 0012 summed for it, whatever the value, and the check refuses at exactly the
same byte as before."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from ccvault import migrations
from ccvault.domain.bounds import MAX_PROFILE_VALUE_BYTES
from ccvault.storage.db import Pool, open_pool
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.urls import libpq_url

from .helpers import bare_tenant, fetch, new_field, profile_row_id

BEFORE = "0026_implied_tenant_keys"
# What migration 0012's check summed for one current version.
OLD_ROW_BYTES = "octet_length(value::text) + octet_length(source_metadata::text)"

# Values and metadata whose text form differs from what was sent: escapes, non-ASCII,
# numbers PostgreSQL renders at length, nesting, JSON null, TOASTed sizes.
VALUES: list[Any] = [
    "",
    "plain",
    'quote " backslash \\ tab \t newline \n',
    "ünïcödé ✓ 😀",
    "\u0001\u001f",
    0,
    -1.5,
    1e308,
    123456789012345678901234567890,
    True,
    False,
    None,
    [],
    {},
    [1, "two", [3, {"four": None}]],
    {"b": 1, "a": [True, None], "nested": {"deep": "é"}},
    [1e308] * 500,
    "x" * 300_000,
    {"k" * 50: "v" * 70_000},
]
METADATA: list[Any] = [{}, None, {"ip": "10.0.0.1", "note": "ünï"}, [1, 2], "s", {"x": "y" * 5000}]


async def _insert(pool: Pool, tenant_id: uuid.UUID, profile_id: uuid.UUID, rows: list[Any]) -> None:
    async with pool.connection() as conn:
        for name, value, metadata in rows:
            await conn.execute(
                "INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type,"
                " source, source_metadata) VALUES (gen_random_uuid(), %s, %s, %s, %s, 'json',"
                " 'user_provided', %s)",
                (tenant_id, profile_id, name, Jsonb(value), Jsonb(metadata)),
            )


async def _seed_profile(pool: Pool, tenant_id: uuid.UUID, customer_id: str) -> uuid.UUID:
    await ProfileStore(pool).save_field(tenant_id, customer_id, "seed", new_field("x"))
    profile_id = await profile_row_id(pool, tenant_id, customer_id)
    assert profile_id is not None
    return profile_id


async def test_the_stored_size_is_the_old_expression_for_every_kind_of_value(
    pool: Pool, tenant_id: uuid.UUID
) -> None:
    profile_id = await _seed_profile(pool, tenant_id, "c1")
    rows = [
        (f"v{i}_{j}", value, metadata)
        for i, value in enumerate(VALUES)
        for j, metadata in enumerate(METADATA)
        if i % len(METADATA) == j or j == 0
    ]
    await _insert(pool, tenant_id, profile_id, rows)
    stored = await fetch(
        pool,
        f"SELECT name, value_bytes, {OLD_ROW_BYTES} FROM profile_fields"  # noqa: S608
        " WHERE profile_id = %s",
        (profile_id,),
    )
    assert len(stored) == len(rows) + 1
    assert [(name, size) for name, size, _ in stored] == [(name, old) for name, _, old in stored]
    # An update of the value or the metadata (whoever makes it) updates the size.
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET value = '\"a much longer value than before\"',"
            " source_metadata = '{\"added\": true}' WHERE profile_id = %s AND name = 'v1_0'",
            (profile_id,),
        )
    (row,) = await fetch(
        pool,
        f"SELECT value_bytes, {OLD_ROW_BYTES} FROM profile_fields"  # noqa: S608
        " WHERE profile_id = %s AND name = 'v1_0'",
        (profile_id,),
    )
    assert row[0] == row[1] == len('"a much longer value than before"') + len('{"added": true}')


async def test_metadata_is_never_null_so_no_size_is_null(pool: Pool, tenant_id: uuid.UUID) -> None:
    """sum() skipped a NULL size, and skips a NULL column alike; neither can occur: the
    metadata column refuses NULL (JSON null is text, four bytes, counted as before)."""
    profile_id = await _seed_profile(pool, tenant_id, "c1")
    async with pool.connection() as conn:
        with pytest.raises(psycopg.errors.NotNullViolation):
            await conn.execute(
                "INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type,"
                " source, source_metadata) VALUES (gen_random_uuid(), %s, %s, 'n', '1',"
                " 'number', 'user_provided', NULL)",
                (tenant_id, profile_id),
            )
    await _insert(pool, tenant_id, profile_id, [("json_null", None, None)])
    (row,) = await fetch(
        pool,
        "SELECT value_bytes FROM profile_fields WHERE profile_id = %s AND name = 'json_null'",
        (profile_id,),
    )
    assert row == (len("null") + len("null"),)
    nulls = await fetch(pool, "SELECT count(*) FROM profile_fields WHERE value_bytes IS NULL")
    assert nulls == [(0,)]


@pytest.mark.parametrize("over", [0, 1])
async def test_the_byte_limit_refuses_at_the_same_byte(
    pool: Pool, tenant_id: uuid.UUID, over: int
) -> None:
    """A profile whose current versions sum to exactly the limit (by the old expression)
    takes the write; one byte more is refused with the same code and message."""
    profile_id = await _seed_profile(pool, tenant_id, "c1")
    (row,) = await fetch(
        pool,
        f"SELECT sum({OLD_ROW_BYTES}) FROM profile_fields"  # noqa: S608
        " WHERE profile_id = %s AND superseded_at IS NULL AND deleted_at IS NULL",
        (profile_id,),
    )
    room = MAX_PROFILE_VALUE_BYTES - row[0]
    # A string of n characters renders as n + 2 bytes; metadata '{}' as 2; a 4-byte
    # character keeps the value's length in characters below its size in bytes.
    value = "😀" + "é" * ((room - 4 - 2 - 2) // 2)
    value += "x" * (room - 2 - 2 - len(value.encode()) + over)
    if over:
        with pytest.raises(psycopg.Error) as caught:
            await _insert(pool, tenant_id, profile_id, [("fill", value, {})])
        assert caught.value.sqlstate == "CV422"
        assert caught.value.diag.message_primary == "profile_bytes_limit"
    else:
        await _insert(pool, tenant_id, profile_id, [("fill", value, {})])
    (total,) = await fetch(
        pool,
        f"SELECT sum({OLD_ROW_BYTES}), sum(value_bytes) FROM profile_fields"  # noqa: S608
        " WHERE profile_id = %s AND superseded_at IS NULL AND deleted_at IS NULL",
        (profile_id,),
    )
    assert total == ((MAX_PROFILE_VALUE_BYTES,) * 2 if not over else (row[0], row[0]))


async def _definitions(url: str) -> dict[str, str]:
    """The functions the migration recreates or replaces, as PostgreSQL prints them
    (runs of white space as one space)."""
    async with await psycopg.AsyncConnection.connect(libpq_url(url)) as conn:
        cur = await conn.execute(
            "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p"
            " WHERE p.proname IN ('ccv_field_doc', 'ccv_asof_field_doc',"
            " 'ccv_check_field_limits')"
        )
        return {name: " ".join(text.split()) for name, text in await cur.fetchall()}


async def test_the_migration_sizes_existing_versions_and_goes_back(
    fresh_database_url: str,
) -> None:
    await asyncio.to_thread(migrations.upgrade, fresh_database_url, BEFORE)
    pool = await open_pool(fresh_database_url, min_size=1, max_size=2)
    try:
        tid = await bare_tenant(pool)
        profile_id = await _seed_profile(pool, tid, "c1")
        await _insert(pool, tid, profile_id, [(f"v{i}", v, {"i": i}) for i, v in enumerate(VALUES)])
    finally:
        await pool.close()
    before = await _definitions(fresh_database_url)

    await asyncio.to_thread(migrations.upgrade, fresh_database_url, "0027_field_sizes")
    after = await _definitions(fresh_database_url)
    check = "ccv_check_field_limits(uuid,uuid)"
    assert {k: v for k, v in after.items() if k != check} == {
        k: v for k, v in before.items() if k != check
    }
    assert "sum(value_bytes)" in after[check]
    pool = await open_pool(fresh_database_url, min_size=1, max_size=2)
    try:
        stored = await fetch(
            pool,
            f"SELECT value_bytes, {OLD_ROW_BYTES} FROM profile_fields",  # noqa: S608
        )
        assert len(stored) == len(VALUES) + 1
        assert all(size == old for size, old in stored)
        profile = await ProfileStore(pool).get_profile(tid, "c1")
        assert len(profile.fields) == len(VALUES) + 1
    finally:
        await pool.close()

    await asyncio.to_thread(migrations.downgrade, fresh_database_url, BEFORE)
    assert await _definitions(fresh_database_url) == before
    pool = await open_pool(fresh_database_url, min_size=1, max_size=2)
    try:
        columns = await fetch(
            pool,
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'profile_fields' AND column_name = 'value_bytes'",
        )
        assert columns == [(0,)]
        saved = await ProfileStore(pool).save_field(tid, "c1", "after", new_field("y"))
        assert saved.value == "y"
    finally:
        await pool.close()
