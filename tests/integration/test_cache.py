"""The profile cache at the store level, against real Redis/Valkey: what is stored under
which key, the version guard against slow readers, expiry bounds, hit rate, and outages
of a Valkey the test owns (stopped and restarted for real)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from cache_support import (
    TEST_COOLDOWN,
    Counters,
    cache_key,
    dedicated_valkey,
    raw_redis,
    split_entry,
    vault_on,
)
from ccvault.config import Settings
from ccvault.runtime import Vault
from ccvault.storage.cache import FAILURE_THRESHOLD, Touched
from ccvault.storage.profiles import ProfileStore

from .helpers import fetch, new_field


async def stored_version(vault: Vault, tenant_id: UUID, customer_id: str) -> int:
    """The profile's version in PostgreSQL (what the cache entries are compared by)."""
    rows = await fetch(
        vault.pool,
        "SELECT version FROM customer_profiles WHERE tenant_id = %s AND customer_id = %s",
        (tenant_id, customer_id),
    )
    return int(rows[0][0])


# -- what is stored ------------------------------------------------------------------


async def test_profile_read_is_stored_under_contract_key_at_its_version(
    vault: Vault, tenant_id: UUID, redis_url: str
) -> None:
    await vault.profiles.save_field(tenant_id, "c1", "email", new_field("a@b.c"))

    before = Counters.now()
    body = await vault.profiles.get_profile_json(tenant_id, "c1")
    assert before.since().misses == 1

    async with raw_redis(redis_url) as raw:
        value = await raw.get(cache_key(vault, tenant_id, "c1"))
    assert value is not None, "the first read did not store the profile"
    _, version, cached_json = split_entry(value)
    assert cached_json == body
    assert version == await stored_version(vault, tenant_id, "c1")

    before = Counters.now()
    again = await vault.profiles.get_profile_json(tenant_id, "c1")
    assert before.since().hits == 1
    assert again == body


async def test_slow_reader_cannot_put_back_a_profile_older_than_a_committed_write(
    vault: Vault, tenant_id: UUID
) -> None:
    """The reader-puts-old-version race, made deterministic: a reader loads the profile,
    a writer commits and invalidates, then the reader's put arrives last."""
    assert vault.cache is not None
    cache, store = vault.cache, vault.profiles
    uncached = ProfileStore(vault.pool, cache=None)
    await store.save_field(tenant_id, "c1", "tier", new_field("silver"))

    _, epoch = await cache.get(tenant_id, "c1")
    old_version = await stored_version(vault, tenant_id, "c1")
    old_body = await uncached.get_profile_json(tenant_id, "c1")

    await store.save_field(tenant_id, "c1", "tier", new_field("gold"))
    await cache.put(tenant_id, "c1", old_version, epoch, old_body)

    profile = await store.get_profile(tenant_id, "c1")
    assert profile.fields["tier"].value == "gold"


async def test_invalidation_arriving_late_does_not_undo_a_newer_one(
    vault: Vault, tenant_id: UUID
) -> None:
    """Two writers' tombstones landing out of order: the older one must not win."""
    assert vault.cache is not None
    await vault.profiles.save_field(tenant_id, "c1", "tier", new_field("gold"))
    version = await stored_version(vault, tenant_id, "c1")
    await vault.profiles.get_profile_json(tenant_id, "c1")  # stored at `version`

    await vault.cache.invalidate([Touched(tenant_id, "c1", version - 1)])

    before = Counters.now()
    await vault.profiles.get_profile_json(tenant_id, "c1")
    assert before.since().hits == 1, "a stale tombstone replaced a current entry"


# -- expiry --------------------------------------------------------------------------


async def test_cached_profile_never_outlives_the_earliest_expires_at(
    vault: Vault, tenant_id: UUID, redis_url: str
) -> None:
    # A profile of a realistic size: its read and rendering take a few milliseconds.
    for n in range(60):
        await vault.profiles.save_field(tenant_id, "c1", f"note_{n}", new_field("x" * 200))
    await vault.profiles.save_field(tenant_id, "c1", "name", new_field("Ada"))
    expires_at = datetime.now(UTC) + timedelta(seconds=1.5)
    await vault.profiles.save_field(
        tenant_id, "c1", "otp", new_field("123456", expires_at=expires_at)
    )

    first = json.loads(await vault.profiles.get_profile_json(tenant_id, "c1"))
    assert "otp" in first["fields"]
    before = Counters.now()
    await vault.profiles.get_profile_json(tenant_id, "c1")
    assert before.since().hits == 1, "the profile with an expiring field was not cached"

    async with raw_redis(redis_url) as raw:
        await raw.ping()  # connected: nothing but PTTL's own round trip lies in between
        left_ms = (expires_at - datetime.now(UTC)).total_seconds() * 1000
        pttl = await raw.pttl(cache_key(vault, tenant_id, "c1"))
    # +1 ms: Redis counts whole milliseconds. Anything more is the entry outliving the field.
    assert 0 < pttl <= left_ms + 1, f"entry lives {pttl} ms, the field expires in {left_ms:.1f} ms"

    await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.05)
    after = json.loads(await vault.profiles.get_profile_json(tenant_id, "c1"))
    assert "otp" not in after["fields"]
    assert "name" in after["fields"]
    assert after["field_status_summary"]["expired"] == 1
    assert after["field_status_summary"]["active"] == 61


# -- hit rate ------------------------------------------------------------------------


async def test_zipf_read_mix_with_ten_percent_writes_hits_at_least_80_percent(
    vault: Vault, tenant_id: UUID
) -> None:
    rng = random.Random(20240604)
    customers = [f"zipf-{rank}" for rank in range(10)]
    weights = [1 / (rank + 1) ** 1.1 for rank in range(10)]
    for customer in customers:
        await vault.profiles.save_field(tenant_id, customer, "visits", new_field(0))

    # 1,000 reads (10 profiles x 100 on average, Zipf-skewed) and 111 writes (10% of all
    # operations), interleaved; writes follow the same skew (hot profiles change most).
    ops = ["read"] * 1000 + ["write"] * 111
    rng.shuffle(ops)
    before = Counters.now()
    for n, op in enumerate(ops):
        customer = rng.choices(customers, weights)[0]
        if op == "write":
            await vault.profiles.save_field(tenant_id, customer, "visits", new_field(n))
        else:
            await vault.profiles.get_profile_json(tenant_id, customer)
    gained = before.since()

    assert gained.hits + gained.misses == 1000
    rate = gained.hits / 1000
    assert rate >= 0.8, f"hit rate {rate:.1%} on the Zipf mix (misses {gained.misses:.0f})"


# -- outages of a Valkey this test owns ----------------------------------------------


async def test_store_reads_and_writes_succeed_while_redis_is_down(
    settings: Settings, tenant_id: UUID, tmp_path: Path
) -> None:
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        vault_on(settings, server.url) as vault,
    ):
        await vault.profiles.save_field(tenant_id, "c1", "tier", new_field("gold"))
        await server.stop()

        before = Counters.now()
        await vault.profiles.save_field(tenant_id, "c1", "tier", new_field("platinum"))
        profile = await vault.profiles.get_profile(tenant_id, "c1")
        assert profile.fields["tier"].value == "platinum"
        assert before.since().errors >= 1, "the cache did not notice that Redis was down"


async def test_write_made_while_redis_was_down_is_read_after_redis_returns_with_old_data(
    settings: Settings, tenant_id: UUID, tmp_path: Path
) -> None:
    """ "Reachable again but missed an invalidation", for real: the Valkey keeps its data
    across a restart (snapshot on shutdown), so the entry cached before the outage comes
    back although a write changed the profile while the server was down."""
    async with (
        dedicated_valkey(tmp_path / "valkey", keep_data=True) as server,
        vault_on(settings, server.url) as vault,
    ):
        await warm(vault.profiles, tenant_id, "c1", "gold")

        await server.stop()
        await vault.profiles.save_field(tenant_id, "c1", "tier", new_field("platinum"))
        assert await tier(vault.profiles, tenant_id, "c1") == "platinum"
        await server.start()
        await assert_restarted_with_entry(
            server.url, cache_key(vault, tenant_id, "c1"), "tier", "gold"
        )

        seen = await read_until_hit(vault.profiles, tenant_id, "c1")
        assert set(seen) == {"platinum"}, f"reads after Redis came back saw {seen}"


async def test_instance_idle_during_outage_does_not_serve_an_entry_that_missed_a_write(
    settings: Settings, tenant_id: UUID, tmp_path: Path
) -> None:
    """Two API processes: A writes while Redis is down; Redis returns with its data; B,
    which made no request during the outage, reads next."""
    async with (
        dedicated_valkey(tmp_path / "valkey", keep_data=True) as server,
        vault_on(settings, server.url) as writer,
        vault_on(settings, server.url) as reader,
    ):
        await warm(reader.profiles, tenant_id, "c1", "gold")

        await server.stop()
        await writer.profiles.save_field(tenant_id, "c1", "tier", new_field("platinum"))
        await server.start()
        await assert_restarted_with_entry(
            server.url, cache_key(writer, tenant_id, "c1"), "tier", "gold"
        )

        seen = await read_until_hit(reader.profiles, tenant_id, "c1")
        assert set(seen) == {"platinum"}, f"B's reads after Redis came back saw {seen}"


async def test_instance_started_after_outage_does_not_serve_an_entry_that_missed_a_write(
    settings: Settings, tenant_id: UUID, tmp_path: Path
) -> None:
    """A writes while Redis is down; Redis returns with its data; a process started after
    that (a new pod) reads before A has talked to Redis again."""
    async with (
        dedicated_valkey(tmp_path / "valkey", keep_data=True) as server,
        vault_on(settings, server.url) as writer,
    ):
        await warm(writer.profiles, tenant_id, "c1", "gold")

        await server.stop()
        await writer.profiles.save_field(tenant_id, "c1", "tier", new_field("platinum"))
        await server.start()
        await assert_restarted_with_entry(
            server.url, cache_key(writer, tenant_id, "c1"), "tier", "gold"
        )

        async with vault_on(settings, server.url) as newcomer:
            seen = await read_until_hit(newcomer.profiles, tenant_id, "c1")
        assert set(seen) == {"platinum"}, f"the new process's reads saw {seen}"


async def tier(store: ProfileStore, tenant_id: UUID, customer_id: str) -> str:
    """The profile's current `tier` value as this store reads it (cache first)."""
    profile = json.loads(await store.get_profile_json(tenant_id, customer_id))
    return str(profile["fields"]["tier"]["value"])


async def warm(store: ProfileStore, tenant_id: UUID, customer_id: str, value: str) -> None:
    """Write `tier` and read it until the store answers it from the cache."""
    await store.save_field(tenant_id, customer_id, "tier", new_field(value))
    await store.get_profile_json(tenant_id, customer_id)
    before = Counters.now()
    assert await tier(store, tenant_id, customer_id) == value
    assert before.since().hits == 1, "the warm read was not a cache hit"


async def read_until_hit(store: ProfileStore, tenant_id: UUID, customer_id: str) -> list[str]:
    """Read through the breaker's cooldown until a read is a hit again; the values seen."""
    seen: list[str] = []
    for _ in range(40):
        before = Counters.now()
        seen.append(await tier(store, tenant_id, customer_id))
        if before.since().hits:
            return seen
        await asyncio.sleep(TEST_COOLDOWN / 4)
    raise AssertionError(f"the cache never served a hit again after Redis returned: {seen}")


async def assert_restarted_with_entry(url: str, key: str, name: str, value: str) -> None:
    """The restarted server really holds the pre-outage entry (else the test proves nothing)."""
    async with raw_redis(url) as raw:
        stored = await raw.get(key)
    assert stored is not None, "the snapshot did not bring the old entry back"
    _, _, body = split_entry(stored)
    assert json.loads(body)["fields"][name]["value"] == value


async def test_breaker_lets_requests_skip_a_dead_redis_once_failures_follow_each_other(
    settings: Settings, tenant_id: UUID, tmp_path: Path
) -> None:
    """After FAILURE_THRESHOLD consecutive failures the cache is not asked again before the
    cooldown: reads meanwhile are counted as skipped errors and cost no round trip."""
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        vault_on(settings, server.url) as vault,
    ):
        assert vault.cache is not None
        vault.cache.breaker.cooldown = 30.0
        await vault.profiles.save_field(tenant_id, "c1", "tier", new_field("gold"))
        await server.stop()
        for _ in range(FAILURE_THRESHOLD):  # one after the other: each counts
            await vault.profiles.get_profile_json(tenant_id, "c1")
        assert not vault.cache.healthy
        assert not vault.cache.breaker.allow()

        before = Counters.now()
        for _ in range(20):
            await vault.profiles.get_profile_json(tenant_id, "c1")
        gained = before.since()
        assert gained.errors == 20 and gained.hits == 0 and gained.misses == 0
        assert not vault.cache.breaker.allow()
