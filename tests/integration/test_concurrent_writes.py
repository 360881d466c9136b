"""Many writers, one field: exactly one active version and a complete, linked history."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from ccvault.domain.errors import NotFound
from ccvault.domain.models import ItemStatus, ProfileField
from ccvault.runtime import Vault

from .helpers import fetch, new_asset, new_field, profile_row_id, stored_field

WRITERS = 16
WRITES_EACH = 50
TOTAL = WRITERS * WRITES_EACH


async def _write_many(
    vault: Vault, tenant_id: UUID, customer_id: str, name: str, writer: int
) -> list[ProfileField]:
    saved = []
    for i in range(WRITES_EACH):
        field = await vault.profiles.save_field(
            tenant_id, customer_id, name, new_field(f"w{writer}-{i}")
        )
        saved.append(field)
    return saved


async def test_concurrent_writers_to_one_field_leave_one_active_version_and_full_history(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.create_profile(tenant_id, "c1", [])

    results = await asyncio.gather(
        *(_write_many(vault, tenant_id, "c1", "email", w) for w in range(WRITERS)),
        return_exceptions=True,
    )

    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    written = [f for batch in results if not isinstance(batch, BaseException) for f in batch]
    assert len(written) == TOTAL
    assert all(f.status is ItemStatus.active for f in written)
    written_ids = {f.id for f in written}
    assert len(written_ids) == TOTAL

    profile_id = await profile_row_id(vault.pool, tenant_id, "c1")
    counts = dict(
        await fetch(
            vault.pool,
            "SELECT status, count(*) FROM profile_fields"
            " WHERE tenant_id = %s AND profile_id = %s AND name = 'email' GROUP BY status",
            (tenant_id, profile_id),
        )
    )
    assert counts == {"active": 1, "superseded": TOTAL - 1}

    rows = await fetch(
        vault.pool,
        "SELECT id, status, superseded_by_id, superseded_at, collected_at, value"
        " FROM profile_fields WHERE tenant_id = %s AND profile_id = %s AND name = 'email'",
        (tenant_id, profile_id),
    )
    by_id: dict[UUID, tuple[Any, ...]] = {r[0]: r for r in rows}
    assert set(by_id) == written_ids
    assert {r[5] for r in rows} == {f"w{w}-{i}" for w in range(WRITERS) for i in range(WRITES_EACH)}

    active = [r for r in rows if r[1] == "active"]
    assert len(active) == 1
    assert active[0][2] is None and active[0][3] is None
    # The last commit is the active one.
    assert active[0][4] == max(r[4] for r in rows)

    superseded = [r for r in rows if r[1] == "superseded"]
    for _, _, successor, superseded_at, collected_at, _ in superseded:
        assert successor in by_id, "superseded_by_id must name a version of the same field"
        assert superseded_at is not None
        assert collected_at <= superseded_at <= by_id[successor][4]
    # Every version but the first supersedes exactly one other: one unbroken chain.
    successors = [r[2] for r in superseded]
    assert len(set(successors)) == TOTAL - 1
    oldest = min(rows, key=lambda r: r[4])[0]
    assert set(successors) == written_ids - {oldest}
    step, seen = oldest, [oldest]
    while by_id[step][2] is not None:
        step = by_id[step][2]
        seen.append(step)
    assert len(seen) == TOTAL and seen[-1] == active[0][0]
    assert [by_id[i][4] for i in seen] == sorted(by_id[i][4] for i in seen)

    history = await vault.profiles.field_history(tenant_id, "c1", "email")
    assert len(history) == TOTAL
    assert {f.id for f in history} == written_ids
    assert [f.collected_at for f in history] == sorted(
        (f.collected_at for f in history), reverse=True
    )
    assert history[0].id == active[0][0] and history[0].status is ItemStatus.active
    assert all(f.status is ItemStatus.superseded for f in history[1:])
    assert all(f.superseded_by_id in written_ids and f.superseded_at for f in history[1:])

    current = await vault.profiles.get_field(tenant_id, "c1", "email")
    assert current.id == active[0][0]
    profile = await vault.profiles.get_profile(tenant_id, "c1")
    assert profile.field_status_summary.active == 1
    assert profile.field_status_summary.superseded == TOTAL - 1


async def test_each_writers_own_versions_are_ordered_as_it_wrote_them(
    vault: Vault, tenant_id: UUID
) -> None:
    results = await asyncio.gather(
        *(_write_many(vault, tenant_id, "c2", "phone", w) for w in range(4))
    )

    history = {f.id: f for f in await vault.profiles.field_history(tenant_id, "c2", "phone")}
    for batch in results:
        stamps = [history[f.id].collected_at for f in batch]
        assert stamps == sorted(stamps)
        assert len(set(stamps)) == len(stamps)


@pytest.mark.parametrize("status", ["active", "expired", "orphaned"])
async def test_one_current_index_refuses_a_second_current_field_row_inserted_by_raw_sql(
    vault: Vault, tenant_id: UUID, status: str
) -> None:
    current = await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@b.example"))
    profile_id = await profile_row_id(vault.pool, tenant_id, "c1")
    insert = (
        "INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type, source,"
        " status, superseded_at, deleted_at)"
        " VALUES (%s, %s, %s, 'email', %s, 'string', 'user_provided', %s, %s, %s)"
    )

    # Active, expired or orphaned: one current version per name, whatever its status.
    with pytest.raises(psycopg.errors.UniqueViolation):
        async with vault.pool.connection() as conn, conn.transaction():
            await conn.execute(
                insert,
                (uuid.uuid4(), tenant_id, profile_id, Jsonb("x@y.example"), status, None, None),
            )

    # The index is partial: superseded or deleted rows beside the current one are fine.
    async with vault.pool.connection() as conn, conn.transaction():
        await conn.execute(
            insert,
            (uuid.uuid4(), tenant_id, profile_id, Jsonb("old"), "superseded", "2020-01-01Z", None),
        )
        await conn.execute(
            insert,
            (uuid.uuid4(), tenant_id, profile_id, Jsonb("gone"), status, None, "2020-01-01Z"),
        )
    assert (await vault.profiles.get_field(tenant_id, "c1", "email")).id == current.id


async def test_superseded_at_is_set_exactly_on_superseded_rows(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@b.example"))
    profile_id = await profile_row_id(vault.pool, tenant_id, "c1")
    insert = (
        "INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type, source,"
        " status, superseded_at)"
        " VALUES (%s, %s, %s, 'email', %s, 'string', 'user_provided', %s, %s)"
    )
    # The current-version predicates say `superseded_at IS NULL`; this keeps them honest.
    for status, superseded_at in (("superseded", None), ("active", "2020-01-01Z")):
        with pytest.raises(psycopg.errors.CheckViolation):
            async with vault.pool.connection() as conn, conn.transaction():
                await conn.execute(
                    insert, (uuid.uuid4(), tenant_id, profile_id, Jsonb("x"), status, superseded_at)
                )


async def test_one_current_index_refuses_a_second_active_asset_row_inserted_by_raw_sql(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.profiles.save_asset(tenant_id, "c1", new_asset("passport"))
    profile_id = await profile_row_id(vault.pool, tenant_id, "c1")

    with pytest.raises(psycopg.errors.UniqueViolation):
        async with vault.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO profile_assets (id, tenant_id, profile_id, name, asset_type,"
                " storage_provider, storage_path, mime_type, size_bytes, checksum)"
                " VALUES (%s, %s, %s, 'passport', 'document', 's3', 'b/p.pdf',"
                " 'application/pdf', 1, 'x')",
                (uuid.uuid4(), tenant_id, profile_id),
            )


@pytest.mark.parametrize("round_", range(3))
async def test_concurrent_writers_to_a_profile_that_does_not_exist_yet_all_succeed(
    vault: Vault, tenant_id: UUID, round_: int
) -> None:
    customer_id = f"new-{round_}-{uuid.uuid4().hex[:8]}"

    async def write(i: int) -> ProfileField:
        # Half the writers fight over one field, the others each write their own.
        name = "email" if i % 2 == 0 else f"field_{i}"
        return await vault.profiles.save_field(tenant_id, customer_id, name, new_field(f"v{i}"))

    results = await asyncio.gather(*(write(i) for i in range(WRITERS)), return_exceptions=True)

    assert [r for r in results if isinstance(r, BaseException)] == []
    profiles = await fetch(
        vault.pool,
        "SELECT count(*) FROM customer_profiles WHERE tenant_id = %s AND customer_id = %s",
        (tenant_id, customer_id),
    )
    assert profiles[0][0] == 1
    profile = await vault.profiles.get_profile(tenant_id, customer_id)
    assert set(profile.fields) == {"email"} | {f"field_{i}" for i in range(1, WRITERS, 2)}
    email_history = await vault.profiles.field_history(tenant_id, customer_id, "email")
    assert len(email_history) == WRITERS // 2
    assert [f.status for f in email_history].count(ItemStatus.active) == 1
    assert profile.field_status_summary.active == 1 + WRITERS // 2
    assert profile.field_status_summary.superseded == WRITERS // 2 - 1


async def test_concurrent_deletes_orphaning_dependents_in_each_others_profiles_all_succeed(
    vault: Vault, tenant_id: UUID
) -> None:
    rounds = 40
    pairs = []
    for i in range(rounds):
        in_a = await vault.profiles.save_field(tenant_id, "a", f"src_{i}", new_field(i))
        in_b = await vault.profiles.save_field(tenant_id, "b", f"src_{i}", new_field(i))
        dep_in_b = await vault.profiles.save_field(
            tenant_id, "b", f"dep_{i}", new_field(i, derived_from=in_a)
        )
        dep_in_a = await vault.profiles.save_field(
            tenant_id, "a", f"dep_{i}", new_field(i, derived_from=in_b)
        )
        pairs.append((dep_in_a, dep_in_b))

    results = await asyncio.gather(
        *(
            vault.profiles.delete_field(tenant_id, customer, f"src_{i}")
            for i in range(rounds)
            for customer in ("a", "b")
        ),
        return_exceptions=True,
    )

    assert [r for r in results if isinstance(r, BaseException)] == []
    for dep_in_a, dep_in_b in pairs:
        for dep in (dep_in_a, dep_in_b):
            row = await stored_field(vault.pool, dep.id)
            assert (row["status"], row["is_orphaned"]) == ("orphaned", True)
    for customer in ("a", "b"):
        summary = (await vault.profiles.get_profile(tenant_id, customer)).field_status_summary
        assert (summary.active, summary.orphaned) == (0, rounds)


async def test_a_delete_orphaning_into_a_profile_being_written_does_not_fail_either_side(
    vault: Vault, tenant_id: UUID
) -> None:
    rounds = 40
    for i in range(rounds):
        source = await vault.profiles.save_field(tenant_id, "a", "document_id", new_field(i))
        await vault.profiles.save_field(
            tenant_id, "b", "household_id", new_field(i, derived_from=source)
        )

        results = await asyncio.gather(
            vault.profiles.delete_field(tenant_id, "a", "document_id"),
            vault.profiles.save_field(tenant_id, "b", "household_id", new_field(f"new-{i}")),
            return_exceptions=True,
        )

        assert [r for r in results if isinstance(r, BaseException)] == []
        current = await vault.profiles.get_field(tenant_id, "b", "household_id")
        assert current.value == f"new-{i}"


async def test_concurrent_writers_to_one_asset_name_leave_one_active_asset(
    vault: Vault, tenant_id: UUID
) -> None:
    async def write_many(writer: int) -> None:
        for i in range(20):
            await vault.profiles.save_asset(
                tenant_id, "c1", new_asset("passport", storage_path=f"b/{writer}-{i}.pdf")
            )

    results = await asyncio.gather(*(write_many(w) for w in range(8)), return_exceptions=True)

    assert [r for r in results if isinstance(r, BaseException)] == []
    everything = await vault.profiles.list_assets(tenant_id, "c1", include_history=True)
    assert len(everything) == 160
    assert [a.status for a in everything].count(ItemStatus.active) == 1
    ids = {a.id for a in everything}
    superseded = [a for a in everything if a.status is ItemStatus.superseded]
    assert all(a.superseded_by_id in ids for a in superseded)
    assert len({a.superseded_by_id for a in superseded}) == 159


async def test_concurrent_deletes_of_one_field_delete_it_exactly_once(
    vault: Vault, tenant_id: UUID
) -> None:
    saved = await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@x.example"))

    results = await asyncio.gather(
        *(vault.profiles.delete_field(tenant_id, "c1", "email") for _ in range(6)),
        return_exceptions=True,
    )

    assert [r for r in results if not isinstance(r, BaseException)] == [saved.id]
    assert all(isinstance(r, NotFound) for r in results if isinstance(r, BaseException))
    history = await vault.profiles.field_history(tenant_id, "c1", "email")
    assert [(f.id, f.deleted_at is not None) for f in history] == [(saved.id, True)]
