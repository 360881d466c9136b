"""The two sweeps, called as the jobs and the admin routes call them: expiry and orphan
detection change exactly the items they should, count them, can run twice, stay inside a
tenant when given one, work in batches and leave no stale profile in the cache.

Items are made orphanable with raw SQL (a soft delete that bypasses the store), because
the store's own delete already orphans the dependents in its transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, LiteralString
from uuid import UUID

import pytest
from pydantic import ValidationError

from cache_support import HITS, Counters, metric
from ccvault.config import Settings
from ccvault.domain.errors import NotFound
from ccvault.domain.models import ItemStatus, ProfileAsset, ProfileField
from ccvault.jobs import sweeps
from ccvault.jobs.sweeps import SweepResult, detect_orphaned_items, expire_stale_fields
from ccvault.runtime import Vault
from ccvault.storage.db import Pool, open_pool
from ccvault.storage.profiles import ProfileStore
from integration.helpers import fetch, new_asset, new_field, stored_asset, stored_field

PAST = datetime(2020, 1, 1, tzinfo=UTC)


def in_future() -> datetime:
    """An expiry no test outlives."""
    return datetime.now(UTC) + timedelta(days=1)


async def execute(pool: Pool, query: LiteralString, params: Any = None) -> None:
    """One raw statement outside the store (no version bump, no cache invalidation)."""
    async with pool.connection() as conn:
        await conn.execute(query, params)


async def soft_delete_field(pool: Pool, field_id: UUID) -> None:
    """Soft-delete a field behind the store's back, leaving its dependents active."""
    await execute(pool, "UPDATE profile_fields SET deleted_at = now() WHERE id = %s", (field_id,))


async def soft_delete_asset(pool: Pool, asset_id: UUID) -> None:
    """Soft-delete an asset behind the store's back, leaving its dependents active."""
    await execute(pool, "UPDATE profile_assets SET deleted_at = now() WHERE id = %s", (asset_id,))


async def lapse_field(pool: Pool, field_id: UUID) -> None:
    """Move a field's expires_at into the past behind the store's back."""
    await execute(pool, "UPDATE profile_fields SET expires_at = %s WHERE id = %s", (PAST, field_id))


async def field_status(pool: Pool, field_id: UUID) -> str:
    """The stored (not the effective) status of a field."""
    return str((await stored_field(pool, field_id))["status"])


async def asset_status(pool: Pool, asset_id: UUID) -> str:
    """The stored status of an asset."""
    return str((await stored_asset(pool, asset_id))["status"])


async def due_items(
    vault: Vault, tenant_id: UUID, fields: int, assets: int
) -> tuple[list[ProfileField], list[ProfileAsset]]:
    """`fields` fields and `assets` assets past their expires_at, over two customers."""
    saved_fields = [
        await vault.profiles.save_field(
            tenant_id, f"c{i % 2}", f"otp_{i}", new_field(f"{i:06}", expires_at=PAST)
        )
        for i in range(fields)
    ]
    saved_assets = [
        await vault.profiles.save_asset(
            tenant_id, f"c{i % 2}", new_asset(f"scan-{i}", expires_at=PAST)
        )
        for i in range(assets)
    ]
    return saved_fields, saved_assets


async def orphanable_items(
    vault: Vault, tenant_id: UUID, fields: int, assets: int
) -> tuple[list[ProfileField], list[ProfileAsset]]:
    """`fields` fields and `assets` assets derived from a field and an asset that are then
    soft-deleted with raw SQL: every derived item is due for orphaning."""
    source_field = await vault.profiles.save_field(tenant_id, "src", "document_id", new_field("D"))
    source_asset = await vault.profiles.save_asset(tenant_id, "src", new_asset("passport"))
    sources: list[ProfileField | ProfileAsset] = [source_field, source_asset]
    derived_fields = [
        await vault.profiles.save_field(
            tenant_id, f"c{i % 2}", f"derived_{i}", new_field(i, derived_from=sources[i % 2])
        )
        for i in range(fields)
    ]
    derived_assets = [
        await vault.profiles.save_asset(
            tenant_id, f"c{i % 2}", new_asset(f"copy-{i}", derived_from=sources[i % 2])
        )
        for i in range(assets)
    ]
    await soft_delete_field(vault.pool, source_field.id)
    await soft_delete_asset(vault.pool, source_asset.id)
    return derived_fields, derived_assets


# -- expiry -------------------------------------------------------------------------


async def test_expiry_sweep_expires_due_fields_and_assets_and_counts_each_kind(
    vault: Vault, tenant_id: UUID
) -> None:
    due_fields, due_assets = await due_items(vault, tenant_id, fields=3, assets=2)
    later = await vault.profiles.save_field(
        tenant_id, "c0", "session_token", new_field("t", expires_at=in_future())
    )
    forever = await vault.profiles.save_field(tenant_id, "c0", "email", new_field("a@x.example"))
    later_asset = await vault.profiles.save_asset(
        tenant_id, "c1", new_asset("visa", expires_at=in_future())
    )

    result = await expire_stale_fields(vault.profiles, tenant_id)

    assert result == SweepResult(fields=3, assets=2)
    assert result.as_dict() == {"updated": 5, "fields": 3, "assets": 2}
    for field in due_fields:
        assert await field_status(vault.pool, field.id) == "expired"
    for asset in due_assets:
        assert await asset_status(vault.pool, asset.id) == "expired"
    assert await field_status(vault.pool, later.id) == "active"
    assert await field_status(vault.pool, forever.id) == "active"
    assert await asset_status(vault.pool, later_asset.id) == "active"


async def test_expiry_sweep_run_twice_changes_nothing_the_second_time(
    vault: Vault, tenant_id: UUID
) -> None:
    _, due_assets = await due_items(vault, tenant_id, fields=2, assets=1)
    first = await expire_stale_fields(vault.profiles, tenant_id)
    rows_after_first = await fetch(
        vault.pool,
        "SELECT id, status, updated_at FROM profile_fields WHERE tenant_id = %s ORDER BY id",
        (tenant_id,),
    )

    second = await expire_stale_fields(vault.profiles, tenant_id)

    assert first == SweepResult(fields=2, assets=1)
    assert second == SweepResult(fields=0, assets=0)
    assert second.as_dict() == {"updated": 0, "fields": 0, "assets": 0}
    rows_after_second = await fetch(
        vault.pool,
        "SELECT id, status, updated_at FROM profile_fields WHERE tenant_id = %s ORDER BY id",
        (tenant_id,),
    )
    assert rows_after_second == rows_after_first
    assert await asset_status(vault.pool, due_assets[0].id) == "expired"


async def test_expiry_sweep_for_one_tenant_leaves_other_tenants_untouched(
    vault: Vault, tenant_id: UUID, other_tenant_id: UUID
) -> None:
    await due_items(vault, tenant_id, fields=1, assets=1)
    (theirs,), (their_asset,) = await due_items(vault, other_tenant_id, fields=1, assets=1)

    mine = await expire_stale_fields(vault.profiles, tenant_id)

    assert mine == SweepResult(fields=1, assets=1)
    assert await field_status(vault.pool, theirs.id) == "active"
    assert await asset_status(vault.pool, their_asset.id) == "active"
    assert await expire_stale_fields(vault.profiles, other_tenant_id) == SweepResult(1, 1)
    assert await field_status(vault.pool, theirs.id) == "expired"


async def test_expiry_sweep_never_touches_superseded_versions(
    vault: Vault, tenant_id: UUID
) -> None:
    old = await vault.profiles.save_field(
        tenant_id, "c1", "otp", new_field("111111", expires_at=in_future())
    )
    await vault.profiles.save_field(tenant_id, "c1", "otp", new_field("222222"))
    old_asset = await vault.profiles.save_asset(
        tenant_id, "c1", new_asset("passport", expires_at=in_future())
    )
    await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))
    # The superseded versions' expiry passes afterwards.
    await lapse_field(vault.pool, old.id)
    await execute(
        vault.pool, "UPDATE profile_assets SET expires_at = %s WHERE id = %s", (PAST, old_asset.id)
    )

    result = await expire_stale_fields(vault.profiles, tenant_id)

    assert result == SweepResult(fields=0, assets=0)
    assert await field_status(vault.pool, old.id) == "superseded"
    assert await asset_status(vault.pool, old_asset.id) == "superseded"


async def test_a_read_reports_expiry_before_the_sweep_and_the_sweep_persists_the_same_status(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))
    otp = await vault.profiles.save_field(
        tenant_id, "c1", "otp", new_field("123456", expires_at=PAST)
    )
    scan = await vault.profiles.save_asset(tenant_id, "c1", new_asset("scan", expires_at=PAST))

    # Before the sweep: every read already treats the items as expired...
    with pytest.raises(NotFound):
        await vault.profiles.get_field(tenant_id, "c1", "otp")
    before = await vault.profiles.get_profile(tenant_id, "c1")
    assert "otp" not in before.fields
    assert before.assets == []
    assert before.field_status_summary.expired == 1
    history = await vault.profiles.field_history(tenant_id, "c1", "otp")
    assert [f.status for f in history] == [ItemStatus.expired]
    assert (await vault.profiles.get_asset(tenant_id, scan.id)).status is ItemStatus.expired
    # ...while what is stored is still active: reads never write.
    assert await field_status(vault.pool, otp.id) == "active"
    assert await asset_status(vault.pool, scan.id) == "active"

    assert await expire_stale_fields(vault.profiles, tenant_id) == SweepResult(1, 1)

    assert await field_status(vault.pool, otp.id) == "expired"
    assert await asset_status(vault.pool, scan.id) == "expired"
    after = await vault.profiles.get_profile(tenant_id, "c1")
    assert after.fields.keys() == before.fields.keys()
    assert after.field_status_summary == before.field_status_summary


async def test_expiry_sweep_invalidates_the_cached_profiles_it_changes(
    vault: Vault, tenant_id: UUID
) -> None:
    otp = await vault.profiles.save_field(
        tenant_id, "c1", "otp", new_field("123456", expires_at=in_future())
    )
    await vault.profiles.get_profile(tenant_id, "c1")
    hits = metric(HITS)
    cached = await vault.profiles.get_profile(tenant_id, "c1")
    assert metric(HITS) == hits + 1, "the profile was not served from the cache"
    assert cached.fields["otp"].status is ItemStatus.active
    # The expiry passes behind the store's back: only the sweep can tell the cache.
    await lapse_field(vault.pool, otp.id)
    stale = await vault.profiles.get_profile(tenant_id, "c1")
    assert "otp" in stale.fields, "precondition: the cached copy is still served"

    assert await expire_stale_fields(vault.profiles, tenant_id) == SweepResult(1, 0)

    fresh = await vault.profiles.get_profile(tenant_id, "c1")
    assert "otp" not in fresh.fields
    assert fresh.field_status_summary.expired == 1
    assert fresh.field_status_summary.active == 0


async def test_expiry_sweep_tombstones_each_profile_once_per_run_however_many_windows(
    vault: Vault, tenant_id: UUID
) -> None:
    """Expiry bumps no version: a profile whose due items fall in several windows keeps
    its tombstone from the first (issue 17: 8,994 invalidations for 5,000 profiles)."""
    await due_items(vault, tenant_id, fields=8, assets=4)  # over two profiles
    before = Counters.now()

    assert await expire_stale_fields(vault.profiles, tenant_id, batch=2) == SweepResult(8, 4)

    assert before.since().invalidations == 2


async def test_expiry_sweep_in_batches_of_two_gets_the_same_totals_as_one_pass(
    vault: Vault, tenant_id: UUID, other_tenant_id: UUID
) -> None:
    fields, assets = await due_items(vault, tenant_id, fields=5, assets=3)
    await due_items(vault, other_tenant_id, fields=5, assets=3)

    batched = await expire_stale_fields(vault.profiles, tenant_id, batch=2)
    one_pass = await expire_stale_fields(vault.profiles, other_tenant_id)

    assert batched == one_pass == SweepResult(fields=5, assets=3)
    for field in fields:
        assert await field_status(vault.pool, field.id) == "expired"
    for asset in assets:
        assert await asset_status(vault.pool, asset.id) == "expired"
    assert await expire_stale_fields(vault.profiles, tenant_id, batch=2) == SweepResult(0, 0)


# -- orphan detection -----------------------------------------------------------------


async def test_orphan_sweep_orphans_items_whose_vault_source_was_soft_deleted(
    vault: Vault, tenant_id: UUID
) -> None:
    fields, assets = await orphanable_items(vault, tenant_id, fields=3, assets=2)
    healthy_source = await vault.profiles.save_field(tenant_id, "c1", "name", new_field("Ann"))
    healthy = await vault.profiles.save_field(
        tenant_id, "c1", "nickname", new_field("A", derived_from=healthy_source)
    )

    result = await detect_orphaned_items(vault.profiles, tenant_id)

    assert result == SweepResult(fields=3, assets=2)
    assert result.as_dict() == {"updated": 5, "fields": 3, "assets": 2}
    for field in fields:
        row = await stored_field(vault.pool, field.id)
        assert (row["status"], row["is_orphaned"], row["deleted_at"]) == ("orphaned", True, None)
    for asset in assets:
        row = await stored_asset(vault.pool, asset.id)
        assert (row["status"], row["is_orphaned"]) == ("orphaned", True)
    assert await field_status(vault.pool, healthy.id) == "active"


async def test_orphan_sweep_orphans_items_whose_source_row_is_gone(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D"))
    derived = await vault.profiles.save_asset(
        tenant_id, "c1", new_asset("scan", derived_from=source)
    )
    await execute(vault.pool, "DELETE FROM profile_fields WHERE id = %s", (source.id,))

    assert await detect_orphaned_items(vault.profiles, tenant_id) == SweepResult(0, 1)
    assert await asset_status(vault.pool, derived.id) == "orphaned"


async def test_orphan_sweep_run_twice_changes_nothing_the_second_time(
    vault: Vault, tenant_id: UUID
) -> None:
    await orphanable_items(vault, tenant_id, fields=2, assets=1)

    first = await detect_orphaned_items(vault.profiles, tenant_id)
    second = await detect_orphaned_items(vault.profiles, tenant_id)

    assert first == SweepResult(fields=2, assets=1)
    assert second == SweepResult(fields=0, assets=0)


async def test_orphan_sweep_for_one_tenant_leaves_other_tenants_untouched(
    vault: Vault, tenant_id: UUID, other_tenant_id: UUID
) -> None:
    await orphanable_items(vault, tenant_id, fields=1, assets=1)
    (theirs,), (their_asset,) = await orphanable_items(vault, other_tenant_id, fields=1, assets=1)

    assert await detect_orphaned_items(vault.profiles, tenant_id) == SweepResult(1, 1)

    assert await field_status(vault.pool, theirs.id) == "active"
    assert await asset_status(vault.pool, their_asset.id) == "active"
    assert await detect_orphaned_items(vault.profiles, other_tenant_id) == SweepResult(1, 1)


async def test_orphan_sweep_never_touches_superseded_versions(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D"))
    old = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=source)
    )
    await vault.profiles.save_field(tenant_id, "c1", "birth_date", new_field("1990-01-02"))
    old_asset = await vault.profiles.save_asset(
        tenant_id, "c1", new_asset("scan", derived_from=source)
    )
    await vault.profiles.save_asset(tenant_id, "c1", new_asset("scan"))
    await soft_delete_field(vault.pool, source.id)

    assert await detect_orphaned_items(vault.profiles, tenant_id) == SweepResult(0, 0)

    old_row = await stored_field(vault.pool, old.id)
    assert (old_row["status"], old_row["is_orphaned"]) == ("superseded", False)
    assert await asset_status(vault.pool, old_asset.id) == "superseded"


@pytest.mark.parametrize("kind", ["session", "tool", "external"])
async def test_orphan_sweep_never_orphans_items_with_outside_sources(
    vault: Vault, tenant_id: UUID, kind: str
) -> None:
    # Even an outside reference that happens to spell the id of a deleted vault item.
    deleted = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D"))
    await soft_delete_field(vault.pool, deleted.id)
    link = {"source_item_type": kind}
    field_by_name = await vault.profiles.save_field(
        tenant_id, "c1", "intent", new_field("refund", source_item_id=f"{kind}-42", **link)
    )
    field_by_uuid = await vault.profiles.save_field(
        tenant_id, "c1", "topic", new_field("billing", source_item_id=str(deleted.id), **link)
    )
    asset = await vault.profiles.save_asset(
        tenant_id, "c1", new_asset("receipt", source_item_id=str(uuid.uuid4()), **link)
    )

    assert await detect_orphaned_items(vault.profiles, tenant_id) == SweepResult(0, 0)

    assert await field_status(vault.pool, field_by_name.id) == "active"
    assert await field_status(vault.pool, field_by_uuid.id) == "active"
    assert await asset_status(vault.pool, asset.id) == "active"


async def test_expired_sources_do_not_orphan_their_dependents(
    vault: Vault, tenant_id: UUID
) -> None:
    # One source only effectively expired (stored active), one expired by the sweep.
    lapsed = await vault.profiles.save_field(
        tenant_id, "c1", "document_id", new_field("D", expires_at=PAST)
    )
    swept = await vault.profiles.save_asset(tenant_id, "c1", new_asset("visa", expires_at=PAST))
    from_lapsed = await vault.profiles.save_field(
        tenant_id, "c1", "nationality", new_field("FR", derived_from=lapsed)
    )
    from_swept = await vault.profiles.save_asset(
        tenant_id, "c1", new_asset("visa-copy", derived_from=swept)
    )
    await execute(
        vault.pool, "UPDATE profile_assets SET status = 'expired' WHERE id = %s", (swept.id,)
    )

    assert await detect_orphaned_items(vault.profiles, tenant_id) == SweepResult(0, 0)

    assert await field_status(vault.pool, from_lapsed.id) == "active"
    assert await asset_status(vault.pool, from_swept.id) == "active"


async def test_orphan_sweep_is_not_transitive(vault: Vault, tenant_id: UUID) -> None:
    root = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D"))
    child = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=root)
    )
    grandchild = await vault.profiles.save_field(
        tenant_id, "c1", "age_band", new_field("30-39", derived_from=child)
    )
    await soft_delete_field(vault.pool, root.id)

    assert await detect_orphaned_items(vault.profiles, tenant_id) == SweepResult(1, 0)

    assert await field_status(vault.pool, child.id) == "orphaned"
    assert await field_status(vault.pool, grandchild.id) == "active"
    assert await detect_orphaned_items(vault.profiles, tenant_id) == SweepResult(0, 0)


async def test_orphan_sweep_invalidates_the_cached_profiles_it_changes(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_field(tenant_id, "src", "document_id", new_field("D"))
    derived = await vault.profiles.save_field(
        tenant_id, "c1", "birth_date", new_field("1990-01-01", derived_from=source)
    )
    await vault.profiles.get_profile(tenant_id, "c1")
    hits = metric(HITS)
    cached = await vault.profiles.get_profile(tenant_id, "c1")
    assert metric(HITS) == hits + 1, "the profile was not served from the cache"
    assert cached.fields["birth_date"].id == derived.id
    await soft_delete_field(vault.pool, source.id)
    stale = await vault.profiles.get_profile(tenant_id, "c1")
    assert "birth_date" in stale.fields, "precondition: the cached copy is still served"

    assert await detect_orphaned_items(vault.profiles, tenant_id) == SweepResult(1, 0)

    fresh = await vault.profiles.get_profile(tenant_id, "c1")
    assert "birth_date" not in fresh.fields
    assert fresh.field_status_summary.orphaned == 1
    assert fresh.field_status_summary.active == 0


async def test_orphan_window_waits_for_a_writer_holding_the_profile_without_deadlock(
    vault: Vault, tenant_id: UUID
) -> None:
    """A writer locks its profile, then changes items. The window locks its profiles
    before its items, so it waits for the writer instead of holding an item the writer
    needs (which would deadlock), and leaves the row the writer changed to the next run."""
    source = await vault.profiles.save_field(tenant_id, "src", "document_id", new_field("D"))
    derived = await vault.profiles.save_field(
        tenant_id, "c1", "nickname", new_field("N", derived_from=source)
    )
    await soft_delete_field(vault.pool, source.id)

    async with vault.pool.connection() as writer:
        async with writer.transaction():
            await writer.execute(
                "SELECT 1 FROM customer_profiles WHERE tenant_id = %s AND customer_id = 'c1'"
                " FOR NO KEY UPDATE",
                (tenant_id,),
            )
            sweep = asyncio.create_task(detect_orphaned_items(vault.profiles, tenant_id))
            await until_a_sweep_waits_for_a_lock(vault.pool)
            # The writer's supersede of the item the window picked must not wait.
            await asyncio.wait_for(
                writer.execute(
                    "UPDATE profile_fields SET status = 'superseded', superseded_at = now()"
                    " WHERE id = %s",
                    (derived.id,),
                ),
                timeout=5,
            )
        result = await asyncio.wait_for(sweep, timeout=10)

    assert result == SweepResult(0, 0)
    assert await field_status(vault.pool, derived.id) == "superseded"


async def until_a_sweep_waits_for_a_lock(pool: Pool) -> None:
    """Poll until an orphan window is blocked on a row lock (10 s at most)."""
    for _ in range(200):
        rows = await fetch(
            pool,
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%%ccv_orphan_window%%'",
        )
        if rows:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the orphan window never waited for the profile lock")


async def test_orphan_sweep_in_batches_of_two_gets_the_same_totals_as_one_pass(
    vault: Vault, tenant_id: UUID, other_tenant_id: UUID
) -> None:
    fields, assets = await orphanable_items(vault, tenant_id, fields=5, assets=3)
    # Healthy derived items interleave with the orphans in the id order the windows walk.
    keeper = await vault.profiles.save_field(tenant_id, "c9", "name", new_field("Ann"))
    healthy = [
        await vault.profiles.save_field(
            tenant_id, "c9", f"alias_{i}", new_field(f"A{i}", derived_from=keeper)
        )
        for i in range(4)
    ]
    await orphanable_items(vault, other_tenant_id, fields=5, assets=3)

    batched = await detect_orphaned_items(vault.profiles, tenant_id, batch=2)
    one_pass = await detect_orphaned_items(vault.profiles, other_tenant_id)

    assert batched == one_pass == SweepResult(fields=5, assets=3)
    for field in fields:
        assert await field_status(vault.pool, field.id) == "orphaned"
    for asset in assets:
        assert await asset_status(vault.pool, asset.id) == "orphaned"
    for field in healthy:
        assert await field_status(vault.pool, field.id) == "active"


# -- every tenant ---------------------------------------------------------------------


async def test_sweeps_without_a_tenant_process_every_tenant(isolated_vault: Vault) -> None:
    vault = isolated_vault
    tenants = [(await vault.tenants.create(f"t{i}", "warn"))[0].tenant_id for i in range(2)]
    for tenant in tenants:
        await due_items(vault, tenant, fields=2, assets=1)
        await orphanable_items(vault, tenant, fields=1, assets=2)

    assert await expire_stale_fields(vault.profiles) == SweepResult(fields=4, assets=2)
    assert await detect_orphaned_items(vault.profiles, batch=2) == SweepResult(fields=2, assets=4)
    rows = await fetch(
        vault.pool,
        "SELECT tenant_id, status, count(*) FROM profile_fields"
        " WHERE deleted_at IS NULL GROUP BY 1, 2",
    )
    counts = {(tenant, status): n for tenant, status, n in rows}
    for tenant in tenants:
        assert counts[(tenant, "expired")] == 2
        assert counts[(tenant, "orphaned")] == 1
    assert await expire_stale_fields(vault.profiles) == SweepResult(0, 0)
    assert await detect_orphaned_items(vault.profiles) == SweepResult(0, 0)


async def test_a_sweep_hands_its_connection_back_with_the_planner_settings_it_found(
    database_url: str,
) -> None:
    """The sweeps pin their walk's plan for their own session only."""
    pool = await open_pool(database_url, min_size=1, max_size=1)
    try:
        store = ProfileStore(pool)
        await expire_stale_fields(store)
        await detect_orphaned_items(store)
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT current_setting('enable_seqscan'), current_setting('enable_bitmapscan')"
            )
            assert await cur.fetchone() == ("on", "on")
    finally:
        await pool.close()


@pytest.mark.parametrize(("pause", "sleeps"), [(3.0, 2), (0.0, 0)])
async def test_orphan_sweep_sleeps_between_windows_when_paced(
    vault: Vault, tenant_id: UUID, monkeypatch: pytest.MonkeyPatch, pause: float, sleeps: int
) -> None:
    """Five orphans in windows of two: three windows, a pause after each but the last."""
    requested: list[float] = []

    async def record(seconds: float) -> None:
        requested.append(seconds)

    monkeypatch.setattr(sweeps, "asyncio", SimpleNamespace(sleep=record))
    await orphanable_items(vault, tenant_id, fields=5, assets=0)

    result = await detect_orphaned_items(vault.profiles, tenant_id, batch=2, pause=pause)

    assert result == SweepResult(fields=5, assets=0)
    assert len(requested) == sleeps
    assert all(seconds > 0 for seconds in requested)


def test_orphan_pause_defaults_to_three_and_refuses_a_negative_value() -> None:
    assert Settings().orphan_pause == 3.0
    with pytest.raises(ValidationError):
        Settings(orphan_pause=-1)


@pytest.mark.parametrize(("pause", "sleeps"), [(3.0, 2), (0.0, 0)])
async def test_expiry_sweep_sleeps_between_windows_when_paced(
    vault: Vault, tenant_id: UUID, monkeypatch: pytest.MonkeyPatch, pause: float, sleeps: int
) -> None:
    """Five due fields in windows of two: three windows, a pause after each but the last."""
    requested: list[float] = []

    async def record(seconds: float) -> None:
        requested.append(seconds)

    monkeypatch.setattr(sweeps, "asyncio", SimpleNamespace(sleep=record))
    await due_items(vault, tenant_id, fields=5, assets=0)

    result = await expire_stale_fields(vault.profiles, tenant_id, batch=2, pause=pause)

    assert result == SweepResult(fields=5, assets=0)
    assert len(requested) == sleeps
    assert all(seconds > 0 for seconds in requested)


def test_expire_pause_defaults_to_three_and_refuses_a_negative_value() -> None:
    assert Settings().expire_pause == 3.0
    with pytest.raises(ValidationError):
        Settings(expire_pause=-1)


# -- incremental orphan detection ------------------------------------------------------


async def runs(pool: Pool) -> dict[str, tuple[datetime, datetime | None]]:
    """sweep_runs: each sweep's last start and last full pass."""
    rows = await fetch(pool, "SELECT sweep, last_started_at, last_full_at FROM sweep_runs")
    return {sweep: (started, full) for sweep, started, full in rows}


async def test_periodic_orphan_runs_are_incremental_between_daily_full_passes(
    isolated_vault: Vault,
) -> None:
    """The first periodic run is a full pass; the next ones look only at sources deleted
    since (a source whose deleted_at lies before the last run is theirs to miss); once
    the last full pass is a day old, the run is a full pass again and catches it."""
    vault = isolated_vault
    tenant = (await vault.tenants.create("t", "warn"))[0].tenant_id
    await orphanable_items(vault, tenant, fields=2, assets=1)

    first = await detect_orphaned_items(vault.profiles, incremental=True)
    assert first == SweepResult(fields=2, assets=1)
    started, full = (await runs(vault.pool))["detect_orphaned_items"]
    assert full == started

    # Deleted now: found by the next incremental run, whatever kind source and item are.
    recent, recent_assets = await orphanable_items(vault, tenant, fields=1, assets=2)
    # Deleted "long ago" by hand (no store does that): invisible to incremental runs.
    hidden_source = await vault.profiles.save_field(tenant, "old", "document_id", new_field("X"))
    hidden = await vault.profiles.save_field(
        tenant, "old", "derived", new_field("Y", derived_from=hidden_source)
    )
    await execute(
        vault.pool,
        "UPDATE profile_fields SET deleted_at = %s WHERE id = %s",
        (PAST, hidden_source.id),
    )

    assert await detect_orphaned_items(vault.profiles, incremental=True) == SweepResult(1, 2)
    assert all([await field_status(vault.pool, f.id) == "orphaned" for f in recent])
    assert all([await asset_status(vault.pool, a.id) == "orphaned" for a in recent_assets])
    assert await field_status(vault.pool, hidden.id) == "active"
    assert (await runs(vault.pool))["detect_orphaned_items"][1] == full  # no full pass
    assert await detect_orphaned_items(vault.profiles, incremental=True) == SweepResult(0, 0)

    await execute(vault.pool, "UPDATE sweep_runs SET last_full_at = now() - interval '25 hours'")
    assert await detect_orphaned_items(vault.profiles, incremental=True) == SweepResult(1, 0)
    assert await field_status(vault.pool, hidden.id) == "orphaned"
    assert (await runs(vault.pool))["detect_orphaned_items"][1] > full


async def test_incremental_orphan_run_walks_deleted_sources_in_windows(
    isolated_vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five deleted sources in windows of two (half the batch): every derived item is
    found, and the run sleeps after each window but the last."""
    vault = isolated_vault
    tenant = (await vault.tenants.create("t", "warn"))[0].tenant_id
    await detect_orphaned_items(vault.profiles, incremental=True)  # the first full pass
    requested: list[float] = []

    async def record(seconds: float) -> None:
        requested.append(seconds)

    monkeypatch.setattr(sweeps, "asyncio", SimpleNamespace(sleep=record))
    derived = []
    for i in range(5):
        source = await vault.profiles.save_field(tenant, f"c{i}", "document_id", new_field(i))
        derived.append(
            await vault.profiles.save_field(
                tenant, f"c{i}", "derived", new_field(i, derived_from=source)
            )
        )
        await soft_delete_field(vault.pool, source.id)

    result = await detect_orphaned_items(vault.profiles, batch=4, pause=3, incremental=True)

    assert result == SweepResult(fields=5, assets=0)
    assert len(requested) == 2
    assert all([await field_status(vault.pool, f.id) == "orphaned" for f in derived])


async def test_a_tenant_scoped_orphan_run_is_always_full(vault: Vault, tenant_id: UUID) -> None:
    """Incremental runs are the periodic all-tenant ones; a run for one tenant (an admin's)
    is a full pass of that tenant and leaves the periodic run's record alone."""
    await orphanable_items(vault, tenant_id, fields=1, assets=1)
    before = await runs(vault.pool)
    await execute(
        vault.pool,
        "UPDATE profile_fields SET deleted_at = %s WHERE deleted_at IS NOT NULL AND tenant_id = %s",
        (PAST, tenant_id),
    )
    await execute(
        vault.pool,
        "UPDATE profile_assets SET deleted_at = %s WHERE deleted_at IS NOT NULL AND tenant_id = %s",
        (PAST, tenant_id),
    )

    result = await detect_orphaned_items(vault.profiles, tenant_id, incremental=True)

    assert result == SweepResult(fields=1, assets=1)
    assert await runs(vault.pool) == before
