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

Failures (README, "Profile cache", "Fallback"): any Redis error makes its reads PostgreSQL
reads, retires every pooled socket (a restarted Redis leaves each one dead, and each would
fail a command of its own), and obliges this process to lift the epoch before it trusts
an entry again. Only `failure_threshold` consecutive failures open the breaker (one stall
that times out every call in flight counts once); while it is open, requests skip Redis
and a background probe PINGs it every PROBE_INTERVAL_SECONDS, closing the breaker as soon
as Redis answers and lifting the epoch at once.

Redis Cluster (README, "Redis Cluster"): the same keys, entries and tombstones over
redis-py's cluster client, plus copies of the epoch spread over the slots (EPOCH_COPIES,
one per group of 16 slots), every one of them lifted by every epoch lift. A batch of reads
is one script per master it touches, the masters in parallel: the script reads the copy
of the epoch that lives on that master with the keys, so a lone warm read is one round
trip to one node, as on a single server. Each master is, for the entries it holds, a
single server with its own epoch: an entry is judged against the copy on its own node,
read in the same script (atomically). A write's lift answers only after every copy is
lifted, so a read that begins after the write returned sees the new epoch on whichever
node it lands; a read in flight during the lift saw the old copy and the old entry
together, which is the state before the write. A copy a node lacks (new, flushed,
evicted) is never taken for epoch 0: the read misses and the epoch is lifted first. A
map of the slots gone stale makes a script name a key that is not on its node, which the
node refuses: a failure like any other (reads go to PostgreSQL, the lift that must follow
refreshes the map). Tombstones are one EVALSHA per slot, pipelined per node. A failure
of any node is a failure of the whole batch or invalidation: the reads go to PostgreSQL,
a lost tombstone raises the durable epoch, as on a single server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import itertools
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit
from uuid import UUID

import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import (
    NoScriptError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
)

log = structlog.get_logger("ccvault.cache")

HITS = Counter("ccv_cache_hits_total", "Profile reads answered from the cache")
MISSES = Counter("ccv_cache_misses_total", "Profile reads that went to PostgreSQL")
ERRORS = Counter("ccv_cache_errors_total", "Cache operations that failed or were skipped")
INVALIDATIONS = Counter("ccv_cache_invalidations_total", "Profile cache entries invalidated")

EPOCH_KEY = "profile:epoch"
SYNC_INTERVAL_SECONDS = 1.0
# How often the background task asks a Redis the breaker has given up on (and the syncer's
# tick): hits come back at most this long (plus one epoch lift) after Redis answers again.
PROBE_INTERVAL_SECONDS = 0.2
# Consecutive failures that open the breaker: one timeout under CPU load must not, a dead
# Redis must cost requests no more than a few timeouts before it does.
FAILURE_THRESHOLD = 3
# RedisClusterException is not a RedisError: no node answering the cluster's topology
# query, a slot no node serves.
_FAILURES = (RedisError, OSError, RedisClusterException)
Client = aioredis.Redis | RedisCluster

# The version a key holds (0 for none): only the head `{epoch}:{version}|` of the value is
# read (two integers fit in 64 bytes), not a profile of kilobytes copied into Lua.
_HELD_VERSION = """
local function held_version(key)
  local head = redis.call('GETRANGE', key, 0, 63)
  local colon = string.find(head, ':', 1, true)
  local bar = string.find(head, '|', 1, true)
  if colon and bar then
    return tonumber(string.sub(head, colon + 1, bar - 1)) or 0
  end
  return 0
end
"""

# Store ARGV[2] under KEYS[1] unless the key already holds a newer version of the profile.
# ARGV[1] = version, ARGV[2] = value, ARGV[3] = 'PX' or 'PXAT', ARGV[4] = its number.
_STORE_IF_NEWER = (
    _HELD_VERSION
    + """
if held_version(KEYS[1]) > tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], ARGV[3], ARGV[4])
return 1
"""
)

# Tombstone many profiles in one call: under each KEYS[i], `0:{version}|` with the version
# ARGV[i + 1], unless the key already holds a newer version; ARGV[1] = TTL in ms. One
# EVALSHA is one round trip however many profiles a mutation or a sweep window touched.
_TOMBSTONE = (
    _HELD_VERSION
    + """
local ttl = ARGV[1]
for i, key in ipairs(KEYS) do
  local version = ARGV[i + 1]
  if held_version(key) <= tonumber(version) then
    redis.call('SET', key, '0:' .. version .. '|', 'PX', ttl)
  end
end
return #KEYS
"""
)
# Profiles per tombstone call: Redis runs a script alone, so a call over a large sweep
# window is cut in pieces (about 1 ms each) that other clients' commands can run between;
# the pieces still go out together, as one pipeline.
TOMBSTONES_PER_CALL = 500

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

# Redis Cluster: slots per copy of the epoch. A master serving a range of at least this
# many contiguous slots (any real layout) holds a copy, which its reads use; one holding
# none (a few scattered slots) has its keys read with the epoch key, from two nodes.
EPOCH_COPY_SLOTS = 16

# The reads of one batch that live on one master, with that master's copy of the epoch,
# in one script (so atomically: an entry and the epoch it is judged by come from one
# instant). The keys are arguments, not declared keys: a script's declared keys must
# share one slot, and a batch's spread over a node's slots; `allow-cross-slot-keys` lets
# it read any key of its own node, and the node refuses a key it does not serve.
# ARGV[1] = the node's copy of the epoch, ARGV[2..] = profile keys; a missing key reads
# as false, which Redis answers as nil. Redis 7 or Valkey 7.2 and later.
_READ_ON_NODE = """#!lua flags=no-writes,allow-cross-slot-keys
local out = {}
for i = 1, #ARGV do
  out[i] = redis.call('GET', ARGV[i])
end
return out
"""

# Lift every copy of the epoch a master holds (ARGV[2..]) to at least ARGV[1], creating
# those it lacks (a read takes a missing copy for "unknown", not 0); returns {lowest,
# highest} epoch they hold afterwards.
_LIFT_ON_NODE = """#!lua flags=allow-cross-slot-keys
local wanted = tonumber(ARGV[1])
local low, high = nil, nil
for i = 2, #ARGV do
  local held = redis.call('GET', ARGV[i])
  local current = tonumber(held or '0')
  if not held or current < wanted then
    redis.call('SET', ARGV[i], ARGV[1])
    current = wanted
  end
  if low == nil or current < low then low = current end
  if high == nil or current > high then high = current end
end
return {low or wanted, high or wanted}
"""


@functools.cache
def epoch_copies() -> tuple[tuple[str, int], ...]:
    """The copies of the epoch on a Redis Cluster: (key, slot), one key
    `profile:epoch:{n}` in each group of EPOCH_COPY_SLOTS slots, n the first number whose
    hash tag lands there (the same list in every process, whatever the topology)."""
    groups = REDIS_CLUSTER_HASH_SLOTS // EPOCH_COPY_SLOTS
    found: dict[int, tuple[str, int]] = {}
    for n in itertools.count():
        key = f"{EPOCH_KEY}:{{{n}}}"
        slot = key_slot(key.encode())
        found.setdefault(slot // EPOCH_COPY_SLOTS, (key, slot))
        if len(found) == groups:
            return tuple(found[g] for g in range(groups))
    raise AssertionError("unreachable")


class EpochCopies:
    """Where the copies of the epoch live according to a cluster client's map of the slots:
    per master, the copy its reads use and every copy its lifts set. Rebuilt when the
    client replaces its map, and after any failure (redis-py patches its map in place on
    a MOVED)."""

    def __init__(self, client: RedisCluster) -> None:
        self.client = client
        self._map: object = None  # the slots map the fields below were built from
        self.read_copy: dict[str, str] = {}  # node name -> its copy reads use
        self.on_node: dict[str, tuple[ClusterNode, list[str]]] = {}  # lifts: node -> keys

    def forget(self) -> None:
        """Rebuild before the next use."""
        self._map = None

    def current(self) -> EpochCopies:
        """Self, rebuilt first if the client's map changed since."""
        slots = self.client.nodes_manager.slots_cache
        if slots is not self._map:
            on_node: dict[str, tuple[ClusterNode, list[str]]] = {}
            for key, slot in ((EPOCH_KEY, key_slot(EPOCH_KEY.encode())), *epoch_copies()):
                owners = slots.get(slot)
                if owners:  # uncovered: the lift fails on it (see `lift_groups`)
                    on_node.setdefault(owners[0].name, (owners[0], []))[1].append(key)
            self.on_node = on_node
            # Any of them will do (every lift sets all): the epoch key itself on its node.
            self.read_copy = {name: keys[0] for name, (_, keys) in on_node.items()}
            self._map = slots
        return self

    def complete(self) -> bool:
        """Does the map place every copy? (A lift that leaves one out has not lifted it.)"""
        return sum(len(keys) for _, keys in self.on_node.values()) == len(epoch_copies()) + 1


EpochReader = Callable[[], Awaitable[int]]
EpochRaiser = Callable[[int], Awaitable[object]]

# Profile keys a cache remembers (about 200 bytes each) before it forgets them all.
KEY_MEMO = 10_000

# Concurrent reads are batched: those registered in one event-loop turn share one MGET
# (one round trip and one command's client overhead instead of one each). Above this many
# distinct keys a batch is full and the next read opens another (bounds a reply's size).
MAX_BATCH = 256
_Reply = tuple[int, bytes | None]  # (epoch, raw entry) as a batch answers one read
_Batch = dict[str, list[asyncio.Future[_Reply]]]  # key -> the reads waiting for it


def _waiters(batch: _Batch) -> Iterator[asyncio.Future[_Reply]]:
    """The reads of `batch` still waiting (a cancelled reader's future is done)."""
    return (w for waiters in batch.values() for w in waiters if not w.done())


def cluster_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A Redis URL naming one node or several (`redis://h1:6379,h2:6379/0`, a cluster's
    startup nodes): the URL of the first node alone, and every node's (host, port)."""
    scheme, _, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    nodes = []
    for part in hosts.split(","):
        parsed = urlsplit(f"{scheme}://{part}")
        nodes.append((parsed.hostname or "localhost", parsed.port or 6379))
    first = f"{scheme}://{credentials}{at}{hosts.split(',')[0]}{slash}{path}"
    return first, nodes


def profile_key(tenant_id: UUID, customer_id: str, secret: bytes) -> str:
    """The cache key of a profile: `profile:{tenant_id}:{hex HMAC-SHA256}` of the tenant and
    customer id under the deployment's key secret (migration 0018), so no Redis key names a
    customer, not even the tombstone an erasure leaves for the TTL. The tenant is in the
    HMAC too: one customer id in two tenants does not share a digest."""
    digest = hmac.digest(secret, f"{tenant_id}:{customer_id}".encode(), "sha256")
    return f"profile:{tenant_id}:{digest.hex()}"


@dataclass(frozen=True)
class Touched:
    """A profile a mutation changed, with the version it committed."""

    tenant_id: UUID
    customer_id: str
    version: int


class CircuitBreaker:
    """Stops waiting on a dead Redis without giving up on a merely slow one.

    It opens after `threshold` consecutive failures. A call already in flight when a
    failure was counted does not count again when it fails too: one stall (Redis busy, or
    this process starved of CPU) times out every call in flight at once, and that is one
    failure, not a dead server. Any success closes it. While open, requests skip Redis,
    except one trial call per `cooldown` (the background probe, when running, keeps
    pushing that back and closes the breaker itself). Logs once per outage, not per
    request."""

    def __init__(self, cooldown: float = 2.0, threshold: int = FAILURE_THRESHOLD) -> None:
        self.cooldown = cooldown
        self.threshold = threshold
        self.failures = 0  # consecutive, counted as described above
        self.open = False
        self.open_until = 0.0  # while open: no trial call before this instant
        self._counted_at = -1.0  # when the last failure was counted (monotonic)

    def allow(self) -> bool:
        """May this call talk to Redis now? While open, True once per cooldown: the trial."""
        if not self.open:
            return True
        now = time.monotonic()
        if now < self.open_until:
            return False
        self.open_until = now + self.cooldown  # the other callers wait for the trial's verdict
        return True

    def failed(self, exc: BaseException, started: float) -> None:
        """Record a failure of a call begun at `started` (monotonic); may open the breaker."""
        now = time.monotonic()
        if self.open:
            self.open_until = now + self.cooldown
        if started < self._counted_at:
            return  # in flight when the last failure was counted: the same stall
        self.failures += 1
        self._counted_at = now
        if self.open:
            return
        if self.failures >= self.threshold:
            self.open = True
            self.open_until = now + self.cooldown
            log.warning("cache unavailable, serving from PostgreSQL", error=describe(exc))
        else:
            log.info("cache call failed", error=describe(exc), consecutive=self.failures)

    def succeeded(self) -> None:
        """Record a success: Redis answers, so the failure streak (and any outage) ends."""
        self.failures = 0
        if self.open:
            self.open = False
            self.open_until = 0.0
            log.info("cache available again")


def describe(exc: BaseException) -> str:
    """A failure for the log (redis-py's own repr names only the error's category)."""
    return f"{type(exc).__name__}: {exc}"[:200]


class RenewablePool(aioredis.BlockingConnectionPool):
    """A blocking pool whose connections can all be retired at once: after `renew()`, each
    one, idle or in use at the time, is closed and opened again before its next command.

    A Redis that restarted leaves every pooled socket dead, and without this each would
    fail one command of its own, spread over seconds. Retiring is a flag, not a round of
    closes: nothing can hand out a connection between the decision and the close."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._current: weakref.WeakSet[AbstractConnection] = weakref.WeakSet()

    def renew(self) -> None:
        """Retire every connection made so far."""
        self._current = weakref.WeakSet()

    async def ensure_connection(self, connection: AbstractConnection) -> None:
        """Reopen a retired connection, then let redis-py check it as usual."""
        if connection not in self._current:
            await connection.disconnect(nowait=True)
            self._current.add(connection)
        await super().ensure_connection(connection)


class ProfileCache:
    """Versioned profile entries in Redis with a breaker; every error means "miss"."""

    def __init__(
        self,
        client: Client,
        ttl_seconds: int,
        *,
        key_secret: bytes,
        durable_epoch: EpochReader,
        raise_durable_epoch: EpochReader,
        catch_up_durable_epoch: EpochRaiser | None = None,
        cooldown: float = 2.0,
        failure_threshold: int = FAILURE_THRESHOLD,
    ) -> None:
        self.client = client
        self.ttl_ms = ttl_seconds * 1000
        self._key_secret = key_secret
        self._keys: dict[tuple[UUID, str], str] = {}
        self.breaker = CircuitBreaker(cooldown, failure_threshold)
        self._store = client.register_script(_STORE_IF_NEWER)
        self._tombstones = client.register_script(_TOMBSTONE)
        self._lift = client.register_script(_LIFT_EPOCH)
        self._read_on_node = client.register_script(_READ_ON_NODE)
        self._lift_on_node = client.register_script(_LIFT_ON_NODE)
        # A cluster's copies of the epoch (None on a single server).
        self._copies = EpochCopies(client) if isinstance(client, RedisCluster) else None
        # A cluster node refused a key as not its own: refresh the slot map at the next lift.
        self._map_stale = False
        self._durable_epoch = durable_epoch
        self._raise_durable_epoch = raise_durable_epoch
        self._catch_up_durable_epoch = catch_up_durable_epoch
        self._syncer: asyncio.Task[None] | None = None
        self._batch: _Batch | None = None  # the batch reads of this turn join
        self._flushes: set[asyncio.Task[None]] = set()
        self._closing = False
        # Events after which entries may have missed invalidations (a Redis failure, a
        # raise of the durable epoch), and how many of them the last epoch lift covers:
        # while they differ, no entry is trusted before the epoch is lifted again.
        self._suspect = 0
        self._lifted = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        ttl_seconds: int,
        *,
        key_secret: bytes,
        durable_epoch: EpochReader,
        raise_durable_epoch: EpochReader,
        catch_up_durable_epoch: EpochRaiser | None = None,
        max_connections: int = 20,
        cluster: bool = False,
    ) -> ProfileCache:
        """A cache over a bounded blocking pool with short timeouts and no retries: a
        slow Redis must cost a request milliseconds, not seconds. With `cluster` (or a
        URL naming several nodes) the client is a Redis Cluster client with the same
        timeouts. Its per-node pools do not wait for a free connection (a full pool fails
        the call, which the breaker would count), so they get five times the room."""
        client: Client
        first, nodes = cluster_nodes(url)
        if cluster or len(nodes) > 1:
            client = RedisCluster.from_url(
                first,
                startup_nodes=[ClusterNode(host, port) for host, port in nodes],
                max_connections=5 * max_connections,
                socket_timeout=0.2,
                socket_connect_timeout=0.2,
                retry=Retry(NoBackoff(), 0),
            )
        else:
            pool = RenewablePool.from_url(
                url,
                max_connections=max_connections,
                timeout=0.2,
                socket_timeout=0.2,
                socket_connect_timeout=0.2,
                retry=Retry(NoBackoff(), 0),
            )
            client = aioredis.Redis(connection_pool=pool)
        return cls(
            client,
            ttl_seconds,
            key_secret=key_secret,
            durable_epoch=durable_epoch,
            raise_durable_epoch=raise_durable_epoch,
            catch_up_durable_epoch=catch_up_durable_epoch,
        )

    def key(self, tenant_id: UUID, customer_id: str) -> str:
        """The Redis key of a profile (see `profile_key`), remembered: an HMAC costs a
        warm read a few microseconds, a dictionary lookup a fraction of one."""
        memo = self._keys
        found = memo.get((tenant_id, customer_id))
        if found is None:
            if len(memo) >= KEY_MEMO:
                memo.clear()  # bounded; the hot profiles come back at once
            found = profile_key(tenant_id, customer_id, self._key_secret)
            memo[(tenant_id, customer_id)] = found
        return found

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
        return not self.breaker.open

    @property
    def lift_owed(self) -> bool:
        """True while entries must not be trusted before the epoch is lifted again."""
        return self._lifted != self._suspect

    def _failed(self, exc: BaseException, started: float) -> None:
        """A Redis call begun at `started` failed: the sockets made before it are retired
        and entries are suspect until the next lift; the breaker counts it."""
        self._suspect += 1
        # (A cluster client has a pool per node and drops a failed node's connections.)
        pool = getattr(self.client, "connection_pool", None)
        if isinstance(pool, RenewablePool):
            pool.renew()
        if self._copies is not None:
            # The slots may have moved: redis-py learns that from a MOVED (and patches its
            # map in place) or not at all (a script names keys no node redirects).
            self._copies.forget()
            self._map_stale = True
        self.breaker.failed(exc, started)

    async def sync_epoch(self) -> bool:
        """Lift Redis's epoch to PostgreSQL's; False when Redis did not answer."""
        return await self._lift_epoch() is not None

    async def _lift_epoch(self) -> int | None:
        """Lift Redis's epoch to PostgreSQL's; the epoch in force, None when Redis failed.
        (A PostgreSQL error propagates: without the durable epoch nothing can be lifted.)"""
        covers = self._suspect  # taken first: an event during the lift is not covered by it
        durable = await self._durable_epoch()
        started = time.monotonic()
        try:
            if isinstance(self.client, RedisCluster):
                epoch = await self._lift_cluster(self.client, durable)
            else:
                epoch = await self._lift(keys=[EPOCH_KEY], args=[durable])
        except _FAILURES as exc:
            self._failed(exc, started)
            return None
        self.breaker.succeeded()
        self._lifted = max(self._lifted, covers)
        if int(epoch) > durable and self._catch_up_durable_epoch is not None:
            # Redis is ahead (it served another vault database, or PostgreSQL was
            # restored): bring the durable copy up to it, so that the next raise, by a
            # process without a cache such as `ccv import`, lands above every entry.
            await self._catch_up_durable_epoch(int(epoch))
        return int(epoch)

    async def _lift_cluster(self, client: RedisCluster, wanted: int) -> int:
        """Lift the epoch key and every copy to at least `wanted`: one script per master,
        the masters in parallel; the highest epoch any of them holds. When some are ahead
        (another vault's raise, a restored PostgreSQL), all are brought up to it, so that
        every node judges entries by the same epoch."""
        if not client.nodes_manager.slots_cache:
            await client.initialize()  # first command of this client
        elif self._map_stale:
            await client.nodes_manager.initialize()
        self._map_stale = False
        copies = self._copies
        assert copies is not None  # a cluster client always has them
        groups = copies.current()
        if not groups.complete():
            raise SlotNotCoveredError("a copy of the cache epoch lives in a slot no node serves")
        low, high = await self._lift_copies(client, groups, wanted)
        if low < high:
            low, high = await self._lift_copies(client, groups, high)
        return high

    async def _lift_copies(
        self, client: RedisCluster, groups: EpochCopies, wanted: int
    ) -> tuple[int, int]:
        """One lift of every copy; (lowest, highest) epoch they hold afterwards."""
        replies = await asyncio.gather(
            *(
                self._on_node(client, node, self._lift_on_node, [wanted, *keys])
                for node, keys in groups.on_node.values()
            )
        )
        return min(int(r[0]) for r in replies), max(int(r[1]) for r in replies)

    async def _on_node(
        self, client: RedisCluster, node: ClusterNode, script: AsyncScript, args: list[Any]
    ) -> Any:
        """One of the per-node scripts on `node`, by hash; a node that does not know it
        (new, restarted, failed over) answers NOSCRIPT, and it is loaded on every master
        and sent again (the scripts are idempotent)."""
        for attempt in range(2):
            try:
                return await client.execute_command(
                    "EVALSHA", script.sha, 0, *args, target_nodes=node
                )
            except NoScriptError:
                if attempt:
                    raise
            await client.script_load(script.script)
        raise AssertionError("unreachable")

    async def _answers(self) -> bool:
        """One PING: does Redis answer right now? (Counted as any other call.)"""
        started = time.monotonic()
        try:
            await self.client.ping()
        except _FAILURES as exc:
            self._failed(exc, started)
            return False
        self.breaker.succeeded()
        return True

    async def _sync_forever(self) -> None:
        """Lift the epoch once a second; as soon as a lift is owed, at the next tick; while
        the breaker is open, PING every tick (no PostgreSQL query per probe) and lift when
        Redis answers, which closes the breaker."""
        last_lift = time.monotonic()
        while not self._closing:
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)
            if self._closing:
                return
            due = time.monotonic() - last_lift >= SYNC_INTERVAL_SECONDS
            if not (due or self.lift_owed or self.breaker.open):
                continue
            try:
                if self.breaker.open and not await self._answers():
                    continue
                if await self.sync_epoch():
                    last_lift = time.monotonic()
            except Exception:  # PostgreSQL down too: try again, at the once-a-second pace
                log.warning("cache epoch sync failed", exc_info=True)
                await asyncio.sleep(SYNC_INTERVAL_SECONDS)

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
        # A read joins a batch already open in this turn even while the breaker is open
        # (it is the breaker's trial, or a batch begun before it opened): that costs no
        # round trip of its own.
        if self._batch is None and not self.breaker.allow():
            ERRORS.inc()
            return None, -1, 0
        try:
            epoch, value = await self._enqueue(self.key(tenant_id, customer_id))
        except _FAILURES:
            ERRORS.inc()  # per read; the batch counted one failure for all of them
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
        """(epoch, raw entry) for each key: one MGET of the epoch and all the keys (on a
        cluster, one script per master: `_fetch_cluster`)."""
        started = time.monotonic()
        try:
            if isinstance(self.client, RedisCluster):
                answers = await self._fetch_cluster(self.client, keys)
            else:
                # Raw bytes: the client is built without decode_responses.
                epoch_raw, *values = cast(
                    "list[bytes | None]", await self.client.mget(EPOCH_KEY, *keys)
                )
                epoch = int(epoch_raw or 0)
                answers = [(epoch, value) for value in values]
        except _FAILURES as exc:
            self._failed(exc, started)  # once per batch; each of its reads counts an error
            raise
        self.breaker.succeeded()
        if self.lift_owed:
            # Redis failed us since the last lift: it may be back from an outage with
            # entries that missed invalidations. Lift the epoch first and judge what we
            # fetched by the epoch now in force (the lift follows the MGET, so an entry of
            # that epoch was stored after every lost invalidation it could have missed).
            lifted = await self._lift_epoch()
            if lifted is None:
                return [(-1, None)] * len(keys)
            return [(lifted, value) for _, value in answers]
        return answers

    async def _fetch_cluster(self, client: RedisCluster, keys: list[str]) -> list[_Reply]:
        """(epoch, raw entry) for each key on a cluster: one script per master the keys
        live on, reading them with that master's copy of the epoch, the masters in
        parallel. Keys of a master the map gives no copy go with the epoch key in
        `mget_nonatomic` (one MGET per slot, grouped per node). A master without its copy
        (new, flushed, evicted) makes its reads misses and obliges a lift first."""
        if not client.nodes_manager.slots_cache:
            await client.initialize()  # first command of this client
        copies = self._copies
        assert copies is not None  # a cluster client always has them
        read_copy = copies.current().read_copy
        groups: dict[str, tuple[ClusterNode, list[int]]] = {}
        elsewhere: list[int] = []
        for i, key in enumerate(keys):
            node = client.get_node_from_key(key)
            if node is None or node.name not in read_copy:
                elsewhere.append(i)
            else:
                groups.setdefault(node.name, (node, []))[1].append(i)
        parts: list[tuple[list[int], bool]] = []  # (the reads a call answers, by a copy?)
        calls: list[Awaitable[Any]] = []
        for name, (node, at) in groups.items():
            parts.append((at, True))
            args = [read_copy[name], *(keys[i] for i in at)]
            calls.append(self._on_node(client, node, self._read_on_node, args))
        if elsewhere:
            parts.append((elsewhere, False))
            calls.append(client.mget_nonatomic(EPOCH_KEY, *(keys[i] for i in elsewhere)))
        replies = [await calls[0]] if len(calls) == 1 else await asyncio.gather(*calls)
        answers: list[_Reply] = [(-1, None)] * len(keys)
        copy_missing = False
        for (at, by_copy), reply in zip(parts, replies, strict=True):
            epoch_raw, *values = cast("list[bytes | None]", reply)
            if epoch_raw is None and by_copy:
                copy_missing = True
                continue  # never judged by epoch 0: misses (epoch -1), and a lift is owed
            epoch = int(epoch_raw or 0)
            for i, value in zip(at, values, strict=True):
                answers[i] = (epoch, value)
        if copy_missing:
            self._suspect += 1
        return answers

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
        started = time.monotonic()
        try:
            await self._store(
                keys=[self.key(tenant_id, customer_id)], args=[version, value, *expiry]
            )
        except _FAILURES as exc:
            self._failed(exc, started)
            ERRORS.inc()
            return
        self.breaker.succeeded()

    async def invalidate(self, touched: Iterable[Touched]) -> None:
        """After a commit: tombstone each touched profile at its new version (one round trip).
        If Redis cannot be told, the durable epoch is raised instead."""
        items = list(touched)
        if not items:
            return
        if self.breaker.allow():
            started = time.monotonic()
            try:
                await self._tombstone(items)
            except _FAILURES as exc:
                self._failed(exc, started)
            else:
                self.breaker.succeeded()
                INVALIDATIONS.inc(len(items))
                if self.lift_owed:
                    await self._lift_after_commit()
                return
        ERRORS.inc()
        try:
            await self._raise_durable_epoch()
        except Exception:  # the write has committed; say loudly what could not be done
            log.error("cache invalidation lost and epoch not raised", exc_info=True)
            return
        # A lift that read the durable epoch before this raise does not cover it.
        self._suspect += 1
        # And lift Redis's epoch now, whatever the breaker says: Redis may answer (one
        # slow call; or back from an outage before this process's probe noticed) while
        # another process already serves from it, and this write must not be
        # acknowledged while that process could serve an entry it invalidated. If Redis
        # does not answer now, it is down (a process that reads from it meanwhile fails,
        # and lifts after this raise before it trusts an entry again) or out of this
        # process's reach only (the partition gap of the README).
        await self._lift_after_commit()
        log.warning("cache invalidation lost; epoch raised", profiles=len(items))

    async def _tombstone(self, items: list[Touched]) -> None:
        """Store a tombstone at its new version under each profile's key: one EVALSHA of
        the tombstone script (a pipeline of them past TOMBSTONES_PER_CALL profiles), one
        round trip. redis-py's own script calls in a pipeline would send SCRIPT EXISTS
        first, a second round trip: the scripts go by hash, and a server that does not
        know it (restarted, flushed) answers NOSCRIPT, after which it is loaded and the
        tombstones sent again (one stored twice changes nothing)."""
        if isinstance(self.client, RedisCluster):
            await self._tombstone_cluster(self.client, items)
            return
        calls = [
            self._tombstone_args(items[i : i + TOMBSTONES_PER_CALL])
            for i in range(0, len(items), TOMBSTONES_PER_CALL)
        ]
        for attempt in range(2):
            try:
                if len(calls) == 1:
                    await self.client.evalsha(self._tombstones.sha, *calls[0])
                else:
                    async with self.client.pipeline(transaction=False) as pipe:
                        for args in calls:
                            pipe.evalsha(self._tombstones.sha, *args)
                        await pipe.execute()
                return
            except NoScriptError:
                if attempt:
                    raise
            await self.client.script_load(_TOMBSTONE)

    def _tombstone_args(self, items: list[Touched]) -> list[Any]:
        """EVALSHA's arguments after the hash for one call of the tombstone script."""
        keys = [self.key(t.tenant_id, t.customer_id) for t in items]
        return [len(keys), *keys, self.ttl_ms, *(t.version for t in items)]

    async def _tombstone_cluster(self, client: RedisCluster, items: list[Touched]) -> None:
        """As `_tombstone`, on a cluster: one EVALSHA per slot (a script may only name keys
        of one slot), pipelined per node, the nodes in parallel.

        redis-py refuses scripts in a cluster pipeline (it cannot load them there), so the
        script goes by hash; a node that does not know it (new, or restarted) answers
        NOSCRIPT, and the script is loaded on every master and the whole pipeline sent
        again (a tombstone is stored only if newer: sending one twice changes nothing)."""
        slots: dict[int, list[Touched]] = {}
        for t in items:
            slots.setdefault(client.keyslot(self.key(t.tenant_id, t.customer_id)), []).append(t)
        for attempt in range(2):
            pipe = client.pipeline(transaction=False)
            for group in slots.values():
                for i in range(0, len(group), TOMBSTONES_PER_CALL):
                    args = self._tombstone_args(group[i : i + TOMBSTONES_PER_CALL])
                    pipe.execute_command("EVALSHA", self._tombstones.sha, *args)
            try:
                await pipe.execute()
                return
            except NoScriptError:
                if attempt:
                    raise
            await client.script_load(_TOMBSTONE)

    async def _lift_after_commit(self) -> None:
        """Lift the epoch for a write that has committed: a failure is logged, not raised
        (the write stands; the lift is owed and the next one makes up for it)."""
        try:
            await self.sync_epoch()
        except Exception:  # PostgreSQL failed between the write and this read of it
            log.warning("cache epoch lift after a write failed", exc_info=True)

    async def ping(self) -> bool:
        """Is Redis answering right now? (Used by /readyz; lifts the epoch if one is owed,
        and says no until that is done.)"""
        if not await self._answers():
            return False
        if self.lift_owed:
            try:
                return await self.sync_epoch()
            except Exception:  # PostgreSQL: the entries cannot be trusted yet either
                log.warning("cache epoch lift for /readyz failed", exc_info=True)
                return False
        return True
