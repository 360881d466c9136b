"""GET /v1/profiles: the operators' list, newest `updated_at` first, paged by signed
cursors, filtered by an id prefix; aliases and other tenants' profiles never listed."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from api_support import assert_problem
from ccvault.domain.cursors import encode_cursor
from ccvault.runtime import Vault

ITEM_KEYS = {"customer_id", "created_at", "updated_at", "verification_level", "active_fields"}
FIELD = {"value": "x", "source": "user_provided"}


async def write(api: httpx.AsyncClient, cid: str, name: str = "note", value: Any = "x") -> None:
    """A field write (creates the profile, moves its updated_at)."""
    resp = await api.put(f"/v1/profiles/{cid}/fields/{name}", json={**FIELD, "value": value})
    assert resp.status_code == 201, resp.text


async def page(api: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    """One page of the list (200 expected)."""
    resp = await api.get("/v1/profiles", params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def every_page(api: httpx.AsyncClient, **params: Any) -> list[list[str]]:
    """The customer ids of every page, following next_cursor to the end."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        body = await page(api, **params, **({"cursor": cursor} if cursor else {}))
        pages.append([item["customer_id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def newest_first(items: list[dict[str, Any]]) -> bool:
    """Sorted by updated_at, newest first, ties by customer_id (descending)."""
    keys = [(i["updated_at"], i["customer_id"]) for i in items]
    return keys == sorted(keys, reverse=True)


async def test_an_empty_tenant_lists_nothing(api: httpx.AsyncClient) -> None:
    assert await page(api) == {"items": [], "next_cursor": None}


async def test_profiles_are_listed_newest_update_first_with_their_active_field_count(
    api: httpx.AsyncClient,
) -> None:
    await write(api, "c1", "email", "a@example.com")
    await write(api, "c2", "email", "b@example.com")
    await write(api, "c2", "email", "c@example.com")  # superseded version: not counted
    await write(api, "c2", "phone", "+33600000001")
    await write(api, "c2", "tmp", "gone")
    assert (await api.delete("/v1/profiles/c2/fields/tmp")).status_code == 204
    expired = {**FIELD, "expires_at": "2000-01-01T00:00:00Z"}
    assert (await api.put("/v1/profiles/c2/fields/old", json=expired)).status_code == 201
    assert (await api.post("/v1/profiles", json={"customer_id": "c3"})).status_code == 201
    await write(api, "c1", "name", "Ada")  # c1 is now the most recently updated

    body = await page(api)

    assert body["next_cursor"] is None
    assert [i["customer_id"] for i in body["items"]] == ["c1", "c3", "c2"]
    assert all(i.keys() == ITEM_KEYS for i in body["items"])
    assert newest_first(body["items"])
    counts = {i["customer_id"]: i["active_fields"] for i in body["items"]}
    assert counts == {"c1": 2, "c2": 2, "c3": 0}
    profile = (await api.get("/v1/profiles/c2")).json()
    assert counts["c2"] == len(profile["fields"])
    listed = next(i for i in body["items"] if i["customer_id"] == "c2")
    assert {k: profile[k] for k in ("created_at", "updated_at", "verification_level")} == {
        k: listed[k] for k in ("created_at", "updated_at", "verification_level")
    }


async def test_pages_follow_each_other_without_skipping_or_repeating(
    api: httpx.AsyncClient,
) -> None:
    ids = [f"cust-{n:02d}" for n in range(23)]
    for cid in ids:
        await write(api, cid)

    pages = await every_page(api, limit=5)

    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    listed = [cid for p in pages for cid in p]
    assert listed == list(reversed(ids))


async def test_a_page_that_ends_exactly_at_the_end_has_no_next_cursor(
    api: httpx.AsyncClient,
) -> None:
    for cid in ("a", "b", "c", "d"):
        await write(api, cid)
    first = await page(api, limit=2)
    second = await page(api, limit=2, cursor=first["next_cursor"])
    assert [i["customer_id"] for i in second["items"]] == ["b", "a"]
    assert second["next_cursor"] is None
    assert (await page(api, limit=4))["next_cursor"] is None


async def test_the_default_page_is_fifty_and_limits_outside_1_to_200_are_refused(
    api: httpx.AsyncClient,
) -> None:
    created = await asyncio.gather(
        *(api.post("/v1/profiles", json={"customer_id": f"p{n:02d}"}) for n in range(51))
    )
    assert all(r.status_code == 201 for r in created)
    first = await page(api)
    assert len(first["items"]) == 50
    assert first["next_cursor"] is not None
    assert len((await page(api, cursor=first["next_cursor"]))["items"]) == 1
    assert len((await page(api, limit=200))["items"]) == 51
    for bad in (0, -1, 201, "ten"):
        body = assert_problem(await api.get("/v1/profiles", params={"limit": bad}), 422)
        assert body["errors"][0]["loc"] == ["query", "limit"]


async def test_paging_while_profiles_change_never_repeats_one_and_never_skips_an_unchanged_one(
    api: httpx.AsyncClient,
) -> None:
    ids = [f"c{n:02d}" for n in range(40)]
    for cid in ids:
        await write(api, cid)
    changed: set[str] = set()
    listed: list[str] = []
    cursor = None
    turn = 0
    while True:
        # Each page is read while writers update a profile already listed, one not yet
        # listed, and create a new one.
        served, waiting = listed[-1:], [c for c in ids if c not in listed][:1]
        writers = [*served, *waiting, f"new-{turn}"]
        changed.update(writers)
        params: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        answer, *_ = await asyncio.gather(
            api.get("/v1/profiles", params=params),
            *(write(api, cid, value=f"v{turn}") for cid in writers),
        )
        assert answer.status_code == 200, answer.text
        listed += [i["customer_id"] for i in answer.json()["items"]]
        cursor = answer.json()["next_cursor"]
        turn += 1
        if cursor is None:
            break

    assert len(listed) == len(set(listed)), "a profile was listed twice"
    unchanged = set(ids) - changed
    assert unchanged <= set(listed), f"skipped: {sorted(unchanged - set(listed))}"
    assert len(unchanged) > 15


async def test_q_lists_only_ids_with_that_prefix_taken_literally(
    api: httpx.AsyncClient,
) -> None:
    for cid in ("a.b1", "a.b2", "axb3", "A.b4", "a", "b.a.b", "a_c", "abc"):
        await write(api, cid)
    assert {i["customer_id"] for i in (await page(api, q="a.b"))["items"]} == {"a.b1", "a.b2"}
    assert {i["customer_id"] for i in (await page(api, q="a_"))["items"]} == {"a_c"}
    assert {i["customer_id"] for i in (await page(api, q="a"))["items"]} == {
        "a.b1",
        "a.b2",
        "axb3",
        "a",
        "a_c",
        "abc",
    }
    assert (await page(api, q="a.b1"))["items"][0]["customer_id"] == "a.b1"
    assert (await page(api, q="zz"))["items"] == []
    assert len((await page(api, q=""))["items"]) == 8, "an empty q is no filter"


async def test_q_pages_with_its_own_cursors(api: httpx.AsyncClient) -> None:
    for n in range(7):
        await write(api, f"vip-{n}")
        await write(api, f"std-{n}")
    pages = await every_page(api, q="vip-", limit=3)
    assert [cid for p in pages for cid in p] == [f"vip-{n}" for n in reversed(range(7))]

    vip_cursor = (await page(api, q="vip-", limit=3))["next_cursor"]
    plain_cursor = (await page(api, limit=3))["next_cursor"]
    for params in (
        {"cursor": vip_cursor},
        {"q": "std-", "cursor": vip_cursor},
        {"q": "vip-", "cursor": plain_cursor},
    ):
        body = assert_problem(await api.get("/v1/profiles", params=params), 422)
        assert body["errors"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize("q", ["a b", "-a", "a%", "a*", "é", "x" * 129, "a/b"])
async def test_a_q_that_no_id_could_start_with_is_refused(api: httpx.AsyncClient, q: str) -> None:
    body = assert_problem(await api.get("/v1/profiles", params={"q": q}), 422)
    assert body["errors"][0]["loc"] == ["query", "q"]


async def test_cursors_the_vault_did_not_mint_for_this_list_and_tenant_are_refused(
    api: httpx.AsyncClient,
    other_api: httpx.AsyncClient,
    vault: Vault,
    tenant: tuple[uuid.UUID, str],
) -> None:
    for n in range(3):
        await write(api, f"c{n}")
        await write(other_api, f"o{n}")
    ours = (await page(api, limit=1))["next_cursor"]
    theirs = (await page(other_api, limit=1))["next_cursor"]
    caller = await vault.tenants.caller_for_key(tenant[1])
    assert caller is not None
    payload, mac = ours.split(".")
    forged = [
        theirs,  # another tenant's
        encode_cursor(caller.secret, "review-queue", ["2026-01-01T00:00:00+00:00", "c1"]),
        encode_cursor(b"x" * 32, "profiles", ["2999-01-01T00:00:00+00:00", "c9"]),
        f"{payload}.{mac[:-2]}AA",
        f"{payload[:-2]}AA.{mac}",
        "not-a-cursor",
        "a.b.c",
        "x" * 1024,
    ]
    for cursor in forged:
        body = assert_problem(await api.get("/v1/profiles", params={"cursor": cursor}), 422)
        assert body["errors"][0]["loc"] == ["query", "cursor"], cursor
    assert [i["customer_id"] for i in (await page(api, cursor=ours))["items"]] == ["c1", "c0"]


async def test_aliases_and_other_tenants_profiles_are_not_listed(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    await write(api, "target")
    await write(api, "source")
    await write(other_api, "theirs")
    await write(other_api, "target")
    merged = await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    assert merged.status_code == 200, merged.text

    ours = [i["customer_id"] for i in (await page(api))["items"]]
    assert ours == ["target"]
    assert (await page(api, q="source"))["items"] == []
    assert [i["customer_id"] for i in (await page(other_api))["items"]] == ["target", "theirs"]
    assert (await page(api, q="theirs"))["items"] == []


async def test_the_list_needs_a_key(http: httpx.AsyncClient) -> None:
    assert_problem(await http.get("/v1/profiles"), 401)
