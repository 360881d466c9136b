"""The profile cache on a Redis Cluster (three local masters): read-your-writes across two
processes, tombstones, epochs, a node that stops (reads and writes go on from PostgreSQL,
nothing stale afterwards) and a node that comes back without the scripts.

The whole cache suite also runs against a cluster with CCV_TEST_REDIS_CLUSTER=on
(`make test-cluster`); these tests run in every suite."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from cache_support import Counters, cache_key, raw_redis, split_entry, vault_on
from ccvault.config import Settings
from ccvault.runtime import Vault
from ccvault.storage.cache import Touched
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
