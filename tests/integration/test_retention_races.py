"""History retention racing other writers on real concurrent connections: a write
deriving from a version retention is deleting either lands (and the version stays) or is
refused, so no item is ever left deriving from a deleted row; and retention racing an
erasure never brings erased data back (README "Background jobs", "History retention")."""

from __future__ import annotations

import asyncio
import random
from uuid import UUID

from ccvault.domain.admin import RetentionChange
from ccvault.domain.errors import VaultError
from ccvault.domain.models import ProfileField
from ccvault.jobs.sweeps import apply_history_retention
from ccvault.runtime import Vault

from .helpers import fetch, new_field
from .test_erasure_races import caller_for, race, rows_of

VERSIONS = 60


async def old_history(vault: Vault, tenant_id: UUID, cid: str) -> list[ProfileField]:
    """VERSIONS versions of one field, all older than the tenant's 30 days but the last."""
    await vault.services.tenants.patch(tenant_id, history_retention=RetentionChange(30))
    versions = [
        await vault.profiles.save_field(tenant_id, cid, "email", new_field(f"v{i}@x.io"))
        for i in range(VERSIONS)
    ]
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET collected_at = collected_at - interval '40 days'"
            " WHERE tenant_id = %s",
            (tenant_id,),
        )
    return versions


async def test_writes_deriving_from_versions_retention_deletes_never_dangle(
    vault: Vault, tenant_id: UUID
) -> None:
    versions = await old_history(vault, tenant_id, "source")
    landed: list[UUID] = []
    refused = 0

    async def derive(writer: int) -> None:
        nonlocal refused
        source = random.choice(versions[:-1])
        try:
            item = await vault.profiles.save_field(
                tenant_id,
                f"derived-{writer}",
                f"n{len(landed)}",
                new_field("d", derived_from=source),
            )
        except VaultError:
            refused += 1  # the source was gone, or held by the retention window
        else:
            landed.append(item.id)
        await asyncio.sleep(0)

    async def retain() -> None:
        for _ in range(3):
            await apply_history_retention(vault.profiles, tenant_id, batch=5, pause=0)

    stop = asyncio.Event()

    async def loop(writer: int) -> None:
        while not stop.is_set():
            await derive(writer)

    tasks = [asyncio.create_task(loop(w)) for w in range(6)]
    await asyncio.sleep(0.2)
    try:
        await retain()
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    await apply_history_retention(vault.profiles, tenant_id, pause=0)  # settles what is left

    assert landed, "no derivation landed: the race proves nothing"
    dangling = await fetch(
        vault.pool,
        "SELECT d.id FROM profile_fields d"
        " WHERE d.tenant_id = %s AND d.source_uuid IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM profile_fields s"
        "   WHERE s.tenant_id = d.tenant_id AND s.id = d.source_uuid)",
        (tenant_id,),
    )
    assert dangling == []
    # What stays: the current version and exactly the sources something derives from.
    sources = {
        r[0]
        for r in await fetch(
            vault.pool,
            "SELECT DISTINCT source_uuid FROM profile_fields"
            " WHERE tenant_id = %s AND source_uuid IS NOT NULL",
            (tenant_id,),
        )
    }
    kept = await rows_of(vault, tenant_id, [v.id for v in versions])
    assert kept == sources | {versions[-1].id}


async def test_retention_racing_an_erasure_never_brings_erased_data_back(
    vault: Vault, tenant_id: UUID
) -> None:
    versions = await old_history(vault, tenant_id, "retained")
    ids = [v.id for v in versions]

    async def sweep(writer: int) -> None:
        await apply_history_retention(vault.profiles, tenant_id, batch=3, pause=0)

    erased = await race(
        sweep, lambda: vault.services.erasure.erase(caller_for(tenant_id), "retained")
    )

    assert 1 <= erased.counts.fields <= len(ids)
    assert await rows_of(vault, tenant_id, ids) == set()
    assert (
        await fetch(
            vault.pool,
            "SELECT 1 FROM customer_profiles WHERE tenant_id = %s AND customer_id = %s",
            (tenant_id, "retained"),
        )
        == []
    )
