"""Erasure (DESIGN §8): every row of the customer gone, derived items in other profiles
gone with them, caches dropped, a receipt that names no one, 404 for the id afterwards."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import httpx
from psycopg import sql

from api_support import ASSET, assert_problem
from cache_support import raw_redis
from ccvault.domain.privacy import subject_hash
from ccvault.runtime import Vault


def marker(label: str) -> str:
    """A value found nowhere else in the database."""
    return f"{label}-{uuid.uuid4().hex}"


def field(value: Any, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """A field write body, optionally derived from a vault item {id, type}."""
    body: dict[str, Any] = {"value": value, "source": "user_provided"}
    if source is not None:
        body |= {"source_item_id": source["id"], "source_item_type": source["type"]}
    return body


async def put_field(api: httpx.AsyncClient, cid: str, name: str, body: Any) -> dict[str, Any]:
    resp = await api.put(f"/v1/profiles/{cid}/fields/{name}", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def erase(api: httpx.AsyncClient, cid: str, body: Any = None) -> httpx.Response:
    return await api.post(f"/v1/profiles/{cid}/erase", json=body)


async def rows_containing(vault: Vault, text: str) -> dict[str, int]:
    """Every table of the database (every column cast to text) holding `text`."""
    found = {}
    async with vault.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE'"
            " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        for schema, table in await cur.fetchall():
            query = sql.SQL("SELECT count(*) FROM {}.{} t WHERE t::text LIKE %s").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            count = (await (await conn.execute(query, (f"%{text}%",))).fetchone() or [0])[0]
            if count:
                found[f"{schema}.{table}"] = count
    return found


class World:
    """A customer with every kind of row, an alias, and items derived from theirs in two
    other profiles (one derived from the other's derived item)."""

    def __init__(self) -> None:
        self.cid = marker("erase-me")
        self.alias = marker("alias")
        self.values = [marker(f"secret{i}") for i in range(7)]
        self.derived_value = marker("derived")
        self.grand_value = marker("grandchild")
        self.bystander_value = marker("bystander")

    async def build(self, api: httpx.AsyncClient) -> None:
        v = self.values
        created = await api.post(
            "/v1/profiles",
            json={
                "customer_id": self.cid,
                "channel_identities": [{"channel": "email", "channel_user_id": v[0]}],
            },
        )
        assert created.status_code == 201, created.text
        self.first = await put_field(api, self.cid, "email", field(v[1]))
        self.email = await put_field(api, self.cid, "email", field(v[2]))  # 2 versions
        await put_field(api, self.cid, "nickname", field(v[3]))
        resp = await api.delete(f"/v1/profiles/{self.cid}/fields/nickname")
        assert resp.status_code == 204  # a soft-deleted version is erased too
        asset = await api.post(
            f"/v1/profiles/{self.cid}/assets", json=ASSET | {"storage_path": v[4]}
        )
        assert asset.status_code == 201, asset.text
        self.asset = asset.json()
        consent = await api.put(
            f"/v1/profiles/{self.cid}/consents/marketing",
            json={"granted": True, "source_session_id": v[5]},
        )
        assert consent.status_code == 200, consent.text
        # An alias: a second profile merged into the customer's.
        await put_field(api, self.alias, "phone", field(v[6]))
        merged = await api.post(
            f"/v1/profiles/{self.cid}/merge", json={"source_customer_id": self.alias}
        )
        assert merged.status_code == 200, merged.text
        # Derived items elsewhere: other1's field from the email, other2's from that.
        self.other1, self.other2 = marker("other1"), marker("other2")
        self.derived = await put_field(
            api,
            self.other1,
            "score",
            field(self.derived_value, {"id": self.email["id"], "type": "profile_field"}),
        )
        self.grand = await put_field(
            api,
            self.other2,
            "summary",
            field(self.grand_value, {"id": self.derived["id"], "type": "profile_field"}),
        )
        await put_field(api, self.other1, "plain", field(self.bystander_value))


async def test_erasure_deletes_every_row_and_derived_items_and_answers_counts(
    api: httpx.AsyncClient, vault: Vault, tenant: tuple[UUID, str]
) -> None:
    world = World()
    await world.build(api)
    # Warm the caches that must be dropped.
    for cid in (world.cid, world.other1, world.other2):
        assert (await api.get(f"/v1/profiles/{cid}")).status_code == 200
    before_other1 = await api.get(f"/v1/profiles/{world.other1}")

    resp = await erase(api, world.cid, {"reason": "GDPR art. 17 request #8812"})

    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert set(answer) == {"receipt_id", "erased_at", "counts"}
    # email x2, nickname, phone (moved in by the merge); one asset; one identity; one
    # consent; the derived field and its own derived field in two other profiles.
    assert answer["counts"] == {
        "fields": 4,
        "assets": 1,
        "identities": 1,
        "consents": 1,
        "derived_items": 2,
    }
    for value in [*world.values, world.derived_value, world.grand_value, world.cid, world.alias]:
        assert await rows_containing(vault, value) == {}, value
    # The bystander field of other1 stays; other1's ETag moved and its cache was dropped.
    after_other1 = await api.get(f"/v1/profiles/{world.other1}")
    assert after_other1.status_code == 200
    assert set(after_other1.json()["fields"]) == {"plain"}
    assert after_other1.headers["etag"] != before_other1.headers["etag"]
    other2 = await api.get(f"/v1/profiles/{world.other2}")
    assert other2.json()["fields"] == {}


async def test_after_erasure_the_id_answers_404_like_an_id_never_used(
    api: httpx.AsyncClient,
) -> None:
    world = World()
    await world.build(api)
    assert (await erase(api, world.cid)).status_code == 200
    never = marker("never")

    async def answers(cid: str) -> list[int]:
        calls = [
            api.get(f"/v1/profiles/{cid}"),
            api.get(f"/v1/profiles/{cid}?include=history"),
            api.get(f"/v1/profiles/{cid}/fields/email"),
            api.get(f"/v1/profiles/{cid}/fields/email/history"),
            api.get(f"/v1/profiles/{cid}/assets"),
            api.get(f"/v1/profiles/{cid}/export"),
            api.get(f"/v1/profiles/{cid}/context"),
            api.get(f"/v1/profiles/{cid}/audit"),
            api.get(f"/v1/profiles/{cid}", params={"as_of": "2026-01-01T00:00:00Z"}),
            api.get(f"/v1/profiles/{cid}/fields/email", params={"as_of": "2026-01-01T00:00:00Z"}),
            api.get(f"/v1/profiles/{cid}", params={"purpose": "support"}),
            api.patch(f"/v1/profiles/{cid}", json={"verification_level": "email_verified"}),
            api.delete(f"/v1/profiles/{cid}/fields/email"),
            api.post(f"/v1/profiles/{cid}/merge", json={"source_customer_id": world.other1}),
            api.post(f"/v1/profiles/{cid}/erase"),
        ]
        return [(await call).status_code for call in calls]

    for cid in (world.cid, world.alias):
        seen = await answers(cid)
        assert seen == await answers(never)
        assert seen.count(404) >= 13, seen
    assert_problem(await erase(api, world.cid), 404)  # a second erasure
    assert (await api.get(f"/v1/profiles/by-channel/email/{world.values[0]}")).status_code == 404
    for item in (world.first, world.email, world.derived, world.grand):
        assert_problem(await api.get(f"/v1/lineage/{item['id']}"), 404)
        assert_problem(await api.get(f"/v1/lineage/{item['id']}?direction=descendants"), 404)
    assert_problem(await api.get(f"/v1/assets/{world.asset['id']}"), 404)


async def test_the_id_can_start_a_new_empty_profile_after_erasure(api: httpx.AsyncClient) -> None:
    world = World()
    await world.build(api)
    assert (await erase(api, world.cid)).status_code == 200

    created = await api.post("/v1/profiles", json={"customer_id": world.cid})

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["fields"] == {} and body["channel_identities"] == [] and body["consents"] == []
    await put_field(api, world.cid, "email", field("new@example.com"))
    for _ in range(2):  # uncached, then whatever the cache holds
        got = (await api.get(f"/v1/profiles/{world.cid}")).json()
        assert got["fields"]["email"]["value"] == "new@example.com"
        assert got["field_status_summary"]["active"] == 1
        assert got["field_status_summary"]["superseded"] == 0


async def test_erasure_addressed_to_an_alias_erases_the_target(api: httpx.AsyncClient) -> None:
    world = World()
    await world.build(api)

    resp = await erase(api, world.alias)

    assert resp.status_code == 200, resp.text
    assert resp.json()["counts"]["fields"] == 4
    assert (await api.get(f"/v1/profiles/{world.cid}")).status_code == 404


async def test_unknown_profile_answers_404_and_leaves_no_receipt(
    api: httpx.AsyncClient, http: httpx.AsyncClient, tenant_id: UUID, admin_headers: dict[str, str]
) -> None:
    assert_problem(await erase(api, "nobody"), 404)
    listed = await http.get(
        "/admin/erasures", params={"tenant_id": str(tenant_id)}, headers=admin_headers
    )
    assert listed.json() == {"items": []}


async def test_the_cache_never_serves_erased_data_to_any_process(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID, redis_url: str
) -> None:
    world = World()
    await world.build(api)
    for cid in (world.cid, world.other1, world.other2):
        assert (await api.get(f"/v1/profiles/{cid}")).status_code == 200  # cached
    assert vault.cache is not None
    cached, _ = await vault.cache.get(tenant_id, world.cid)
    assert cached is not None

    assert (await erase(api, world.cid)).status_code == 200

    # What another process would find: no entry, and nothing of the customer's values.
    cached, _ = await vault.cache.get(tenant_id, world.cid)
    assert cached is None
    async with raw_redis(redis_url) as client:
        # No key names the customer (or the alias), no value holds anything of theirs.
        names = [world.cid, world.alias]
        async for key in client.scan_iter(count=1000):
            assert not any(n.encode() in key for n in names), key
        async for key in client.scan_iter(match=f"profile:{tenant_id}:*", count=1000):
            value = await client.get(key) or b""
            for secret in [*names, *world.values, world.derived_value, world.grand_value]:
                assert secret.encode() not in value
        # The erased key holds at most a tombstone (no body) until it expires, and so do
        # the keys of the profiles that lost derived items (their entries were dropped).
        for cid in (world.cid, world.other1, world.other2):
            left = await client.get(vault.cache.key(tenant_id, cid))
            assert left is None or (isinstance(left, bytes) and left.endswith(b"|")), cid
    assert_problem(await api.get(f"/v1/profiles/{world.cid}"), 404)  # the fast read too
    # A read that loaded the profile before the erasure cannot put it back afterwards.
    await vault.cache.put(tenant_id, world.cid, 5, 0, b'{"stale": true}')
    cached, _ = await vault.cache.get(tenant_id, world.cid)
    assert cached is None


async def test_receipts_name_no_one_and_are_listed_for_the_admin(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    vault: Vault,
    tenant_id: UUID,
    admin_headers: dict[str, str],
) -> None:
    world = World()
    await world.build(api)
    erased = (await erase(api, world.cid, {"reason": "GDPR art. 17 request #8812"})).json()
    second = World()
    await second.build(api)
    later = (await erase(api, second.cid)).json()

    listed = await http.get(
        "/admin/erasures", params={"tenant_id": str(tenant_id)}, headers=admin_headers
    )

    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [i["receipt_id"] for i in items] == [later["receipt_id"], erased["receipt_id"]]
    async with vault.pool.connection() as conn:
        row = await (
            await conn.execute("SELECT secret FROM tenants WHERE id = %s", (tenant_id,))
        ).fetchone()
    assert row is not None
    assert items[1]["subject_hash"] == subject_hash(row[0], world.cid)
    assert items[1]["reason"] == "GDPR art. 17 request #8812"
    assert items[1]["counts"] == erased["counts"]
    assert items[0]["reason"] is None
    text = listed.text
    for named in (world.cid, second.cid, world.alias, *world.values):
        assert named not in text
    # Tenant keys do not see the admin list; an unknown tenant is 404.
    assert (
        await api.get("/admin/erasures", params={"tenant_id": str(tenant_id)})
    ).status_code == 403
    unknown = await http.get(
        "/admin/erasures", params={"tenant_id": str(uuid.uuid4())}, headers=admin_headers
    )
    assert_problem(unknown, 404)


async def test_subject_hashes_differ_between_tenants(vault: Vault) -> None:
    assert subject_hash(b"a" * 32, "cust-1") != subject_hash(b"b" * 32, "cust-1")
    assert subject_hash(b"a" * 32, "cust-1") != subject_hash(b"a" * 32, "cust-2")
    assert len(subject_hash(b"a" * 32, "cust-1")) == 64


async def test_a_reason_naming_the_customer_is_refused_and_nothing_is_erased(
    api: httpx.AsyncClient,
) -> None:
    world = World()
    await world.build(api)

    for reason in (f"request of {world.cid}", f"request of {world.alias.upper()}"):
        problem = assert_problem(await erase(api, world.alias, {"reason": reason}), 422)
        assert problem["errors"][0]["loc"] == ["body", "reason"]
    assert_problem(await erase(api, world.cid, {"reason": "x" * 501}), 422)
    assert_problem(await erase(api, world.cid, {"reason": "bad\ncontrol"}), 422)
    assert_problem(await erase(api, world.cid, {"unknown": 1}), 422)
    assert (await api.get(f"/v1/profiles/{world.cid}")).json()["fields"]["email"]


async def test_erasure_stays_in_its_tenant(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    cid = marker("shared-id")
    await put_field(api, cid, "email", field("mine@example.com"))
    await put_field(other_api, cid, "email", field("theirs@example.com"))

    assert (await erase(api, cid)).status_code == 200

    kept = await other_api.get(f"/v1/profiles/{cid}")
    assert kept.json()["fields"]["email"]["value"] == "theirs@example.com"


async def test_a_write_deriving_from_an_erased_item_is_refused(api: httpx.AsyncClient) -> None:
    world = World()
    await world.build(api)
    assert (await erase(api, world.cid)).status_code == 200

    resp = await api.put(
        "/v1/profiles/late/fields/score",
        json=field("x", {"id": world.email["id"], "type": "profile_field"}),
    )

    problem = assert_problem(resp, 422)
    assert problem["errors"][0]["code"] == "source_not_found"


async def test_what_the_customer_derived_from_others_goes_and_the_others_stay(
    api: httpx.AsyncClient,
) -> None:
    other, cid = marker("upstream"), marker("downstream")
    upstream = await put_field(api, other, "address", field("1 Main St"))
    mine = await put_field(
        api, cid, "city", field(marker("city"), {"id": upstream["id"], "type": "profile_field"})
    )

    resp = await erase(api, cid)

    assert resp.json()["counts"] == {
        "fields": 1,
        "assets": 0,
        "identities": 0,
        "consents": 0,
        "derived_items": 0,
    }
    kept = await api.get(f"/v1/lineage/{upstream['id']}?direction=descendants")
    assert [e["item_id"] for e in kept.json()["chain"]] == [upstream["id"]]
    assert_problem(await api.get(f"/v1/lineage/{mine['id']}"), 404)
