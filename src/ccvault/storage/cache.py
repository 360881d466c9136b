"""The profile cache: Redis in front of the one-query profile read.

Read-your-writes across processes rests on three rules (README, "Profile cache"):

1. Every profile has a `version` in PostgreSQL that each mutation increments.
2. After a mutation commits, the writer stores a *tombstone* carrying the new version
   under the profile's key. A reader that loaded the profile from PostgreSQL stores its
   entry only if the key does not hold a newer version (a Lua script compares), so a slow
   reader can never put back what a writer just invalidated.
3. Entries carry the cache *epoch*. A process that could not invalidate (Redis down or
   its breaker open) bumps the epoch when Redis is back, which retires every older entry;
   readers fetch the epoch with the entry in one MGET.

Values are `"{epoch}:{version}|{json}"` (a tombstone has no json), so a hit returns the
JSON bytes as they are, without decoding them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
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

# Store ARGV[2] under KEYS[1] unless the key already holds a newer version of the profile.
# ARGV[1] = version, ARGV[2] = value, ARGV[3] = TTL in ms.
_STORE_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local colon = string.find(current, ':', 1, true)
  local bar = string.find(current, '|', 1, true)
  if colon and bar and tonumber(string.sub(current, colon + 1, bar - 1)) > tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""


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

    def __init__(self, client: aioredis.Redis, ttl_seconds: int, cooldown: float = 2.0) -> None:
        self.client = client
        self.ttl_ms = ttl_seconds * 1000
        self.breaker = CircuitBreaker(cooldown)
        self._store = client.register_script(_STORE_IF_NEWER)
        # Set when an invalidation may have been lost; cleared by bumping the epoch.
        self._dirty = False

    @classmethod
    def from_url(cls, url: str, ttl_seconds: int, *, max_connections: int = 20) -> ProfileCache:
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
        return cls(aioredis.Redis(connection_pool=pool), ttl_seconds)

    async def close(self) -> None:
        """Release the connections."""
        await self.client.aclose()

    @property
    def healthy(self) -> bool:
        """False while the breaker is open (shown by /readyz)."""
        return not self.breaker.outage

    async def _recovered(self) -> None:
        """Back from an outage: retire entries that may have missed an invalidation."""
        if self._dirty:
            await self.client.incr(EPOCH_KEY)
            self._dirty = False
            log.info("cache epoch bumped after lost invalidations")

    async def get(self, tenant_id: UUID, customer_id: str) -> tuple[bytes | None, int]:
        """(JSON bytes or None on a miss, current epoch) — one round trip."""
        if not self.breaker.allow():
            ERRORS.inc()
            return None, -1
        try:
            replies = await self.client.mget(EPOCH_KEY, profile_key(tenant_id, customer_id))
            # Raw bytes: the client is built without decode_responses.
            epoch_raw, value = cast("list[bytes | None]", replies)
            if self.breaker.succeeded():
                await self._recovered()
        except (RedisError, OSError) as exc:
            self.breaker.failed(exc)
            self._dirty = True
            ERRORS.inc()
            return None, -1
        epoch = int(epoch_raw or 0)
        if value is not None:
            head, _, body = value.partition(b"|")
            entry_epoch = int(head.split(b":", 1)[0])
            if body and entry_epoch == epoch:
                HITS.inc()
                return body, epoch
        MISSES.inc()
        return None, epoch

    async def put(
        self,
        tenant_id: UUID,
        customer_id: str,
        version: int,
        epoch: int,
        body: bytes,
        ttl_ms: int | None = None,
    ) -> None:
        """Store a profile read at `version`, unless a newer version is already known."""
        ttl = min(self.ttl_ms, ttl_ms) if ttl_ms is not None else self.ttl_ms
        if epoch < 0 or ttl <= 0 or not self.breaker.allow():
            return
        value = f"{epoch}:{version}|".encode() + body
        try:
            await self._store(
                keys=[profile_key(tenant_id, customer_id)], args=[version, value, ttl]
            )
        except (RedisError, OSError) as exc:
            self.breaker.failed(exc)
            self._dirty = True
            ERRORS.inc()

    async def invalidate(self, touched: Iterable[Touched]) -> None:
        """After a commit: tombstone each touched profile at its new version (pipelined)."""
        items = list(touched)
        if not items:
            return
        if not self.breaker.allow():
            self._dirty = True
            ERRORS.inc()
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for t in items:
                    await self._store(
                        keys=[profile_key(t.tenant_id, t.customer_id)],
                        args=[t.version, f"0:{t.version}|".encode(), self.ttl_ms],
                        client=pipe,
                    )
                await pipe.execute()
            INVALIDATIONS.inc(len(items))
            if self.breaker.succeeded():
                await self._recovered()
        except (RedisError, OSError) as exc:
            self.breaker.failed(exc)
            self._dirty = True
            ERRORS.inc()

    async def ping(self) -> bool:
        """Is Redis answering right now? (Used by /readyz; also closes the breaker.)"""
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            self.breaker.failed(exc)
            return False
        if self.breaker.succeeded():
            await self._recovered()
        return True
