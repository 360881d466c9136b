"""Erasure racing other writers on real concurrent connections: whatever the interleaving,
nothing erased comes back, and every write that lost the race either failed or landed
in a fresh profile strictly after the erasure (README "Erasure")."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import UUID

import pytest

from ccvault.domain.caller import Caller
from ccvault.domain.errors import InvalidInput, NotFound, VaultError
from ccvault.domain.models import ProfileField, VerificationLevel
from ccvault.domain.privacy import Erasure
from ccvault.jobs.sweeps import detect_orphaned_items, expire_stale_fields
from ccvault.runtime import Vault

from .helpers import fetch, new_field

WRITERS = 6


def caller_for(tenant_id: UUID) -> Caller:
    return Caller(tenant_id=tenant_id, name="t", validation_mode="warn", secret=b"k" * 32)


async def race(
    work: Callable[[int], Awaitable[None]], erase: Callable[[], Awaitable[Erasure]]
) -> Erasure:
    """Run `work(i)` in a loop on WRITERS tasks, erase while they run, stop them after."""
    stop = asyncio.Event()

    async def loop(writer: int) -> None:
        while not stop.is_set():
            await work(writer)

    tasks = [asyncio.create_task(loop(w)) for w in range(WRITERS)]
    await asyncio.sleep(0.3)
    try:
        erased = await erase()
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return erased


async def rows_of(vault: Vault, tenant_id: UUID, ids: list[UUID]) -> set[UUID]:
    """Which of these field ids still exist."""
    rows = await fetch(
        vault.pool,
        "SELECT id FROM profile_fields WHERE tenant_id = %s AND id = ANY(%s)",
        (tenant_id, ids),
    )
    return {r[0] for r in rows}


async def test_writes_racing_an_erasure_are_erased_or_land_in_a_fresh_profile_after_it(
    vault: Vault, tenant_id: UUID
) -> None:
    cid = "racer"
    await vault.profiles.save_field(tenant_id, cid, "seed", new_field("seed"))
    written: list[ProfileField] = []

    async def write(writer: int) -> None:
        written.append(
            await vault.profiles.save_field(tenant_id, cid, f"f{writer}", new_field("v"))
        )

    erased = await race(write, lambda: vault.services.erasure.erase(caller_for(tenant_id), cid))

    before = [f for f in written if f.collected_at < erased.erased_at]
    after = [f for f in written if f.collected_at > erased.erased_at]
    assert before and after, "the writers did not overlap the erasure"
    assert len(before) + len(after) == len(written)
    assert await rows_of(vault, tenant_id, [f.id for f in before]) == set()
    assert await rows_of(vault, tenant_id, [f.id for f in after]) == {f.id for f in after}
    assert erased.counts.fields == len(before) + 1  # the seed too
    # The profile that exists now is a new row holding only the later writes, all dated
    # after the erasure. (Its created_at is its creating transaction's start, which may
    # precede the erasure: that writer waited for the erasure's lock.)
    [(versions, oldest)] = await fetch(
        vault.pool,
        "SELECT count(*), min(f.collected_at) FROM customer_profiles p"
        " JOIN profile_fields f ON f.profile_id = p.id"
        " WHERE p.tenant_id = %s AND p.customer_id = %s",
        (tenant_id, cid),
    )
    assert versions == len(after)
    assert oldest > erased.erased_at


async def test_writes_that_need_the_profile_fail_with_404_once_it_is_erased(
    vault: Vault, tenant_id: UUID
) -> None:
    cid = "needs-profile"
    first = await vault.profiles.save_field(tenant_id, cid, "email", new_field("a"))
    outcomes: list[tuple[str, datetime | None]] = []

    async def consent(writer: int) -> None:
        try:
            await vault.profiles.set_verification_level(tenant_id, cid, _level(writer))
            outcomes.append(("ok", None))
        except NotFound:
            outcomes.append(("404", None))

    erased = await race(consent, lambda: vault.services.erasure.erase(caller_for(tenant_id), cid))

    kinds = [k for k, _ in outcomes]
    assert "ok" in kinds and "404" in kinds
    # Once a write saw 404, none succeeded later (no profile came back).
    assert "ok" not in kinds[kinds.index("404") :]
    assert await rows_of(vault, tenant_id, [first.id]) == set()
    assert erased.counts.fields == 1
    assert (
        await fetch(
            vault.pool,
            "SELECT 1 FROM customer_profiles WHERE tenant_id = %s AND customer_id = %s",
            (tenant_id, cid),
        )
        == []
    )


def _level(writer: int) -> VerificationLevel:
    return list(VerificationLevel)[writer % len(VerificationLevel)]


async def test_derivations_racing_an_erasure_are_erased_or_refused(
    vault: Vault, tenant_id: UUID
) -> None:
    cid = "source-customer"
    source = await vault.profiles.save_field(tenant_id, cid, "email", new_field("a@b.c"))
    derived: list[ProfileField] = []
    refused: list[VaultError] = []
    latest: dict[int, ProfileField] = {}

    async def derive(writer: int) -> None:
        # Even writers derive from the erased item, odd ones from the latest item derived
        # from it (a chain growing through other profiles while the erasure runs).
        parent = source if writer % 2 == 0 else latest.get(writer - 1, source)
        try:
            item = await vault.profiles.save_field(
                tenant_id, f"other-{writer}", "score", new_field("x", derived_from=parent)
            )
        except InvalidInput as exc:
            refused.append(exc)
            return
        derived.append(item)
        latest[writer] = item

    erased = await race(derive, lambda: vault.services.erasure.erase(caller_for(tenant_id), cid))

    assert derived and refused, "the derivations did not overlap the erasure"
    assert all(e.errors[0].code == "source_not_found" for e in refused)
    assert await rows_of(vault, tenant_id, [d.id for d in derived]) == set()
    assert erased.counts.derived_items == len(derived)
    # Nothing left in the tenant points at an item that is gone.
    dangling = await fetch(
        vault.pool,
        "SELECT i.id FROM lineage_items i WHERE i.tenant_id = %s AND i.source_uuid IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM lineage_items s WHERE s.id = i.source_uuid)",
        (tenant_id,),
    )
    assert dangling == []


@pytest.mark.parametrize("side", ["into", "out_of"])
async def test_merges_racing_an_erasure_never_bring_erased_data_back(
    vault: Vault, tenant_id: UUID, side: str
) -> None:
    cid = f"merging-{side}"
    mine = await vault.profiles.save_field(tenant_id, cid, "email", new_field("mine"))
    others = {}
    for w in range(WRITERS):
        other = f"{side}-{w}"
        others[other] = await vault.profiles.save_field(tenant_id, other, "phone", new_field(w))
    results: dict[str, str] = {}

    async def merge(writer: int) -> None:
        other = f"{side}-{writer}"
        if other in results:
            await asyncio.sleep(0.01)
            return
        target, source = (cid, other) if side == "into" else (other, cid)
        try:
            await vault.profiles.merge(tenant_id, target, source)
            results[other] = "merged"
        except NotFound:
            results[other] = "404"
        await asyncio.sleep(0.05 * writer)

    erased = await race(merge, lambda: vault.services.erasure.erase(caller_for(tenant_id), cid))

    assert await rows_of(vault, tenant_id, [mine.id]) == set()
    for other, item in others.items():
        kept = await rows_of(vault, tenant_id, [item.id])
        if side == "into":
            # Merged in before the erasure: erased with it; refused after: intact.
            assert kept == (set() if results.get(other) == "merged" else {item.id})
        elif results.get(other) == "merged":
            # The customer was merged out into `other` first: the erasure, addressed to
            # what is now an alias, erased the target with everything in it.
            assert kept == set()
    assert erased.counts.fields >= 1
    assert (
        await fetch(
            vault.pool,
            "SELECT 1 FROM customer_profiles WHERE tenant_id = %s AND customer_id = %s",
            (tenant_id, cid),
        )
        == []
    )


async def test_sweeps_racing_an_erasure_never_bring_erased_data_back(
    vault: Vault, tenant_id: UUID
) -> None:
    cid = "swept"
    src = await vault.profiles.save_field(tenant_id, cid, "src", new_field("s"))
    ids = [src.id]
    for i in range(150):
        expiring = await vault.profiles.save_field(
            tenant_id, cid, f"e{i}", new_field("x", expires_at="2000-01-01T00:00:00Z")
        )
        ids.append(expiring.id)
    child = await vault.profiles.save_field(
        tenant_id, cid, "child", new_field("c", derived_from=src)
    )
    ids.append(child.id)
    await vault.profiles.delete_field(tenant_id, cid, "src")  # orphans child

    async def sweep(writer: int) -> None:
        if writer % 2:
            await expire_stale_fields(vault.profiles, tenant_id, batch=10)
        else:
            await detect_orphaned_items(vault.profiles, tenant_id, batch=10, pause=0)

    erased = await race(sweep, lambda: vault.services.erasure.erase(caller_for(tenant_id), cid))

    assert erased.counts.fields == len(ids)
    assert await rows_of(vault, tenant_id, ids) == set()
    assert (
        await fetch(vault.pool, "SELECT 1 FROM customer_profiles WHERE customer_id = %s", (cid,))
        == []
    )


async def test_two_erasures_of_one_profile_one_wins_the_other_is_404(
    vault: Vault, tenant_id: UUID
) -> None:
    cid = "twice"
    await vault.profiles.save_field(tenant_id, cid, "email", new_field("a"))
    caller = caller_for(tenant_id)

    results = await asyncio.gather(
        *(vault.services.erasure.erase(caller, cid) for _ in range(4)), return_exceptions=True
    )

    assert sum(isinstance(r, Erasure) for r in results) == 1
    assert sum(isinstance(r, NotFound) for r in results) == 3
    receipts = await fetch(
        vault.pool, "SELECT count(*) FROM erasure_receipts WHERE tenant_id = %s", (tenant_id,)
    )
    assert receipts == [(1,)]
