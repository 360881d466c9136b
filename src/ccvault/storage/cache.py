"""The profile cache: Redis in front of the one-query profile read.

Read-your-writes across processes rests on three rules (README, "Profile cache"):

1. Every profile has a `version` in PostgreSQL that each mutation increments.
2. After a mutation commits, the writer stores a *tombstone* carrying the new version
   under the profile's key. A reader that loaded the profile from PostgreSQL stores its
   entry only if the key does not hold a newer version (a Lua script compares), so a slow
   reader can never put back what a writer just invalidated.
3. Entries carry the cache *epoch*, and only entries of the current epoch are served
   (readers fetch the epoch with the entry in one MGET). A writer that cannot reach Redis
   to invalidate raises the epoch's durable copy in PostgreSQL; every process lifts
   Redis's epoch to PostgreSQL's at start-up, when it sees Redis come back, and once a
   second. So entries that missed an invalidation are never served once Redis is back and
   anyone has synced — at once for a process that saw the outage or started after it.

Values are `"{epoch}:{version}|{json}"` (a tombstone has no json), so a hit returns the
JSON bytes as they are, without decoding them.

Concurrent reads are coalesced: the reads of one event-loop turn go out as one
`MGET profile:epoch key1 key2 ...`, each read judged on its own as if it had sent it alone.
Under load that saves most of the client's per-command cost, which dominates a warm read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import cast
from uuid import UUID

import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = structlog.get_logger("ccvault.cache")

HITS = Counter("ccv_cache_hits_total", "Profile reads answered from the cache")
MISSES = Counter("ccv_cache_misses_total", "Profile reads that went to PostgreSQL")
ERRORS = Counter("ccv_cache_errors_total", "Cache operations that failed or were skipped")
INVALIDATIONS = Counter("ccv_cache_invalidations_total", "Profile cache entries invalidated")

EPOCH_KEY = "profile:epoch"
SYNC_INTERVAL_SECONDS = 1.0
_FAILURES = (RedisError, OSError)

# Store ARGV[2] under KEYS[1] unless the key already holds a newer version of the profile.
# ARGV[1] = version, ARGV[2] = value, ARGV[3] = 'PX' or 'PXAT', ARGV[4] = its number.
_STORE_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local colon = string.find(current, ':', 1, true)
  local bar = string.find(current, '|', 1, true)
  if colon and bar and tonumber(string.sub(current, colon + 1, bar - 1)) > tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], ARGV[3], ARGV[4])
return 1
"""

# Lift the epoch to at least ARGV[1]; returns the epoch in force.
_LIFT_EPOCH = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if current < wanted then
  redis.call('SET', KEYS[1], ARGV[1])
  return wanted
end
return current
"""

EpochReader = Callable[[], Awaitable[int]]

# Concurrent reads are batched: those registered in one event-loop turn share one MGET
# (one round trip and one command's client overhead instead of one each). Above this many
# distinct keys a batch is full and the next read opens another (bounds a reply's size).
MAX_BATCH = 256
_Reply = tuple[int, bytes | None]  # (epoch, raw entry) as a batch answers one read
_Batch = dict[str, list[asyncio.Future[_Reply]]]  # key -> the reads waiting for it


def _waiters(batch: _Batch) -> Iterator[asyncio.Future[_Reply]]:
    """The reads of `batch` still waiting (a cancelled reader's future is done)."""
    return (w for waiters in batch.values() for w in waiters if not w.done())


def profile_key(tenant_id: UUID, customer_id: str) -> str:
    """The cache key of a profile (contract: `profile:{tenant_id}:{customer_id}`)."""
    return f"profile:{tenant_id}:{customer_id}"


@dataclass(frozen=True)
class Touched:
    """A profile a mutation changed, with the version it committed."""

    tenant_id: UUID
    customer_id: str
    version: int


class CircuitBreaker:
    """Stops waiting on a dead Redis: after a failure, skip it for `cooldown` seconds,
    then let one call try again. Logs once per outage, not per request."""

    def __init__(self, cooldown: float = 2.0) -> None:
        self.cooldown = cooldown
        self.open_until = 0.0
        self.outage = False

    def allow(self) -> bool:
        """May we talk to Redis now?"""
        return time.monotonic() >= self.open_until

    def failed(self, exc: BaseException) -> None:
        """Record a failure and open the breaker."""
        self.open_until = time.monotonic() + self.cooldown
        if not self.outage:
            self.outage = True
            log.warning("cache unavailable, serving from PostgreSQL", error=repr(exc)[:200])

    def succeeded(self) -> bool:
        """Record a success; True when this ends an outage."""
        if self.outage:
            self.outage = False
            log.info("cache available again")
            return True
        return False


class ProfileCache:
    """Versioned profile entries in Redis with a breaker; every error means "miss"."""

    def __init__(
        self,
        client: aioredis.Redis,
        ttl_seconds: int,
        *,
        durable_epoch: EpochReader,
        raise_durable_epoch: EpochReader,
        cooldown: float = 2.0,
    ) -> None:
        self.client = client
        self.ttl_ms = ttl_seconds * 1000
        self.breaker = CircuitBreaker(cooldown)
        self._store = client.register_script(_STORE_IF_NEWER)
        self._lift = client.register_script(_LIFT_EPOCH)
        self._durable_epoch = durable_epoch
        self._raise_durable_epoch = raise_durable_epoch
        self._syncer: asyncio.Task[None] | None = None
        self._batch: _Batch | None = None  # the batch reads of this turn join
        self._flushes: set[asyncio.Task[None]] = set()
        self._closing = False

    @classmethod
    def from_url(
        cls,
        url: str,
        ttl_seconds: int,
        *,
        durable_epoch: EpochReader,
        raise_durable_epoch: EpochReader,
        max_connections: int = 20,
    ) -> ProfileCache:
        """A cache over a bounded blocking pool with short timeouts and no retries: a
        slow Redis must cost a request milliseconds, not seconds."""
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=0.2,
            socket_timeout=0.2,
            socket_connect_timeout=0.2,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(
            aioredis.Redis(connection_pool=pool),
            ttl_seconds,
            durable_epoch=durable_epoch,
            raise_durable_epoch=raise_durable_epoch,
        )

    async def start(self) -> None:
        """Sync the epoch before serving anything, then keep syncing in the background."""
        await self.sync_epoch()
        self._syncer = asyncio.create_task(self._sync_forever(), name="ccv-cache-epoch")

    async def close(self) -> None:
        """Stop syncing and release the connections."""
        self._closing = True
        if self._syncer is not None:
            # On Python 3.11 asyncio.wait_for (used by redis-py's socket timeouts) can
            # swallow a cancellation; the flag ends the loop even then.
            while not self._syncer.done():
                self._syncer.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._syncer), 1.0)
        await self.client.aclose()

    @property
    def healthy(self) -> bool:
        """False while the breaker is open (shown by /readyz)."""
        return not self.breaker.outage

    async def sync_epoch(self) -> bool:
        """Lift Redis's epoch to PostgreSQL's; False when Redis did not answer."""
        durable = await self._durable_epoch()
        try:
            await self._lift(keys=[EPOCH_KEY], args=[durable])
        except _FAILURES as exc:
            self.breaker.failed(exc)
            return False
        self.breaker.succeeded()
        return True

    async def _sync_forever(self) -> None:
        while not self._closing:
            await asyncio.sleep(SYNC_INTERVAL_SECONDS)
            if self._closing:
                return
            try:
                await self.sync_epoch()
            except Exception:  # PostgreSQL down too: the next tick tries again
                log.warning("cache epoch sync failed", exc_info=True)

    def _failed(self, exc: BaseException) -> None:
        self.breaker.failed(exc)
        ERRORS.inc()

    async def get(self, tenant_id: UUID, customer_id: str) -> tuple[bytes | None, int]:
        """(JSON bytes or None on a miss, current epoch) — one round trip, shared with the
        other reads of this event-loop turn (see `_flush`)."""
        body, epoch, _ = await self.get_versioned(tenant_id, customer_id)
        return body, epoch

    async def get_versioned(
        self, tenant_id: UUID, customer_id: str
    ) -> tuple[bytes | None, int, int]:
        """As `get`, with the profile version the entry was read at (0 on a miss): the
        entry carries it, so a hit's ETag costs no query."""
        if not self.breaker.allow():
            ERRORS.inc()
            return None, -1, 0
        try:
            epoch, value = await self._enqueue(profile_key(tenant_id, customer_id))
        except _FAILURES:
            ERRORS.inc()  # per read; the batch opened the breaker once for all of them
            return None, -1, 0
        if value is not None:
            head, _, body = value.partition(b"|")
            entry_epoch, _, version = head.partition(b":")
            if body and int(entry_epoch) == epoch:
                HITS.inc()
                return body, epoch, int(version)
        MISSES.inc()
        return None, epoch, 0

    def _enqueue(self, key: str) -> asyncio.Future[_Reply]:
        """Add a read to the open batch (opening one, and scheduling its flush, if needed)."""
        loop = asyncio.get_running_loop()
        batch = self._batch
        if batch is None or (len(batch) >= MAX_BATCH and key not in batch):
            batch = self._batch = {}
            # A task, not a callback in the reader: a cancelled reader must not take the
            # round trip of the others down with it. Its first step runs after everything
            # already scheduled in this turn, which is what lets those reads join.
            flush = loop.create_task(self._flush(batch))
            self._flushes.add(flush)  # the loop keeps only a weak reference to tasks
            flush.add_done_callback(self._flushes.discard)
        waiter: asyncio.Future[_Reply] = loop.create_future()
        batch.setdefault(key, []).append(waiter)
        return waiter

    async def _flush(self, batch: _Batch) -> None:
        """Answer every read of `batch` from one round trip, whatever happens: with its
        (epoch, raw entry), or with the exception, so that no reader waits forever."""
        if self._batch is batch:
            self._batch = None  # reads from now on open the next batch
        try:
            answers = await self._fetch(list(batch))
        except Exception as exc:
            for waiter in _waiters(batch):
                waiter.set_exception(exc)
            return
        except BaseException:  # the flush itself was cancelled (shutdown): so are its reads
            for waiter in _waiters(batch):
                waiter.cancel()
            raise
        for answer, waiters in zip(answers, batch.values(), strict=True):
            for waiter in waiters:
                if not waiter.done():  # done: its reader was cancelled meanwhile
                    waiter.set_result(answer)

    async def _fetch(self, keys: list[str]) -> list[_Reply]:
        """(epoch, raw entry) for each key: one MGET of the epoch and all the keys."""
        try:
            replies = await self.client.mget(EPOCH_KEY, *keys)
        except _FAILURES as exc:
            self.breaker.failed(exc)  # once per batch; each of its reads counts an error
            raise
        if self.breaker.outage:
            # Back after an outage: entries may have missed invalidations. Sync first and
            # make every read of this batch a miss rather than trust what it fetched.
            await self.sync_epoch()
            return [(-1, None)] * len(keys)
        # Raw bytes: the client is built without decode_responses.
        epoch_raw, *values = cast("list[bytes | None]", replies)
        epoch = int(epoch_raw or 0)
        return [(epoch, value) for value in values]

    async def put(
        self,
        tenant_id: UUID,
        customer_id: str,
        version: int,
        epoch: int,
        body: bytes,
        expires_at_ms: int | None = None,
    ) -> None:
        """Store a profile read at `version`, unless a newer version is already known.
        It lives the TTL, or until `expires_at_ms` (Unix ms) if that comes first."""
        if epoch < 0 or not self.breaker.allow():
            return
        expiry = ("PX", self.ttl_ms)
        if expires_at_ms is not None and expires_at_ms < time.time() * 1000 + self.ttl_ms:
            expiry = ("PXAT", expires_at_ms)
        value = f"{epoch}:{version}|".encode() + body
        try:
            await self._store(
                keys=[profile_key(tenant_id, customer_id)], args=[version, value, *expiry]
            )
        except _FAILURES as exc:
            self._failed(exc)

    async def invalidate(self, touched: Iterable[Touched]) -> None:
        """After a commit: tombstone each touched profile at its new version (pipelined).
        If Redis cannot be told, the durable epoch is raised instead."""
        items = list(touched)
        if not items:
            return
        if self.breaker.allow():
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for t in items:
                        await self._store(
                            keys=[profile_key(t.tenant_id, t.customer_id)],
                            args=[t.version, f"0:{t.version}|".encode(), "PX", self.ttl_ms],
                            client=pipe,
                        )
                    await pipe.execute()
                INVALIDATIONS.inc(len(items))
                if self.breaker.outage:
                    await self.sync_epoch()
                return
            except _FAILURES as exc:
                self._failed(exc)
        ERRORS.inc()
        try:
            await self._raise_durable_epoch()
        except Exception:  # the write has committed; say loudly what could not be done
            log.error("cache invalidation lost and epoch not raised", exc_info=True)
            return
        log.warning("cache invalidation lost; epoch raised", profiles=len(items))

    async def ping(self) -> bool:
        """Is Redis answering right now? (Used by /readyz; syncs after an outage.)"""
        try:
            await self.client.ping()
        except _FAILURES as exc:
            self.breaker.failed(exc)
            return False
        if self.breaker.outage:
            return await self.sync_epoch()
        return True
