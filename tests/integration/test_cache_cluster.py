"""The profile cache on a Redis Cluster (three local masters): read-your-writes across two
processes, tombstones, epochs, a node that stops (reads and writes go on from PostgreSQL,
nothing stale afterwards) and a node that comes back without the scripts; a warm read is
one script on the key's node, which reads that node's copy of the epoch; every copy is
lifted by a raise; a node without its copy, or a stale map of the slots, serves nothing
it should not.

The whole cache suite also runs against a cluster with CCV_TEST_REDIS_CLUSTER=on
(`make test-cluster`); these tests run in every suite."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from redis.asyncio.cluster import RedisCluster

from cache_support import Counters, cache_key, quiet_cache, raw_redis, split_entry, vault_on
from ccvault.config import Settings
from ccvault.runtime import Vault
from ccvault.storage.cache import EPOCH_KEY, ProfileCache, Touched, epoch_copies
from ccvault.storage.profiles import ProfileStore
from cluster_support import LocalCluster, local_cluster

from .helpers import new_field


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three masters for this module."""
    with local_cluster(Path(tmp_path_factory.mktemp("cluster"))) as started:
        yield started


async def read(vault: Vault, tenant_id: UUID, customer_id: str) -> bytes:
    """A profile read through the cache (JSON bytes)."""
    body = await vault.profiles.get_profile_json(tenant_id, customer_id)
    assert body is not None
    return body


async def write(vault: Vault, tenant_id: UUID, customer_id: str, value: str) -> None:
    """A field write (its invalidation included)."""
    await vault.profiles.save_field(tenant_id, customer_id, "tier", new_field(value))


async def test_reads_are_cached_on_the_cluster_under_the_contract_key(
    settings: Settings, cluster: LocalCluster, tenant_id: UUID
) -> None:
    async with vault_on(settings, cluster.url) as vault, raw_redis(cluster.url) as raw:
        await write(vault, tenant_id, "c1", "gold")
        before = Counters.now()
        first = await read(vault, tenant_id, "c1")
        second = await read(vault, tenant_id, "c1")
        assert first == second
        assert Counters.now().hits - before.hits == 1
        _, version, body = split_entry(await raw.get(cache_key(vault, tenant_id, "c1")))
        assert body == first and version >= 1


async def test_concurrent_reads_spread_over_every_node_are_answered_in_one_batch(
    settings: Settings, cluster: LocalCluster, tenant_id: UUID
) -> None:
    """A batch's keys fall in many slots on all three nodes: each read gets its own entry."""
    ids = [f"spread-{i}" for i in range(60)]
    async with vault_on(settings, cluster.url) as vault:
        for customer_id in ids:
            await write(vault, tenant_id, customer_id, f"value of {customer_id}")
        cold = await asyncio.gather(*(read(vault, tenant_id, c) for c in ids))
        before = Counters.now()
        warm = await asyncio.gather(*(read(vault, tenant_id, c) for c in ids))
        assert warm == cold
        assert Counters.now().hits - before.hits == len(ids)
        assert all(f"value of {c}".encode() in body for c, body in zip(ids, warm, strict=True))


async def test_a_write_on_one_process_is_read_by_another_through_the_cluster(
    settings: Settings, cluster: LocalCluster, tenant_id: UUID
) -> None:
    async with vault_on(settings, cluster.url) as a, vault_on(settings, cluster.url) as b:
        await write(a, tenant_id, "c2", "v0")
        for i in range(1, 20):
            await read(b, tenant_id, "c2")  # b caches the current version
            await write(a, tenant_id, "c2", f"v{i}")
            assert f'"v{i}"'.encode() in await read(b, tenant_id, "c2")


async def test_a_slow_reader_cannot_put_back_what_a_tombstone_replaced(
    settings: Settings, cluster: LocalCluster, tenant_id: UUID
) -> None:
    async with vault_on(settings, cluster.url) as vault, raw_redis(cluster.url) as raw:
        await write(vault, tenant_id, "c3", "old")
        assert vault.cache is not None
        stale = await read(vault, tenant_id, "c3")
        await write(vault, tenant_id, "c3", "new")
        key = cache_key(vault, tenant_id, "c3")
        _, tombstone_version, _ = split_entry(await raw.get(key))
        epoch = int(await raw.get("profile:epoch") or 0)
        await vault.cache.put(tenant_id, "c3", tombstone_version - 1, epoch, stale)
        assert b'"new"' in await read(vault, tenant_id, "c3")


async def test_a_stopped_node_costs_no_request_and_leaves_nothing_stale(
    settings: Settings, cluster: LocalCluster, tenant_id: UUID
) -> None:
    """Stop one master with entries on it (the cluster goes down: no replica takes its
    slots): reads and writes keep answering from PostgreSQL; the node comes back with its
    old entries (it snapshots on shutdown) and none of them is served over a newer write."""
    ids = [f"outage-{i}" for i in range(30)]
    node = cluster.nodes[1]
    async with vault_on(settings, cluster.url) as writer, vault_on(settings, cluster.url) as other:
        for customer_id in ids:
            await write(writer, tenant_id, customer_id, "before")
            await read(other, tenant_id, customer_id)  # cached on every node
        await asyncio.to_thread(node.stop)
        node_restart = asyncio.to_thread(node.start, keep_data=True)
        try:
            for customer_id in ids:
                await write(writer, tenant_id, customer_id, "during")
                assert b'"during"' in await read(writer, tenant_id, customer_id)
                assert b'"during"' in await read(other, tenant_id, customer_id)
        finally:
            await node_restart
        await asyncio.to_thread(cluster.wait_ok)
        before = Counters.now()
        for _ in range(50):  # until the breaker has closed again and the cache serves
            answers = [await read(other, tenant_id, c) for c in ids]
            assert all(b'"during"' in body for body in answers)
            if Counters.now().hits > before.hits:
                break
            await asyncio.sleep(0.1)
        assert Counters.now().hits > before.hits, "the cache never came back"


async def test_a_node_that_lost_its_scripts_still_takes_tombstones(
    settings: Settings, cluster: LocalCluster, tenant_id: UUID
) -> None:
    """A master restarted (or added) knows no script: the invalidation loads them there
    and sends its tombstones again, without raising the epoch."""
    async with vault_on(settings, cluster.url) as vault, raw_redis(cluster.url) as raw:
        customer_id = f"scripts-{uuid.uuid4().hex[:6]}"
        await write(vault, tenant_id, customer_id, "one")
        await read(vault, tenant_id, customer_id)
        for node in cluster.nodes:
            with node.client() as plain:
                plain.script_flush()
        epoch = int(await raw.get("profile:epoch") or 0)
        await write(vault, tenant_id, customer_id, "two")
        assert int(await raw.get("profile:epoch") or 0) == epoch
        assert b'"two"' in await read(vault, tenant_id, customer_id)


async def test_a_batch_invalidation_over_every_node_tombstones_each_profile(
    settings: Settings, cluster: LocalCluster, tenant_id: UUID
) -> None:
    """Many profiles at once (a sweep window, an import batch): one EVALSHA per slot,
    pipelined per node, after a flush of the scripts too."""
    touched = [Touched(tenant_id, f"many-{i}", 4) for i in range(600)]
    async with vault_on(settings, cluster.url) as vault, raw_redis(cluster.url) as raw:
        assert vault.cache is not None
        keys = [cache_key(vault, t.tenant_id, t.customer_id) for t in touched]
        for node in cluster.nodes:
            with node.client() as plain:
                plain.script_flush()
        before = Counters.now()
        await vault.cache.invalidate(touched)
        assert (before.since().invalidations, before.since().errors) == (600, 0)
        assert await raw.mget_nonatomic(keys) == [b"0:4|"] * 600


# -- the epoch's copies: one round trip to one node -----------------------------------


def command_calls(cluster: LocalCluster) -> list[dict[str, int]]:
    """Per master, how many EVALSHA and MGET it has executed."""
    counts = []
    for node in cluster.nodes:
        with node.client() as plain:
            stats = plain.info("commandstats")
        counts.append(
            {
                name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
                for name in ("evalsha", "mget")
            }
        )
    return counts


def node_of(cluster: LocalCluster, cache: ProfileCache, key: str) -> int:
    """The index in `cluster.nodes` of the master serving `key`."""
    assert isinstance(cache.client, RedisCluster)
    node = cache.client.get_node_from_key(key)
    assert node is not None
    return next(i for i, n in enumerate(cluster.nodes) if n.port == node.port)


def copies_held(cluster: LocalCluster) -> dict[bytes, bytes]:
    """Every copy of the epoch (and the epoch key) held on any master, with its value."""
    held: dict[bytes, bytes] = {}
    for node in cluster.nodes:
        with node.client() as plain:
            for key in plain.scan_iter(match=f"{EPOCH_KEY}*", count=1000):
                held[key] = plain.get(key)
    return held


async def test_a_warm_read_is_one_script_on_the_keys_node_alone(
    vault: Vault, cluster: LocalCluster, tenant_id: UUID
) -> None:
    """Counted by the servers (a cache without the background syncer, so nothing else
    talks to them): the entry and the epoch it is judged by come from one node."""
    async with quiet_cache(vault.pool, cluster.url) as cache:
        store = ProfileStore(vault.pool, cache)
        await store.save_field(tenant_id, "one-trip", "tier", new_field("warm"))
        first = await store.get_profile_json(tenant_id, "one-trip")  # fills the cache
        home = node_of(cluster, cache, cache.key(tenant_id, "one-trip"))
        for _ in range(3):
            before, hits = command_calls(cluster), Counters.now().hits
            assert await store.get_profile_json(tenant_id, "one-trip") == first
            assert Counters.now().hits - hits == 1
            after = command_calls(cluster)
            sent = [{k: a[k] - b[k] for k in a} for a, b in zip(after, before, strict=True)]
            expected = [{"evalsha": 0, "mget": 0} for _ in cluster.nodes]
            expected[home]["evalsha"] = 1
            assert sent == expected


async def test_a_raise_lifts_every_copy_and_a_lost_invalidation_is_never_served(
    settings: Settings, cluster: LocalCluster, tenant_id: UUID
) -> None:
    """Process b cannot tombstone (its breaker is open): it raises the durable epoch and
    lifts every copy on every master before its write returns, so process a, whose
    entries of every node missed the writes, serves none of them."""
    ids = [f"raise-{i}" for i in range(30)]
    async with vault_on(settings, cluster.url) as a, vault_on(settings, cluster.url) as b:
        assert a.cache is not None and b.cache is not None
        for customer_id in ids:
            await write(a, tenant_id, customer_id, "cached")
        await asyncio.gather(*(read(a, tenant_id, c) for c in ids))
        assert len({node_of(cluster, a.cache, cache_key(a, tenant_id, c)) for c in ids}) == 3
        b.cache.breaker.open = True
        b.cache.breaker.open_until = float("inf")
        for customer_id in ids:
            await write(b, tenant_id, customer_id, "missed by the cache")
            assert b'"missed by the cache"' in await read(a, tenant_id, customer_id)
        held = copies_held(cluster)
        assert len(held) == len(epoch_copies()) + 1
        assert len(set(held.values())) == 1
        assert int(next(iter(held.values()))) == await b.cache._durable_epoch()


async def test_a_node_without_its_copy_of_the_epoch_serves_nothing_before_a_lift(
    vault: Vault, cluster: LocalCluster, tenant_id: UUID
) -> None:
    """A master that lost its copies (flushed, evicted, a new empty node): a missing copy
    is never taken for epoch 0; its reads miss and the epoch is lifted first, after which
    the node serves again."""
    ids = [f"nocopy-{i}" for i in range(30)]
    async with quiet_cache(vault.pool, cluster.url) as cache:
        store = ProfileStore(vault.pool, cache)
        for customer_id in ids:
            await store.save_field(tenant_id, customer_id, "tier", new_field("kept"))
        expected = [await store.get_profile_json(tenant_id, c) for c in ids]
        victim = node_of(cluster, cache, cache.key(tenant_id, ids[0]))
        on_victim = [c for c in ids if node_of(cluster, cache, cache.key(tenant_id, c)) == victim]
        with cluster.nodes[victim].client() as plain:
            copies = list(plain.scan_iter(match=f"{EPOCH_KEY}*", count=1000))
            assert copies and sum(plain.delete(key) for key in copies) == len(copies)
        before = Counters.now()
        assert (
            await store.get_profile_json(tenant_id, on_victim[0])
            == expected[ids.index(on_victim[0])]
        )
        assert before.since().hits == 0 and not cache.lift_owed
        with cluster.nodes[victim].client() as plain:
            assert len(list(plain.scan_iter(match=f"{EPOCH_KEY}*", count=1000))) == len(copies)
        before = Counters.now()
        assert [await store.get_profile_json(tenant_id, c) for c in ids] == expected
        assert before.since().hits == len(ids)


async def test_a_stale_map_of_the_slots_is_a_failure_then_heals(
    vault: Vault, cluster: LocalCluster, tenant_id: UUID
) -> None:
    """The map places each node's copy of the epoch on another node (as after slots
    moved): the node refuses a key it does not serve, the read answers from PostgreSQL,
    and the next read (its lift refreshes the map) is a hit again."""
    async with quiet_cache(vault.pool, cluster.url) as cache:
        store = ProfileStore(vault.pool, cache)
        await store.save_field(tenant_id, "stale-map", "tier", new_field("right"))
        expected = await store.get_profile_json(tenant_id, "stale-map")
        assert cache._copies is not None
        copies = cache._copies.current()
        names = list(copies.read_copy)
        copies.read_copy = {
            name: copies.read_copy[names[(i + 1) % len(names)]] for i, name in enumerate(names)
        }
        before = Counters.now()
        assert await store.get_profile_json(tenant_id, "stale-map") == expected
        assert (before.since().hits, before.since().errors) == (0, 1)
        for _ in range(3):  # the read after the failure lifts first: a miss, then hits
            assert await store.get_profile_json(tenant_id, "stale-map") == expected
        assert before.since().hits >= 1 and cache.healthy
