"""Migrations on a fresh database of their own: round trips, and data kept across every
revision's downgrade and upgrade."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, NamedTuple
from uuid import UUID

import psycopg
import pytest
from alembic.script import Script, ScriptDirectory
from psycopg import sql

from ccvault import migrations
from ccvault.domain.models import Direction
from ccvault.domain.writes import ConsentAnswer, NewIdentity
from ccvault.storage.db import Pool, open_pool
from ccvault.storage.lineage import lineage
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.tenants import TenantStore
from ccvault.storage.urls import libpq_url

from .helpers import new_asset, new_field

SCRIPTS = ScriptDirectory.from_config(migrations.alembic_config("unused://"))
# Oldest first.
REVISIONS: list[Script] = list(reversed(list(SCRIPTS.walk_revisions())))
LATER_REVISIONS = [r for r in REVISIONS if r.down_revision is not None]


class Table(NamedTuple):
    columns: frozenset[str]
    rows: list[dict[str, Any]]


Snapshot = dict[str, Table]


async def _upgrade(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(migrations.upgrade, url, revision)


async def _downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(migrations.downgrade, url, revision)


async def _pool(url: str) -> AsyncIterator[Pool]:
    pool = await open_pool(url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


class Written(NamedTuple):
    tenant_id: UUID
    field_ids: set[UUID]
    asset_id: UUID
    derived_id: UUID


async def _populate(url: str) -> Written:
    """A tenant with a profile holding identities, a consent, fields, history and lineage."""
    async for pool in _pool(url):
        tenant, _ = await TenantStore(pool).create(f"t-{uuid.uuid4().hex}", "warn")
        tid = tenant.tenant_id
        store = ProfileStore(pool)
        await store.create_profile(
            tid, "c1", [NewIdentity(channel="sms", channel_user_id="1", primary=True)]
        )
        asset = await store.save_asset(tid, "c1", new_asset("passport"))
        derived = await store.save_field(
            tid, "c1", "document_id", new_field("P-1", derived_from=asset)
        )
        first = await store.save_field(tid, "c1", "email", new_field("a@x.example"))
        second = await store.save_field(tid, "c1", "email", new_field("b@x.example"))
        await store.put_consent(tid, "c1", "marketing", ConsentAnswer(granted=True))
        return Written(tid, {derived.id, first.id, second.id}, asset.id, derived.id)
    raise AssertionError("unreachable")


async def _read_back(url: str, written: Written) -> None:
    """The store still reads what was written, and still accepts writes."""
    async for pool in _pool(url):
        store = ProfileStore(pool)
        profile = await store.get_profile(written.tenant_id, "c1", include_history=True)
        assert profile.field_history is not None
        ids = {f.id for versions in profile.field_history.values() for f in versions}
        assert ids == written.field_ids
        assert profile.fields["email"].value == "b@x.example"
        assert [a.id for a in profile.assets] == [written.asset_id]
        assert [(c.consent_type, c.granted) for c in profile.consents] == [("marketing", True)]
        assert [(i.channel, i.primary) for i in profile.channel_identities] == [("sms", True)]
        up = await lineage(pool, written.tenant_id, written.derived_id, Direction.ancestors)
        assert [e.item_id for e in up.chain] == [written.derived_id, written.asset_id]
        saved = await store.save_field(written.tenant_id, "c1", "email", new_field("c@x.example"))
        assert (await store.get_field(written.tenant_id, "c1", "email")).id == saved.id


async def _snapshot(url: str) -> Snapshot:
    """Every row of every table of the schema (alembic's bookkeeping aside)."""
    async with await psycopg.AsyncConnection.connect(libpq_url(url)) as conn:
        cur = await conn.execute(
            "SELECT table_name, array_agg(column_name::text)"
            "  FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name <> 'alembic_version'"
            "   AND table_name IN (SELECT table_name FROM information_schema.tables"
            "                       WHERE table_schema = current_schema()"
            "                         AND table_type = 'BASE TABLE')"
            " GROUP BY table_name"
        )
        columns = await cur.fetchall()
        snapshot: Snapshot = {}
        for table, names in columns:
            cur = await conn.execute(
                sql.SQL("SELECT to_jsonb(t) FROM {} t").format(sql.Identifier(table))
            )
            snapshot[table] = Table(frozenset(names), [row[0] for row in await cur.fetchall()])
    return snapshot


def _rows_on(table: Table, columns: frozenset[str]) -> list[str]:
    return sorted(
        json.dumps({c: row.get(c) for c in sorted(columns)}, sort_keys=True) for row in table.rows
    )


def _assert_rows_kept(before: Snapshot, after: Snapshot, tables: Snapshot) -> None:
    """Each table of `tables` holds in `after` the rows it held in `before`, on its columns.

    The cache epoch only has to stay put or grow: a revision that changes the profile's
    JSON shape raises it (both ways) to retire profiles cached in the other shape.
    """
    for name, table in tables.items():
        assert name in before and name in after, f"table {name} vanished"
        if name == "cache_epoch":
            epochs = [t.rows[0]["epoch"] for t in (before[name], after[name])]
            assert epochs == sorted(epochs), name
            continue
        kept = table.columns & before[name].columns & after[name].columns
        assert _rows_on(after[name], kept) == _rows_on(before[name], kept), name


async def _leftovers(url: str) -> dict[str, list[str]]:
    """Schema objects other than alembic's own table."""
    async with await psycopg.AsyncConnection.connect(libpq_url(url)) as conn:
        found: dict[str, list[str]] = {}
        for kind, query in (
            (
                "relations",
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema()"
                "   AND c.relname NOT IN ('alembic_version', 'alembic_version_pkc')",
            ),
            (
                "functions",
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = current_schema()",
            ),
            (
                "types",
                "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                " WHERE n.nspname = current_schema() AND t.typrelid = 0 AND t.typelem = 0",
            ),
        ):
            cur = await conn.execute(query)
            found[kind] = sorted(row[0] for row in await cur.fetchall())
        cur = await conn.execute("SELECT version_num FROM alembic_version")
        found["alembic_version"] = [row[0] for row in await cur.fetchall()]
    return found


def test_the_revisions_form_one_line_from_0001_core() -> None:
    assert SCRIPTS.get_bases() == ["0001_core"]
    assert len(SCRIPTS.get_heads()) == 1
    assert REVISIONS[0].revision == "0001_core"
    for older, newer in itertools.pairwise(REVISIONS):
        assert newer.down_revision == older.revision


async def test_base_head_base_head_round_trip_leaves_an_empty_usable_schema(
    fresh_database_url: str,
) -> None:
    url = fresh_database_url
    await _upgrade(url)
    written = await _populate(url)
    await _read_back(url, written)

    await _downgrade(url, "base")

    assert await _leftovers(url) == {
        "relations": [],
        "functions": [],
        "types": [],
        "alembic_version": [],
    }

    await _upgrade(url)

    snapshot = await _snapshot(url)
    assert "profile_fields" in snapshot
    # Only rows the migrations seed themselves: the cache epoch, key secret and feed head.
    seeded = {name: len(t.rows) for name, t in snapshot.items() if t.rows}
    assert seeded == {"cache_epoch": 1, "cache_key_secret": 1, "events_feed": 1}
    await _read_back(url, await _populate(url))


async def test_upgrading_an_up_to_date_database_again_keeps_its_data(
    fresh_database_url: str,
) -> None:
    url = fresh_database_url
    await _upgrade(url)
    written = await _populate(url)
    before = await _snapshot(url)

    await _upgrade(url)

    after = await _snapshot(url)
    assert set(after) == set(before)
    _assert_rows_kept(before, after, before)
    await _read_back(url, written)


@pytest.mark.parametrize("revision", LATER_REVISIONS, ids=lambda r: r.revision)
async def test_downgrading_one_revision_and_upgrading_again_keeps_the_data(
    fresh_database_url: str, revision: Script
) -> None:
    url = fresh_database_url
    assert isinstance(revision.down_revision, str), "merge revisions need their own test"
    await _upgrade(url)
    written = await _populate(url)
    at_head = await _snapshot(url)

    await _downgrade(url, revision.down_revision)

    below = await _snapshot(url)
    # What survives the downgrade is what the older schema has room for: all of it.
    _assert_rows_kept(at_head, below, below)
    assert any(t.rows for t in below.values())

    await _upgrade(url)

    again = await _snapshot(url)
    _assert_rows_kept(at_head, again, below)
    await _read_back(url, written)
