"""The profile cache across Redis failures (issue 11, point 8), against a Valkey each test
owns: hits come back on every process within a second of a restarted Redis answering,
with no read older than the last acknowledged write; pooled sockets from before a restart
fail at most once; one stall does not open the breaker, consecutive failures do, and once
it is open a dead Redis costs requests at most one timeout per cooldown."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import pytest

from cache_support import (
    TEST_COOLDOWN,
    Counters,
    dedicated_valkey,
    quiet_cache,
    raw_redis,
    vault_on,
)
from ccvault.config import Settings
from ccvault.runtime import Vault
from ccvault.storage.cache import (
    EPOCH_KEY,
    FAILURE_THRESHOLD,
    ProfileCache,
    Touched,
)
from ccvault.storage.cache_epoch import DurableEpoch, cache_key_secret
from ccvault.storage.profiles import ProfileStore

from .helpers import new_field

# What the issue asks: hits back on every process within 1 s of Redis answering again.
RECOVERY_BOUND = 1.0
PRODUCTION_COOLDOWN = 2.0  # the breaker's default: recovery must not wait for it
PROFILES = [f"rec-{n}" for n in range(4)]


async def answers_ping(port: int) -> bool:
    """Does a server on `port` answer PING on a fresh connection right now?"""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 0.05)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"PING\r\n")
        return await asyncio.wait_for(reader.readline(), 0.05) == b"+PONG\r\n"
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def first_answer(port: int) -> float:
    """The monotonic time at which the server on `port` first answers PING (polled every
    few milliseconds: the server's own start-up check looks only every 100 ms)."""
    while True:
        if await answers_ping(port):
            return time.monotonic()
        await asyncio.sleep(0.003)


@dataclass
class Process:
    """One API process (a vault of its own) and what each of its cache reads got."""

    vault: Vault
    reads: list[tuple[float, str, bool]] = field(default_factory=list)  # when, kind, open?

    @property
    def cache(self) -> ProfileCache:
        """The process's cache."""
        assert self.vault.cache is not None
        return self.vault.cache

    def watch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Record every read's outcome (passed on unchanged): a hit, a miss, or an error
        (Redis failed or was skipped), and whether the breaker was open after it."""
        cache = self.cache
        get = cache.get_versioned

        async def watched(tenant_id: UUID, customer_id: str) -> tuple[bytes | None, int, int]:
            body, epoch, version = await get(tenant_id, customer_id)
            kind = "hit" if body is not None else "error" if epoch < 0 else "miss"
            self.reads.append((time.monotonic(), kind, cache.breaker.open))
            return body, epoch, version

        monkeypatch.setattr(cache, "get_versioned", watched)

    def first_hit_after(self, instant: float) -> float | None:
        """When this process first read a hit after `instant`."""
        return next((t for t, kind, _ in self.reads if t > instant and kind == "hit"), None)


@dataclass
class Ledger:
    """Acknowledged writes, and every read that showed something older or failed."""

    acked: dict[str, int] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def write(self, processes: list[Process], tenant_id: UUID) -> None:
        """Write an increasing counter to the profiles in turn, through each process in
        turn, recording each value once the write has returned."""
        n = 0
        while not self.stop.is_set():
            n += 1
            customer = PROFILES[n % len(PROFILES)]
            store = processes[n % len(processes)].vault.profiles
            try:
                await store.save_field(tenant_id, customer, "counter", new_field(n))
            except Exception as exc:
                self.failures.append(f"write {n}: {exc!r}")
            else:
                self.acked[customer] = n
            await asyncio.sleep(0.01)

    async def read(self, store: ProfileStore, tenant_id: UUID, customer: str) -> None:
        """Read one profile again and again; each read must show at least the value
        acknowledged before it began."""
        while not self.stop.is_set():
            floor = self.acked.get(customer, 0)
            try:
                profile = json.loads(await store.get_profile_json(tenant_id, customer))
            except Exception as exc:
                self.failures.append(f"read {customer}: {exc!r}")
            else:
                seen = int(profile["fields"]["counter"]["value"])
                if seen < floor:
                    self.stale.append(f"{customer}: acked {floor}, read {seen}")
            await asyncio.sleep(0.005)


@asynccontextmanager
async def running(ledger: Ledger, processes: list[Process], tenant_id: UUID) -> AsyncIterator[None]:
    """One writer and, on every process, a reader per profile, until the block ends."""
    tasks = [asyncio.create_task(ledger.write(processes, tenant_id))]
    for process in processes:
        for customer in PROFILES:
            tasks.append(
                asyncio.create_task(ledger.read(process.vault.profiles, tenant_id, customer))
            )
    try:
        yield
    finally:
        ledger.stop.set()
        await asyncio.gather(*tasks)


async def wait_for(condition: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Poll `condition` every 10 ms; fail with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def test_hits_resume_on_every_process_within_a_second_of_a_restarted_redis_answering(
    settings: Settings, tenant_id: UUID, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes under a read/write load; Redis stops for a second (the load goes on,
    writes raise the durable epoch) and comes back with its old entries (a snapshot).
    Both processes must hit again within a second, never serve a value older than an
    acknowledged write, and not flap (the breaker stays closed once hits are back)."""
    ledger = Ledger()
    async with (
        dedicated_valkey(tmp_path / "valkey", keep_data=True) as server,
        vault_on(settings, server.url, cooldown=PRODUCTION_COOLDOWN) as a,
        vault_on(settings, server.url, cooldown=PRODUCTION_COOLDOWN) as b,
    ):
        processes = [Process(a), Process(b)]
        for customer in PROFILES:
            await a.profiles.save_field(tenant_id, customer, "counter", new_field(0))
        for process in processes:
            process.watch(monkeypatch)
        async with running(ledger, processes, tenant_id):
            await wait_for(lambda: all(p.first_hit_after(0.0) for p in processes), "no hits before")
            await asyncio.sleep(0.3)

            await server.stop()
            down = time.monotonic()
            await asyncio.sleep(1.0)
            restart = asyncio.create_task(server.start())
            back = await first_answer(server.port)
            await restart

            await wait_for(
                lambda: all(p.first_hit_after(back) for p in processes),
                "hits did not come back after Redis restarted",
            )
            resumed = [p.first_hit_after(back) or 0.0 for p in processes]
            await asyncio.sleep(1.5)  # long enough to see the breaker flap (it did every 2 s)

    assert ledger.failures == [], ledger.failures[:5]
    assert ledger.stale == [], f"{len(ledger.stale)} stale reads: {ledger.stale[:5]}"
    for process, hit in zip(processes, resumed, strict=True):
        outage = [kind for t, kind, _ in process.reads if down < t < back]
        assert "error" in outage, "this process did not notice the outage"
        assert hit - back < RECOVERY_BOUND, f"hits resumed {hit - back:.2f} s after Redis"
        reopened = [t - back for t, _, is_open in process.reads if t > hit and is_open]
        assert reopened == [], f"the breaker opened again {reopened[0]:.2f} s after Redis"


async def test_background_probe_closes_the_breaker_without_any_request_and_first_read_hits(
    settings: Settings, tenant_id: UUID, tmp_path: Path
) -> None:
    """Recovery does not wait for a request (nor for the breaker's cooldown): the probe
    lifts the epoch and closes the breaker, so the first read afterwards is a hit."""
    async with (
        dedicated_valkey(tmp_path / "valkey", keep_data=True) as server,
        vault_on(settings, server.url, cooldown=PRODUCTION_COOLDOWN) as vault,
    ):
        cache, store = vault.cache, vault.profiles
        assert cache is not None
        await store.save_field(tenant_id, "c1", "tier", new_field("gold"))
        await store.get_profile_json(tenant_id, "c1")  # cached

        await server.stop()
        for _ in range(FAILURE_THRESHOLD):
            await store.get_profile_json(tenant_id, "c1")
        assert not cache.healthy, "consecutive failures did not open the breaker"
        restart = asyncio.create_task(server.start())
        back = await first_answer(server.port)
        await restart
        await wait_for(lambda: cache.healthy, "the breaker never closed", within=5.0)
        closed = time.monotonic()

        before = Counters.now()
        await store.get_profile_json(tenant_id, "c1")
        assert before.since().hits == 1, "the first read after the breaker closed missed"
    assert closed - back < RECOVERY_BOUND, f"closed {closed - back:.2f} s after Redis answered"


async def test_sockets_pooled_before_a_restart_fail_at_most_once(
    vault: Vault, tenant_id: UUID, tmp_path: Path
) -> None:
    """Every pooled socket dies with the server. After one of them fails, none may be
    used again: calls of growing concurrency (reaching ever deeper into the pool) see a
    single failure, and every call after it succeeds."""
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        quiet_cache(vault.pool, server.url) as cache,
        raw_redis(server.url) as raw,
    ):

        async def put_all(keys: list[str]) -> None:
            await asyncio.gather(*(cache.put(tenant_id, k, 1, 0, b"{}") for k in keys))

        await put_all([f"warm-{n}" for n in range(20)])  # fills the pool: 20 connections
        await server.stop()
        await server.start()

        failed_rounds, stored_after = [], []
        for width in range(1, 21):
            keys = [f"round-{width}-{n}" for n in range(width)]
            before = Counters.now()
            await put_all(keys)
            if before.since().errors:
                failed_rounds.append(width)
            elif failed_rounds:
                stored_after += keys
        assert len(failed_rounds) <= 1, f"rounds that failed: {failed_rounds}"
        stored = await raw.mget([cache.key(tenant_id, k) for k in stored_after])
        assert None not in stored, "a put after the first failure did not reach Redis"


async def stall(port: int, milliseconds: int) -> None:
    """Hold every client's commands for a while (CLIENT PAUSE ALL): a Redis that stalls.
    It cannot be ended early (the server holds CLIENT UNPAUSE too): see `stall_over`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"CLIENT PAUSE %d ALL\r\n" % milliseconds)
        assert await asyncio.wait_for(reader.readline(), 5.0) == b"+OK\r\n"
    finally:
        writer.close()


async def stall_over(port: int) -> None:
    """Wait until the server answers again (a pause ends at the server's next tick)."""
    await first_answer(port)


async def test_one_stall_that_times_out_every_call_in_flight_does_not_open_the_breaker(
    vault: Vault, tenant_id: UUID, tmp_path: Path
) -> None:
    """Redis stalls for three timeouts while a batch of reads and a round of stores are in
    flight: all of them time out and fall back, but that counts as one failure; the
    breaker stays closed and the reads after the stall are hits again."""
    ids = [f"stall-{n}" for n in range(20)]
    for customer in ids:
        await vault.profiles.save_field(tenant_id, customer, "tier", new_field("gold"))
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        quiet_cache(vault.pool, server.url) as cache,
    ):
        store = ProfileStore(vault.pool, cache)

        async def read_all() -> Counters:
            before = Counters.now()
            await asyncio.gather(*(store.get_profile_json(tenant_id, c) for c in ids))
            return before.since()

        await read_all()
        assert (await read_all()).hits == len(ids), "not cached before the stall"
        _, epoch = await cache.get(tenant_id, ids[0])

        await stall(server.port, 600)
        stores = (cache.put(tenant_id, f"other-{n}", 1, epoch, b"{}") for n in range(5))
        gained = await asyncio.gather(read_all(), *stores)
        # Every read and every store timed out (each counts an error in the metrics).
        assert gained[0].errors == len(ids) + 5, "the stall did not time every call out"
        assert cache.breaker.failures == 1, "calls in flight together counted separately"
        assert cache.healthy and cache.breaker.allow()

        await stall_over(server.port)
        assert (await read_all()).hits == len(ids), "hits did not continue after the stall"


async def test_consecutive_failures_open_the_breaker_and_then_cost_one_timeout_per_cooldown(
    vault: Vault, tenant_id: UUID, tmp_path: Path
) -> None:
    """A hung Redis (every call times out): each read in turn is a failure of its own,
    and the FAILURE_THRESHOLD-th opens the breaker. From then on reads skip Redis, except
    one trial per cooldown; when Redis answers again, the next trial closes it."""
    await vault.profiles.save_field(tenant_id, "c1", "tier", new_field("gold"))
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        quiet_cache(vault.pool, server.url) as cache,
    ):
        store = ProfileStore(vault.pool, cache)
        await store.get_profile_json(tenant_id, "c1")  # cached
        await stall(server.port, 2_500)
        for n in range(1, FAILURE_THRESHOLD + 1):
            assert cache.healthy, f"opened after {n - 1} failure(s)"
            await store.get_profile_json(tenant_id, "c1")
            assert cache.breaker.failures == n
        assert not cache.healthy, "consecutive failures did not open the breaker"

        slow, began = 0, time.monotonic()
        while time.monotonic() - began < 5 * TEST_COOLDOWN:
            started = time.monotonic()
            await store.get_profile_json(tenant_id, "c1")
            slow += time.monotonic() - started > 0.1
            await asyncio.sleep(0.005)
        trials = (time.monotonic() - began) / TEST_COOLDOWN + 1
        assert slow <= trials, f"{slow} reads waited on Redis, at most {trials:.0f} allowed"
        assert not cache.healthy

        await stall_over(server.port)
        await asyncio.sleep(TEST_COOLDOWN)
        before = Counters.now()
        await store.get_profile_json(tenant_id, "c1")
        assert cache.healthy, "the trial after Redis answered did not close the breaker"
        assert before.since().errors == 0


async def test_lost_invalidation_during_a_stall_is_never_served_after_the_write_returns(
    vault: Vault, tenant_id: UUID, tmp_path: Path
) -> None:
    """A stall swallows a writer's invalidation while the breaker stays closed, and Redis
    answers again before the writer returns. By then Redis's epoch must be PostgreSQL's
    (the writer lifts it after raising the durable epoch), so no process serves the entry
    the invalidation missed after the write is acknowledged, not even one that saw no
    failure at all."""
    await vault.profiles.save_field(tenant_id, "c1", "tier", new_field("gold"))
    durable = DurableEpoch(vault.pool)
    async with (
        dedicated_valkey(tmp_path / "valkey") as server,
        quiet_cache(vault.pool, server.url) as reader,
        raw_redis(server.url) as raw,
    ):

        async def raise_then_outwait_the_stall() -> int:
            raised = await durable.advance()
            await stall_over(server.port)
            return raised

        writer = ProfileCache.from_url(
            server.url,
            300,
            key_secret=await cache_key_secret(vault.pool),
            durable_epoch=durable.current,
            raise_durable_epoch=raise_then_outwait_the_stall,
        )
        try:
            readers = ProfileStore(vault.pool, reader)
            await readers.get_profile_json(tenant_id, "c1")  # cached
            before = Counters.now()
            await readers.get_profile_json(tenant_id, "c1")
            assert before.since().hits == 1

            await stall(server.port, 600)
            await writer.invalidate([Touched(tenant_id, "c1", 10**9)])
            assert writer.healthy
        finally:
            await writer.close()

        assert int(await raw.get(EPOCH_KEY)) == await durable.current()
        body, _ = await reader.get(tenant_id, "c1")
        assert body is None, "another process served an entry that missed an invalidation"
