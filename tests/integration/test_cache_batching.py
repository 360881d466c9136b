"""Concurrent profile reads share one Redis command: `ProfileCache.get` batches the reads
of one event-loop turn into a single `MGET profile:epoch key1 key2 ...`. Against real
servers: the MGETs are counted on the vault's own Redis client (a wrapper that records
and passes every command on), or by the server itself (`INFO commandstats`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from cache_support import (
    TEST_COOLDOWN,
    Counters,
    cache_key,
    dedicated_valkey,
    quiet_cache,
    raw_redis,
)
from ccvault.runtime import Vault
from ccvault.storage.cache import EPOCH_KEY, MAX_BATCH
from ccvault.storage.profiles import ProfileStore

from .helpers import new_field

READS = 50


@dataclass
class Mgets:
    """The MGETs a Redis client sent: the keys of each, and an event set at the first."""

    keys: list[tuple[str, ...]] = field(default_factory=list)
    sent: asyncio.Event = field(default_factory=asyncio.Event)
    fail_with: Exception | None = None  # raise this instead of sending (fault injection)


def record_mgets(client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> Mgets:
    """Wrap the client's `execute_command` (which every command goes through) to record
    each MGET and pass it on to the server unchanged."""
    mgets = Mgets()
    send = client.execute_command

    async def recording(*args: Any, **options: Any) -> Any:
        if args[0] == "MGET":
            mgets.keys.append(tuple(str(key) for key in args[1:]))
            mgets.sent.set()
            if mgets.fail_with is not None:
                raise mgets.fail_with
        return await send(*args, **options)

    monkeypatch.setattr(client, "execute_command", recording)
    return mgets


@pytest.fixture
async def mgets(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> Mgets:
    """The session vault's MGETs from here on, its epoch synced first: an earlier test that
    lost an invalidation raised the durable epoch, and the vault's once-a-second sync lifting
    Redis's epoch in the middle of this test would turn expected hits into misses."""
    assert vault.cache is not None
    if isinstance(vault.cache.client, RedisCluster):
        pytest.skip("one MGET per batch is a single server's shape; a cluster sends one per slot")
    await vault.cache.sync_epoch()
    return record_mgets(vault.cache.client, monkeypatch)


def customers(n: int = READS) -> list[str]:
    """Distinct customer ids."""
    return [f"batch-{i:03d}" for i in range(n)]


async def seed(store: ProfileStore, tenant_id: UUID, ids: list[str]) -> None:
    """One profile per id, each with a value of its own."""
    for customer_id in ids:
        await store.save_field(tenant_id, customer_id, "tier", new_field(f"tier of {customer_id}"))


async def read_all(store: ProfileStore, tenant_id: UUID, ids: list[str]) -> list[bytes]:
    """Every profile read at once (concurrently, so in one event-loop turn)."""
    return list(await asyncio.gather(*(store.get_profile_json(tenant_id, c) for c in ids)))


def batch(vault: Vault, tenant_id: UUID, ids: list[str]) -> tuple[str, ...]:
    """The keys of the one MGET that should answer reads of `ids` (in order, deduplicated)."""
    return (EPOCH_KEY, *dict.fromkeys(cache_key(vault, tenant_id, c) for c in ids))


# -- one MGET per turn ----------------------------------------------------------------


async def test_concurrent_reads_of_different_profiles_share_one_mget(
    vault: Vault, tenant_id: UUID, mgets: Mgets
) -> None:
    ids = customers()
    await seed(vault.profiles, tenant_id, ids)
    uncached = ProfileStore(vault.pool, cache=None)
    expected = [await uncached.get_profile_json(tenant_id, c) for c in ids]
    mgets.keys.clear()

    before = Counters.now()
    cold = await read_all(vault.profiles, tenant_id, ids)
    assert cold == expected
    assert mgets.keys == [batch(vault, tenant_id, ids)]
    gained = before.since()
    assert (gained.hits, gained.misses, gained.errors) == (0, READS, 0)

    mgets.keys.clear()
    before = Counters.now()
    warm = await read_all(vault.profiles, tenant_id, ids)
    assert warm == expected
    assert mgets.keys == [batch(vault, tenant_id, ids)]
    gained = before.since()
    assert (gained.hits, gained.misses, gained.errors) == (READS, 0, 0)

    # Read one after the other, each read is a batch of its own, with the same answers.
    mgets.keys.clear()
    sequential = [await vault.profiles.get_profile_json(tenant_id, c) for c in ids]
    assert sequential == expected
    assert mgets.keys == [batch(vault, tenant_id, [c]) for c in ids]


async def test_concurrent_reads_of_one_profile_send_its_key_once(
    vault: Vault, tenant_id: UUID, mgets: Mgets
) -> None:
    await seed(vault.profiles, tenant_id, ["hot"])
    expected = await vault.profiles.get_profile_json(tenant_id, "hot")  # fills the cache
    mgets.keys.clear()

    before = Counters.now()
    answers = await read_all(vault.profiles, tenant_id, ["hot"] * READS)
    assert answers == [expected] * READS
    assert mgets.keys == [(EPOCH_KEY, cache_key(vault, tenant_id, "hot"))]
    assert before.since().hits == READS, "every read counts its own hit"


async def test_a_full_batch_starts_another(vault: Vault, tenant_id: UUID, mgets: Mgets) -> None:
    assert vault.cache is not None
    cache = vault.cache
    ids = customers(MAX_BATCH + 44)  # never written: misses, no PostgreSQL reads needed
    # A key the full batch already has joins it rather than the next one.
    order = [*ids[:MAX_BATCH], ids[5], *ids[MAX_BATCH:]]
    answers = await asyncio.gather(*(cache.get(tenant_id, c) for c in order))

    assert [body for body, _ in answers] == [None] * len(order)
    assert mgets.keys == [
        batch(vault, tenant_id, ids[:MAX_BATCH]),
        batch(vault, tenant_id, ids[MAX_BATCH:]),
    ]


async def test_server_counts_one_mget_for_a_batch(
    vault: Vault, tenant_id: UUID, tmp_path: Path
) -> None:
    """The same, counted by a Redis this test owns (nothing else sends it MGETs)."""
    ids = customers()
    await seed(vault.profiles, tenant_id, ids)
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        store_on(vault, server.url) as store,
        raw_redis(server.url) as raw,
    ):
        expected = await read_all(store, tenant_id, ids)  # the misses that fill the cache
        calls_before = await mget_calls(raw)
        before = Counters.now()
        assert await read_all(store, tenant_id, ids) == expected
        assert await mget_calls(raw) - calls_before == 1
        assert before.since().hits == READS


async def mget_calls(raw: aioredis.Redis) -> int:
    """How many MGETs the server has executed."""
    stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_mget", {}).get("calls", 0))


# -- read-your-writes ----------------------------------------------------------------


async def test_write_between_batches_is_seen_by_the_next_batch(
    vault: Vault, tenant_id: UUID, mgets: Mgets
) -> None:
    ids = customers(10)
    await seed(vault.profiles, tenant_id, ids)
    await read_all(vault.profiles, tenant_id, ids)  # misses: fill the cache
    first = await read_all(vault.profiles, tenant_id, ids)

    await vault.profiles.save_field(tenant_id, ids[3], "tier", new_field("gold"))
    mgets.keys.clear()
    second = await read_all(vault.profiles, tenant_id, ids)

    assert mgets.keys == [batch(vault, tenant_id, ids)]
    assert b'"gold"' in second[3] and b'"gold"' not in first[3]
    assert second[:3] + second[4:] == first[:3] + first[4:]


# -- cancellation and failures -------------------------------------------------------


@pytest.mark.parametrize("when", ["before the MGET is sent", "while the MGET is in flight"])
async def test_cancelled_reads_do_not_affect_the_others_of_their_batch(
    vault: Vault, tenant_id: UUID, mgets: Mgets, when: str
) -> None:
    ids = customers(10)
    await seed(vault.profiles, tenant_id, ids)
    expected = await read_all(vault.profiles, tenant_id, ids)
    await read_all(vault.profiles, tenant_id, ids)
    mgets.keys.clear()
    mgets.sent.clear()

    # Two readers of each profile; some profiles lose both readers, some one of them.
    reads = [asyncio.create_task(vault.profiles.get_profile_json(tenant_id, c)) for c in ids + ids]
    if when == "before the MGET is sent":
        await asyncio.sleep(0)  # the readers run up to their wait; the flush comes next turn
        assert not mgets.keys, "the batch was sent before the test could cancel a read"
    else:
        await mgets.sent.wait()
    cancelled = {0, 2, 4, 10, 12, 15}
    for n in cancelled:
        reads[n].cancel()
    answers = await asyncio.gather(*reads, return_exceptions=True)

    assert mgets.keys == [batch(vault, tenant_id, ids)]
    for n, answer in enumerate(answers):
        if n in cancelled:
            assert isinstance(answer, asyncio.CancelledError)
        else:
            assert answer == expected[n % len(ids)]
    assert await read_all(vault.profiles, tenant_id, ids) == expected


async def test_unexpected_error_of_the_batch_reaches_every_read(
    vault: Vault, tenant_id: UUID, mgets: Mgets
) -> None:
    """Not a Redis or socket error (a bug, say): no breaker, no miss, but no read waits
    forever either: each raises it, as a single read would."""
    assert vault.cache is not None
    cache = vault.cache
    mgets.fail_with = RuntimeError("not a Redis error")
    reads = asyncio.gather(*(cache.get(tenant_id, c) for c in customers()), return_exceptions=True)
    answers = await asyncio.wait_for(reads, timeout=5)

    assert all(answer is mgets.fail_with for answer in answers)
    assert len(mgets.keys) == 1
    assert cache.breaker.allow() and cache.healthy


# -- outages of a Valkey this test owns ----------------------------------------------


@asynccontextmanager
async def store_on(vault: Vault, redis_url: str) -> AsyncIterator[ProfileStore]:
    """A store over a cache of its own on `redis_url`, without the epoch syncer (see
    `quiet_cache`)."""
    async with quiet_cache(vault.pool, redis_url) as cache:
        yield ProfileStore(vault.pool, cache)


async def test_batch_during_an_outage_falls_back_to_postgresql_and_recovers(
    vault: Vault, tenant_id: UUID, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = customers()
    await seed(vault.profiles, tenant_id, ids)
    async with (
        dedicated_valkey(tmp_path / "valkey", keep_data=True) as server,
        store_on(vault, server.url) as store,
    ):
        cache = store.cache
        assert cache is not None
        expected = await read_all(store, tenant_id, ids)  # cached from here on
        mgets = record_mgets(cache.client, monkeypatch)
        await server.stop()

        before = Counters.now()
        assert await read_all(store, tenant_id, ids) == expected, "a read failed or differs"
        gained = before.since()
        assert (gained.hits, gained.misses, gained.errors) == (0, 0, READS)
        assert len(mgets.keys) == 1, "the batch's reads did not share one MGET"
        assert cache.breaker.failures == 1, "the batch counted as more than one failure"

        # A write Redis cannot be told about raises the durable epoch; Redis comes back
        # with the entries it had, which missed that write.
        await store.save_field(tenant_id, ids[7], "tier", new_field("platinum"))
        expected[7] = await ProfileStore(vault.pool, cache=None).get_profile_json(tenant_id, ids[7])
        await server.start()
        lifts = 0
        lift_epoch = cache._lift_epoch

        async def counted_lift() -> int | None:
            nonlocal lifts
            lifts += 1
            return await lift_epoch()

        monkeypatch.setattr(cache, "_lift_epoch", counted_lift)

        # The first batch Redis answers (the breaker's trial: the reads of its turn from
        # the trial on) lifts the epoch first: every entry is then older than the epoch in
        # force, so all its reads are misses.
        mgets.keys.clear()
        gained = await batch_until(store, tenant_id, expected, lambda got: got.errors < READS)
        assert gained.hits == 0, "trusted entries before lifting"
        assert gained.misses == READS - gained.errors
        assert len(mgets.keys) == 1 and lifts == 1
        assert cache.healthy

        # The old entries get replaced, then hit.
        await batch_until(store, tenant_id, expected, lambda got: got.hits == READS)


async def batch_until(
    store: ProfileStore, tenant_id: UUID, expected: list[bytes], done: Callable[[Counters], bool]
) -> Counters:
    """Read every profile at once, through the breaker's cooldowns, until a batch's counters
    satisfy `done`; those counters. Every answer on the way must be right."""
    ids = customers(len(expected))
    for _ in range(40):
        before = Counters.now()
        assert await read_all(store, tenant_id, ids) == expected
        gained = before.since()
        if done(gained):
            return gained
        await asyncio.sleep(TEST_COOLDOWN / 2)
    raise AssertionError("the cache did not recover from the outage")
