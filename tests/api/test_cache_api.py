"""The profile cache seen over HTTP: every mutation is followed by a fresh read, two API
instances sharing one Redis never serve a stale profile, a Redis outage fails no request,
and the cache comes back by itself when Redis does."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio.cluster import RedisCluster

from api_support import ASSET
from cache_support import (
    HITS,
    Counters,
    cache_key,
    dedicated_valkey,
    metric,
    raw_redis,
    split_entry,
    vault_on,
)
from ccvault.api.app import create_app
from ccvault.config import Settings
from ccvault.runtime import Vault, open_vault

Tenant = tuple[uuid.UUID, str]


@asynccontextmanager
async def client_for(vault: Vault, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on a fresh app instance over `vault`, authenticated with `api_key`."""
    transport = httpx.ASGITransport(app=create_app(vault=vault))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://vault",
        headers={"Authorization": f"Bearer {api_key}"},
    ) as client:
        yield client


def field_body(value: Any, **extra: Any) -> dict[str, Any]:
    """A PUT .../fields/{name} body."""
    return {"value": value, "source": "user_provided", **extra}


async def put_field(client: httpx.AsyncClient, customer_id: str, name: str, value: Any) -> str:
    """Write a field; its id."""
    answer = await client.put(f"/v1/profiles/{customer_id}/fields/{name}", json=field_body(value))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def warm(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    """Read `path` until it is served from the cache; fails unless the cache is in play."""
    first = await client.get(path)
    assert first.status_code == 200, first.text
    hits = metric(HITS)
    second = await client.get(path)
    assert second.status_code == 200, second.text
    assert metric(HITS) == hits + 1, f"the warm read of {path} was not a cache hit"
    assert second.json() == first.json()
    return dict(second.json())


async def fresh(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    """Read `path` through the cache and check it against a read that bypasses the cache
    (`?include=history` always goes to PostgreSQL)."""
    cached = await client.get(path)
    assert cached.status_code == 200, cached.text
    truth = await client.get(path, params={"include": "history"})
    assert truth.status_code == 200, truth.text
    expected = truth.json()
    expected.pop("field_history")
    assert cached.json() == expected, "the cached read differs from PostgreSQL"
    return dict(cached.json())


# -- key and stored value ------------------------------------------------------------


async def test_profile_is_cached_under_contract_key_with_the_http_body(
    api: httpx.AsyncClient, tenant_id: uuid.UUID, redis_url: str, vault: Vault
) -> None:
    await put_field(api, "c1", "email", "a@b.c")
    answer = await api.get("/v1/profiles/c1")
    assert answer.status_code == 200

    async with raw_redis(redis_url) as raw:
        value = await raw.get(cache_key(vault, tenant_id, "c1"))
        # On a cluster, KEYS goes to one node unless told otherwise.
        every_node = (
            {"target_nodes": RedisCluster.PRIMARIES} if isinstance(raw, RedisCluster) else {}
        )
        keys = await raw.keys(f"profile:{tenant_id}:*", **every_node)
    assert keys and all(re.fullmatch(rb"profile:[0-9a-f-]{36}:[0-9a-f]{64}", k) for k in keys)
    assert value is not None, "no entry under profile:{tenant_id}:{HMAC of the customer id}"
    _, _, cached_json = split_entry(value)
    assert cached_json == answer.content

    hit = await api.get("/v1/profiles/c1")
    assert hit.content == answer.content
    assert hit.headers["content-type"] == "application/json"


async def test_cache_off_writes_no_key(
    settings: Settings, tenant: Tenant, redis_url: str, vault: Vault
) -> None:
    uncached = await open_vault(settings.model_copy(update={"cache": False}))
    try:
        assert uncached.cache is None
        async with client_for(uncached, tenant[1]) as client:
            await put_field(client, "c1", "email", "a@b.c")
            before = Counters.now()
            for _ in range(3):
                answer = await client.get("/v1/profiles/c1")
                assert answer.json()["fields"]["email"]["value"] == "a@b.c"
            gained = before.since()
            ready = await client.get("/readyz")
    finally:
        await uncached.close()

    async with raw_redis(redis_url) as raw:
        assert await raw.exists(cache_key(vault, tenant[0], "c1")) == 0
    assert gained.hits == gained.misses == 0
    assert ready.json()["checks"]["cache"] == "ok"


# -- every mutation kind is followed by a fresh read ---------------------------------


async def test_field_write_is_visible_to_the_next_read(api: httpx.AsyncClient) -> None:
    await put_field(api, "c1", "tier", "silver")
    await warm(api, "/v1/profiles/c1")
    await put_field(api, "c1", "tier", "gold")
    assert (await fresh(api, "/v1/profiles/c1"))["fields"]["tier"]["value"] == "gold"


async def test_field_delete_is_visible_to_the_next_read(api: httpx.AsyncClient) -> None:
    await put_field(api, "c1", "tier", "gold")
    await put_field(api, "c1", "email", "a@b.c")
    assert "tier" in (await warm(api, "/v1/profiles/c1"))["fields"]

    deleted = await api.delete("/v1/profiles/c1/fields/tier")
    assert deleted.status_code == 204

    profile = await fresh(api, "/v1/profiles/c1")
    assert set(profile["fields"]) == {"email"}
    assert profile["field_status_summary"]["active"] == 1


async def test_asset_create_is_visible_to_the_next_read(api: httpx.AsyncClient) -> None:
    await put_field(api, "c1", "tier", "gold")
    assert (await warm(api, "/v1/profiles/c1"))["assets"] == []

    created = await api.post("/v1/profiles/c1/assets", json=ASSET)
    assert created.status_code == 201, created.text

    assets = (await fresh(api, "/v1/profiles/c1"))["assets"]
    assert [a["id"] for a in assets] == [created.json()["id"]]


async def test_asset_delete_is_visible_to_the_next_read(api: httpx.AsyncClient) -> None:
    created = await api.post("/v1/profiles/c1/assets", json=ASSET)
    assert created.status_code == 201, created.text
    assert len((await warm(api, "/v1/profiles/c1"))["assets"]) == 1

    deleted = await api.delete(f"/v1/assets/{created.json()['id']}")
    assert deleted.status_code == 204

    assert (await fresh(api, "/v1/profiles/c1"))["assets"] == []


async def test_identity_link_is_visible_to_the_next_read(api: httpx.AsyncClient) -> None:
    await put_field(api, "c1", "tier", "gold")
    assert (await warm(api, "/v1/profiles/c1"))["channel_identities"] == []

    linked = await api.post(
        "/v1/profiles/c1/channel-identities",
        json={"channel": "whatsapp", "channel_user_id": "+33600000001"},
    )
    assert linked.status_code == 201, linked.text

    identities = (await fresh(api, "/v1/profiles/c1"))["channel_identities"]
    assert [(i["channel"], i["channel_user_id"]) for i in identities] == [
        ("whatsapp", "+33600000001")
    ]


async def test_consent_grant_and_revoke_are_visible_to_the_next_read(
    api: httpx.AsyncClient,
) -> None:
    await put_field(api, "c1", "tier", "gold")
    for granted in (True, False):
        await warm(api, "/v1/profiles/c1")
        answer = await api.put("/v1/profiles/c1/consents/marketing", json={"granted": granted})
        assert answer.status_code == 200, answer.text
        consents = (await fresh(api, "/v1/profiles/c1"))["consents"]
        assert [(c["consent_type"], c["granted"]) for c in consents] == [("marketing", granted)]


async def test_merge_is_visible_on_the_target_and_through_the_source_id(
    api: httpx.AsyncClient,
) -> None:
    await put_field(api, "target", "email", "a@b.c")
    await put_field(api, "source", "phone", "+33600000002")
    linked = await api.post(
        "/v1/profiles/source/channel-identities", json={"channel": "sms", "channel_user_id": "s1"}
    )
    assert linked.status_code == 201
    await warm(api, "/v1/profiles/target")
    await warm(api, "/v1/profiles/source")
    await warm(api, "/v1/profiles/by-channel/sms/s1")

    merged = await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    assert merged.status_code == 200, merged.text

    target = await fresh(api, "/v1/profiles/target")
    assert set(target["fields"]) == {"email", "phone"}
    assert [i["channel_user_id"] for i in target["channel_identities"]] == ["s1"]
    via_source = await fresh(api, "/v1/profiles/source")
    assert via_source == target
    via_channel = await fresh(api, "/v1/profiles/by-channel/sms/s1")
    assert via_channel == target

    # A write addressed to the alias lands on the target, whose cached copy is dropped.
    await warm(api, "/v1/profiles/target")
    await put_field(api, "source", "tier", "gold")
    assert (await fresh(api, "/v1/profiles/target"))["fields"]["tier"]["value"] == "gold"


async def test_delete_that_orphans_items_of_another_profile_refreshes_that_profile(
    api: httpx.AsyncClient,
) -> None:
    passport_id = await put_field(api, "holder", "passport_no", "X1234567")
    derived = await api.put(
        "/v1/profiles/relative/fields/guardian_passport",
        json={
            "value": "X1234567",
            "source": "document_extracted",
            "source_item_id": passport_id,
            "source_item_type": "profile_field",
        },
    )
    assert derived.status_code == 201, derived.text
    await put_field(api, "relative", "email", "r@b.c")
    warmed = await warm(api, "/v1/profiles/relative")
    assert warmed["field_status_summary"]["active"] == 2

    deleted = await api.delete("/v1/profiles/holder/fields/passport_no")
    assert deleted.status_code == 204

    relative = await fresh(api, "/v1/profiles/relative")
    assert set(relative["fields"]) == {"email"}
    assert relative["field_status_summary"]["orphaned"] == 1
    assert relative["field_status_summary"]["active"] == 1


async def test_reads_by_channel_identity_are_never_stale(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/v1/profiles",
        json={
            "customer_id": "c1",
            "channel_identities": [{"channel": "web", "channel_user_id": "u1"}],
        },
    )
    assert created.status_code == 201, created.text
    by_channel = "/v1/profiles/by-channel/web/u1"

    await warm(api, by_channel)
    await put_field(api, "c1", "tier", "gold")
    assert (await fresh(api, by_channel))["fields"]["tier"]["value"] == "gold"

    await warm(api, by_channel)
    linked = await api.post(
        "/v1/profiles/c1/channel-identities", json={"channel": "sms", "channel_user_id": "u2"}
    )
    assert linked.status_code == 201
    assert len((await fresh(api, by_channel))["channel_identities"]) == 2
    assert await fresh(api, "/v1/profiles/by-channel/sms/u2") == await fresh(api, by_channel)

    await warm(api, by_channel)
    assert (await api.delete("/v1/profiles/c1/fields/tier")).status_code == 204
    assert (await fresh(api, by_channel))["fields"] == {}


# -- two API instances sharing one Redis ---------------------------------------------


@dataclass
class StaleLog:
    """Acknowledged writes and every read that showed something older."""

    acked: dict[str, int] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    reads: int = 0

    def check(self, profile: dict[str, Any], floor: dict[str, int], where: str) -> None:
        """Every field acknowledged before the read began must show that value or newer."""
        self.reads += 1
        for name, value in floor.items():
            seen = profile["fields"].get(name)
            if seen is None or int(seen["value"]) < value:
                shown = None if seen is None else seen["value"]
                self.stale.append(f"{where}: {name} acked {value}, read {shown}")


async def test_two_instances_sharing_redis_never_serve_a_stale_profile(
    settings: Settings, tenant: Tenant, redis_url: str
) -> None:
    """500 write-then-read cycles from 10 concurrent tasks, each writing through one
    instance and reading through the other, while 4 readers hammer the same profile
    through both (the reader-puts-old-version race)."""
    writers, cycles_each, hammers = 10, 50, 4
    log = StaleLog()
    done = asyncio.Event()
    path = "/v1/profiles/shared"

    async def writer(k: int, instances: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
        name = f"f{k}"
        for i in range(1, cycles_each + 1):
            through, other = instances[(k + i) % 2], instances[(k + i + 1) % 2]
            answer = await through.put(f"{path}/fields/{name}", json=field_body(i))
            assert answer.status_code == 201, answer.text
            log.acked[name] = i
            read = await other.get(path)
            assert read.status_code == 200, read.text
            log.check(read.json(), {name: i}, f"writer {k} cycle {i}")

    async def hammer(j: int, instances: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
        for n in itertools.count():
            if done.is_set():
                return
            floor = dict(log.acked)
            read = await instances[(j + n) % 2].get(path)
            assert read.status_code == 200, read.text
            log.check(read.json(), floor, f"hammer {j} read {n}")

    async with (
        vault_on(settings, redis_url) as vault_a,
        vault_on(settings, redis_url) as vault_b,
        client_for(vault_a, tenant[1]) as a,
        client_for(vault_b, tenant[1]) as b,
    ):
        await put_field(a, "shared", "seed", 0)
        before = Counters.now()
        hammering = [asyncio.create_task(hammer(j, (a, b))) for j in range(hammers)]
        try:
            await asyncio.gather(*(writer(k, (a, b)) for k in range(writers)))
        finally:
            done.set()
            await asyncio.gather(*hammering)
        gained = before.since()

    assert sum(log.acked.values()) == writers * cycles_each
    assert log.stale == [], f"{len(log.stale)} stale reads of {log.reads}: {log.stale[:5]}"
    assert gained.hits > 0, "no read was served from the cache: the test proved nothing"
    # Redis calls time out after 0.2 s; on a loaded 2-core CI runner the one event loop
    # that drives both instances and 14 clients can stall that long now and then (CI saw
    # one timeout in 925 calls). A timed-out call falls back to PostgreSQL, which is what
    # the staleness check above covers; what must not happen is the cache failing
    # wholesale.
    assert gained.errors <= 0.01 * (gained.hits + gained.misses), gained


# -- Redis outages (a Valkey this test owns) -----------------------------------------


@dataclass
class Load:
    """Clients writing and reading their own profile in a loop, recording every failure."""

    client: httpx.AsyncClient
    failures: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    cycles: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, customer_id: str) -> None:
        """Write a counter, read the profile twice, until told to stop."""
        for i in itertools.count(1):
            if self.stop.is_set():
                return
            try:
                put = await self.client.put(
                    f"/v1/profiles/{customer_id}/fields/counter", json=field_body(i)
                )
                if put.status_code != 201:
                    self.failures.append(f"PUT {put.status_code}: {put.text[:200]}")
                    continue
                for _ in range(2):
                    got = await self.client.get(f"/v1/profiles/{customer_id}")
                    if got.status_code != 200:
                        self.failures.append(f"GET {got.status_code}: {got.text[:200]}")
                    elif got.json()["fields"]["counter"]["value"] != i:
                        self.stale.append(f"{customer_id}: wrote {i}, read {got.text[:200]}")
            except Exception as exc:
                self.failures.append(repr(exc))
            self.cycles += 1


async def wait_until(condition: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Poll `condition` until it holds; fail with `what` after `within` seconds."""
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    assert condition(), what


async def test_redis_outage_mid_run_fails_no_request_and_hits_resume_after_restart(
    settings: Settings, tenant: Tenant, tmp_path: Path
) -> None:
    """Writes go on while Redis is down, and Redis comes back with the entries it had
    (a snapshot), which missed them: no read may show a value older than its write."""
    async with (
        dedicated_valkey(tmp_path / "valkey", keep_data=True) as server,
        vault_on(settings, server.url) as vault,
        client_for(vault, tenant[1]) as client,
    ):
        load = Load(client)
        tasks = [asyncio.create_task(load.run(f"c{n}")) for n in range(4)]
        try:
            hits = metric(HITS)
            await wait_until(lambda: metric(HITS) >= hits + 20, "no hits before the outage")

            await server.stop()
            errors, cycles = Counters.now().errors, load.cycles
            await wait_until(lambda: load.cycles >= cycles + 40, "requests stalled while down")
            assert Counters.now().errors > errors, "the outage was not noticed"

            await server.start()
            hits = metric(HITS)
            await wait_until(
                lambda: metric(HITS) >= hits + 20, "hits did not resume after Redis restarted"
            )
        finally:
            load.stop.set()
            await asyncio.gather(*tasks)

    assert load.failures == [], load.failures[:5]
    assert load.stale == [], load.stale[:5]


async def test_readyz_reports_cache_degraded_while_redis_is_down_and_ok_after(
    settings: Settings, tenant: Tenant, tmp_path: Path
) -> None:
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        vault_on(settings, server.url) as vault,
        client_for(vault, tenant[1]) as client,
    ):
        await put_field(client, "c1", "tier", "gold")
        up = await client.get("/readyz")
        assert up.status_code == 200
        assert up.json()["checks"]["cache"] == "ok"

        await server.stop()
        down = await client.get("/readyz")
        assert down.status_code == 200
        assert down.json()["checks"]["cache"] == "degraded"
        assert down.json()["checks"]["database"] == "ok"
        assert down.json()["status"] == "degraded"
        read = await client.get("/v1/profiles/c1")
        assert read.status_code == 200
        assert read.json()["fields"]["tier"]["value"] == "gold"

        await server.start()
        back = await client.get("/readyz")
        assert back.status_code == 200
        assert back.json()["checks"]["cache"] == "ok"
        metrics = await client.get("/metrics")
        for name in ("hits", "misses", "errors", "invalidations"):
            assert f"ccv_cache_{name}_total" in metrics.text
        assert json.loads((await client.get("/v1/profiles/c1")).content)["customer_id"] == "c1"
