"""The database holds the input bounds itself (migration 0012): unreadable timestamps are
refused whoever writes, rows stored before the migration are repaired, and the profile
limits hold for a raw INSERT too."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from ccvault import migrations
from ccvault.domain.bounds import MAX_INSTANT, MAX_PROFILE_FIELDS, MIN_INSTANT
from ccvault.storage.db import Pool, open_pool
from ccvault.storage.profiles import ProfileStore

from .helpers import bare_tenant, fetch, new_asset, new_field, profile_row_id

BEFORE_BOUNDS = "0011_review_queue"


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("profile_fields", "expires_at"),
        ("profile_fields", "verified_at"),
        ("profile_assets", "expires_at"),
    ],
)
@pytest.mark.parametrize("instant", ["10000-01-01 00:00:00+00", "0001-01-01 00:00:00+00"])
async def test_a_timestamp_outside_the_bounds_cannot_be_stored_by_any_writer(
    pool: Pool, tenant_id: uuid.UUID, table: str, column: str, instant: str
) -> None:
    store = ProfileStore(pool)
    item = (
        await store.save_field(tenant_id, "c1", "email", new_field("a@x.example"))
        if table == "profile_fields"
        else await store.save_asset(tenant_id, "c1", new_asset())
    )
    update = sql.SQL("UPDATE {} SET {} = %s::timestamptz WHERE id = %s").format(
        sql.Identifier(table), sql.Identifier(column)
    )
    async with pool.connection() as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute(update, (instant, item.id))


async def test_a_raw_insert_past_the_field_limit_is_refused(
    pool: Pool, tenant_id: uuid.UUID
) -> None:
    store = ProfileStore(pool)
    await store.save_field(tenant_id, "c1", "seed", new_field("x"))
    profile_id = await profile_row_id(pool, tenant_id, "c1")
    insert = (
        "INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type, source)"
        " SELECT gen_random_uuid(), %s, %s, 'n' || g, '1', 'number', 'user_provided'"
        "   FROM generate_series(1, %s) g"
    )
    async with pool.connection() as conn:
        with pytest.raises(psycopg.Error) as caught:
            await conn.execute(insert, (tenant_id, profile_id, MAX_PROFILE_FIELDS))
    assert caught.value.sqlstate == "CV422"
    count = await fetch(
        pool, "SELECT count(*) FROM profile_fields WHERE profile_id = %s", (profile_id,)
    )
    assert count == [(1,)]


# -- the repair of rows stored before the bounds ----------------------------------------------


async def test_the_migration_repairs_unreadable_timestamps_stored_before_it(
    fresh_database_url: str,
) -> None:
    await asyncio.to_thread(migrations.upgrade, fresh_database_url, BEFORE_BOUNDS)
    pool = await open_pool(fresh_database_url, min_size=1, max_size=2)
    try:
        tid = await bare_tenant(pool)
        store = ProfileStore(pool)
        old = await store.save_field(tid, "c1", "email", new_field("a@x.example"))
        current = await store.save_field(tid, "c1", "email", new_field("b@x.example"))
        asset = await store.save_asset(tid, "c1", new_asset())
        # What the API stored before the bounds: a year-10000 expiry, a 1 BC verification.
        async with pool.connection() as conn:
            await conn.execute(
                "UPDATE profile_fields SET expires_at = '10000-01-01 23:58:59+00',"
                " verified = true, verified_at = '0001-01-01 00:00:00+14' WHERE id = %s",
                (old.id,),
            )
            await conn.execute(
                "UPDATE profile_fields SET expires_at = '10000-01-01 23:58:59+00' WHERE id = %s",
                (current.id,),
            )
            await conn.execute(
                "UPDATE profile_assets SET expires_at = '0001-01-01 00:00:00+14' WHERE id = %s",
                (asset.id,),
            )
        with pytest.raises(ValueError):  # unreadable, as it was
            await store.field_history(tid, "c1", "email")
    finally:
        await pool.close()

    await asyncio.to_thread(migrations.upgrade, fresh_database_url, "head")
    pool = await open_pool(fresh_database_url, min_size=1, max_size=2)
    try:
        store = ProfileStore(pool)
        history = {f.id: f for f in await store.field_history(tid, "c1", "email")}
        assert history[old.id].expires_at == MAX_INSTANT
        assert history[old.id].verified_at == MIN_INSTANT
        assert history[current.id].expires_at == MAX_INSTANT
        profile = await store.get_profile(tid, "c1", include_history=True)
        assert profile.fields["email"].id == current.id  # a far expiry is still in force
        (repaired,) = await store.list_assets(tid, "c1", include_history=True)
        assert repaired.expires_at == MIN_INSTANT
        assert repaired.status == "expired"  # a long-past expiry still expired
        assert repaired.expires_at < datetime.now(UTC)
    finally:
        await pool.close()
