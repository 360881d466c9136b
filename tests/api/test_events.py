"""The change feed (DESIGN §8 "Events"): every change in its own transaction, pages in
commit order that never skip or repeat, the types filter, tenant isolation, erasure, and
the events of jobs (expiry, orphan detection) and merges."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any
from uuid import UUID

import httpx
import pytest

from api_support import ASSET
from ccvault.jobs.sweeps import detect_orphaned_items, expire_stale_fields
from ccvault.runtime import Vault

FIELD = {"value": "a@example.com", "source": "user_provided"}


async def put_field(api: httpx.AsyncClient, customer: str, name: str, value: Any = "x") -> str:
    resp = await api.put(
        f"/v1/profiles/{customer}/fields/{name}", json={"value": value, "source": "user_provided"}
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def read_all(
    api: httpx.AsyncClient, after: str | None = None, *, limit: int = 200, types: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Every event after the cursor, page by page; and the cursor to follow on with."""
    items: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        if types:
            params["types"] = types
        resp = await api.get("/v1/events", params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert isinstance(body["next_cursor"], str)
        items += body["items"]
        after = body["next_cursor"]
        if len(body["items"]) < limit:
            return items, after


async def test_writes_appear_in_order_with_names_and_no_values(api: httpx.AsyncClient) -> None:
    field_id = await put_field(api, "alice", "email", "alice@example.com")
    await put_field(api, "alice", "email", "alice2@example.com")
    resp = await api.put("/v1/profiles/alice/consents/marketing", json={"granted": True})
    assert resp.status_code < 300, resp.text
    assert (await api.delete("/v1/profiles/alice/fields/email")).status_code == 204

    items, _ = await read_all(api)
    assert [e["type"] for e in items] == [
        "profile.created",
        "field.written",
        "field.written",
        "consent.changed",
        "field.deleted",
    ]
    assert {e["customer_id"] for e in items} == {"alice"}
    assert items[1]["data"] == {"id": field_id, "name": "email"}
    assert items[3]["data"] == {"name": "marketing"}
    assert "alice@example.com" not in str(items) and "alice2" not in str(items)
    assert len({e["id"] for e in items}) == len(items)


async def test_pages_follow_on_and_an_empty_page_keeps_a_cursor(api: httpx.AsyncClient) -> None:
    for i in range(7):
        await put_field(api, f"c{i}", "city")
    one_by_one, cursor = await read_all(api, limit=2)
    assert len(one_by_one) == 14
    # Nothing new: an empty page, and a cursor to ask again with.
    resp = await api.get("/v1/events", params={"after": cursor})
    assert resp.status_code == 200
    assert resp.json()["items"] == []
    again = resp.json()["next_cursor"]
    await put_field(api, "c0", "city")
    later, _ = await read_all(api, again)
    assert [(e["type"], e["customer_id"]) for e in later] == [("field.written", "c0")]


async def test_types_filter(api: httpx.AsyncClient) -> None:
    await put_field(api, "bob", "city")
    await api.delete("/v1/profiles/bob/fields/city")
    items, cursor = await read_all(api, types="field.deleted,profile.created", limit=1)
    assert [e["type"] for e in items] == ["profile.created", "field.deleted"]
    # A filtered reader's cursor moves past what it filtered out, and stays valid
    # unfiltered.
    await put_field(api, "bob", "phone")
    rest, _ = await read_all(api, cursor)
    assert [e["type"] for e in rest] == ["field.written"]
    resp = await api.get("/v1/events", params={"types": "field.written,nope"})
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_tenants_see_only_their_own_feed(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    await put_field(api, "carol", "city")
    await put_field(other_api, "dave", "city")
    mine, cursor = await read_all(api)
    theirs, _ = await read_all(other_api)
    assert {e["customer_id"] for e in mine} == {"carol"}
    assert {e["customer_id"] for e in theirs} == {"dave"}
    # A cursor is signed for its tenant.
    resp = await other_api.get("/v1/events", params={"after": cursor})
    assert resp.status_code == 422
    resp = await api.get("/v1/events", params={"after": "not-a-cursor"})
    assert resp.status_code == 422


async def test_erasure_leaves_one_event_naming_no_one(api: httpx.AsyncClient) -> None:
    await put_field(api, "erin", "email")
    await put_field(api, "frank", "email")
    resp = await api.post("/v1/profiles/frank/merge", json={"source_customer_id": "erin"})
    assert resp.status_code == 200, resp.text
    before, _ = await read_all(api)
    merged = [e for e in before if e["type"] == "profile.merged"]
    assert [(e["customer_id"], e["data"]) for e in merged] == [
        ("frank", {"source_customer_id": "erin"})
    ]
    await put_field(api, "gina", "email")
    resp = await api.post("/v1/profiles/frank/erase", json={})
    assert resp.status_code == 200, resp.text
    after, _ = await read_all(api)
    assert {e["customer_id"] for e in after} == {"gina", None}
    erased = [e for e in after if e["type"] == "profile.erased"]
    assert len(erased) == 1
    assert erased[0]["customer_id"] is None and erased[0]["data"] == {}
    assert "frank" not in str(after) and "erin" not in str(after)


async def test_expiry_and_orphan_detection_write_their_events(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    source = await put_field(api, "hank", "document_number")
    resp = await api.put(
        "/v1/profiles/hank/fields/document_copy",
        json={
            "value": "y",
            "source": "user_provided",
            "source_item_id": source,
            "source_item_type": "profile_field",
        },
    )
    assert resp.status_code == 201, resp.text
    derived = resp.json()["id"]
    stale = await put_field(api, "hank", "city")
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET expires_at = now() - interval '1 day' WHERE id = %s",
            (stale,),
        )
        # Behind the store's back (its delete orphans at once): the sweep must find it.
        await conn.execute("UPDATE profile_fields SET deleted_at = now() WHERE id = %s", (source,))
    _, cursor = await read_all(api)
    assert (await expire_stale_fields(vault.profiles, tenant_id, pause=0)).fields == 1
    assert (await detect_orphaned_items(vault.profiles, tenant_id, pause=0)).fields == 1
    items, _ = await read_all(api, cursor)
    assert [(e["type"], e["data"]["id"]) for e in items] == [
        ("field.expired", stale),
        ("field.orphaned", derived),
    ]


async def test_requirements_extraction_writes_an_event(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    from ccvault.extraction.models import SourceKind

    await vault.scenarios.finish_extraction(
        SourceKind.scenario, tenant_id, "agent-1", "onboarding", "onboarding", [], []
    )
    items, _ = await read_all(api, types="requirements.extracted")
    assert [(e["customer_id"], e["data"]) for e in items] == [
        (None, {"kind": "scenario", "id": "onboarding", "agent_id": "agent-1"})
    ]


async def test_an_event_that_commits_later_with_a_smaller_id_is_not_skipped(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    """A transaction takes its event's insertion number first and commits last: a reader
    that paged past the later events still gets it, on a later page."""
    _, cursor = await read_all(api)
    async with vault.pool.connection() as slow:
        async with slow.transaction():
            await slow.execute(
                "INSERT INTO events (tenant_id, type, customer_id, data) "
                "VALUES (%s, 'consent.changed', 'slow', '{}')",
                (tenant_id,),
            )
            await put_field(api, "quick", "city")
            first, cursor = await read_all(api, cursor)
            assert [e["customer_id"] for e in first] == ["quick", "quick"]
        second, _ = await read_all(api, cursor)
    assert [e["customer_id"] for e in second] == ["slow"]


@pytest.mark.timeout(120)
async def test_concurrent_writers_a_paging_reader_sees_each_change_once_in_order(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    """8 writers for 10 s while a reader pages with small limits: every acknowledged write
    appears exactly once, each profile's writes in the order they were acknowledged (its
    writers take turns), and no page skips an event that commits later."""
    acknowledged: dict[str, list[str]] = defaultdict(list)
    stop = time.monotonic() + 10
    seen: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def writer(n: int) -> None:
        i = 0
        while time.monotonic() < stop:
            # Two writers per profile, so writes of one profile race each other.
            customer = f"w{n % 4}"
            resp = await api.put(
                f"/v1/profiles/{customer}/fields/city",
                json={"value": f"v{n}-{i}", "source": "user_provided"},
            )
            i += 1
            if resp.status_code == 503:  # a loaded machine: no connection within 1 s
                continue
            assert resp.status_code == 201, resp.text
            acknowledged[customer].append(resp.json()["id"])

    async def reader() -> None:
        cursor: str | None = None
        while True:
            finished = done.is_set()
            params: dict[str, Any] = {"limit": 3, "types": "field.written"}
            if cursor:
                params["after"] = cursor
            resp = await api.get("/v1/events", params=params)
            if resp.status_code == 503:  # a loaded machine: the same cursor again
                await asyncio.sleep(0.05)
                continue
            assert resp.status_code == 200, resp.text
            body = resp.json()
            seen.extend(body["items"])
            cursor = body["next_cursor"]
            if finished and not body["items"]:
                return
            if not body["items"]:
                await asyncio.sleep(0.01)

    read = asyncio.create_task(reader())
    await asyncio.gather(*(writer(n) for n in range(8)))
    done.set()
    await read
    ids = [e["data"]["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event was served twice"
    total = sum(len(v) for v in acknowledged.values())
    assert total > 50
    async with vault.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id::text FROM profile_fields WHERE tenant_id = %s", (tenant_id,)
        )
        stored = {r[0] for r in await cur.fetchall()}
    assert {i for v in acknowledged.values() for i in v} <= stored
    assert set(ids) == stored
    for customer in acknowledged:
        in_feed = [e["data"]["id"] for e in seen if e["customer_id"] == customer]
        # A profile's writers take turns under its lock: their commit order is the order
        # of the versions they stored (collected_at is taken under the lock).
        async with vault.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT f.id::text FROM profile_fields f JOIN customer_profiles p"
                " ON p.id = f.profile_id WHERE f.tenant_id = %s AND p.customer_id = %s"
                " ORDER BY f.collected_at",
                (tenant_id, customer),
            )
            committed = [r[0] for r in await cur.fetchall()]
        assert in_feed == committed


async def test_the_prune_deletes_events_past_the_retention_only(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    from ccvault.services.events import prune_events

    await put_field(api, "old", "city")
    await put_field(api, "new", "city")
    await read_all(api)  # numbered
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE events SET at = now() - interval '8 days'"
            " WHERE tenant_id = %s AND customer_id = 'old'",
            (tenant_id,),
        )
    assert await prune_events(vault.pool, 7) >= 2
    items, _ = await read_all(api)
    assert {e["customer_id"] for e in items} == {"new"}


async def test_assets_added_and_deleted(api: httpx.AsyncClient) -> None:
    resp = await api.post("/v1/profiles/ivy/assets", json=ASSET)
    assert resp.status_code == 201, resp.text
    asset = resp.json()
    assert (await api.delete(f"/v1/assets/{asset['id']}")).status_code == 204
    items, _ = await read_all(api, types="asset.added,asset.deleted")
    assert [(e["type"], e["customer_id"], e["data"]) for e in items] == [
        ("asset.added", "ivy", {"id": asset["id"], "name": asset["name"]}),
        ("asset.deleted", "ivy", {"id": asset["id"], "name": asset["name"]}),
    ]
    assert asset["storage_path"] not in str(items)
