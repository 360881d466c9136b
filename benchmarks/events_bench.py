"""The change feed and webhooks against their raw floors (issue 15, "Measure").

- field write with its outbox row: `ProfileStore.save_field` (no cache) on a database
  with the event triggers, against the same call on a second database of the same
  server where the `ccv_events_*` triggers are disabled (goal <= 1.15x). One
  interleaved loop (harness.measure_interleaved), so the machine's load hits both alike.
- a page of 200 events: `EventService.page(...)` and its body (the bytes GET /v1/events
  answers) from a random cursor of a 20,000-event feed, against a raw indexed SELECT of
  the same 200 rows (`WHERE tenant_id AND position > x ORDER BY position LIMIT 200`,
  fetched) on the same pool (goal <= 2x).
- webhook throughput: N events delivered by 2 job workers (one slot each) to a local
  receiver that answers 204, for 1 endpoint and for 4 endpoints; against the rate of raw
  signed POSTs of the same bodies from 2 concurrent loops on one httpx client.

Run: `python benchmarks/events_bench.py` (about a minute). Environment:
CCV_BENCH_DATABASE_URL (postgresql://postgres@127.0.0.1:5432/postgres: databases
ccv_events_<random>_a/_b are created there and dropped at the end), CCV_BENCH_ITERATIONS
(2000), CCV_BENCH_WARMUP (200), CCV_BENCH_WEBHOOK_EVENTS (400),
CCV_BENCH_EVENTS_OUTPUT (benchmarks/results/events.json).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

import report
from ccvault import migrations
from ccvault.config import Settings
from ccvault.domain.caller import Caller
from ccvault.domain.cursors import encode_cursor
from ccvault.domain.events import FEED_LIST
from ccvault.domain.models import Source
from ccvault.domain.webhooks import NewWebhook, signature
from ccvault.domain.writes import NewField
from ccvault.jobs.queue import run_worker
from ccvault.runtime import open_vault
from ccvault.services.events import EventService
from ccvault.storage import events as events_sql
from ccvault.storage.db import open_pool
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.tenants import TenantStore
from ccvault.storage.urls import libpq_url, with_database
from harness import Stats, log, measure_interleaved, run_async

URL = os.environ.get("CCV_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ITERATIONS = int(os.environ.get("CCV_BENCH_ITERATIONS", "2000"))
WARMUP = int(os.environ.get("CCV_BENCH_WARMUP", "200"))
WEBHOOK_EVENTS = int(os.environ.get("CCV_BENCH_WEBHOOK_EVENTS", "400"))
OUTPUT = Path(
    os.environ.get("CCV_BENCH_EVENTS_OUTPUT", Path(__file__).parent / "results" / "events.json")
)
PROFILES = 200
FEED_EVENTS = 20_000
FIELD = NewField.model_validate({"value": "Lisbon", "source": Source.user_provided})
RAW_PAGE = """
SELECT id, type, at, customer_id, data FROM events
 WHERE tenant_id = %s AND position IS NOT NULL AND position > %s
 ORDER BY position LIMIT 200
"""


def _create(url: str) -> None:
    admin = with_database(url, "postgres")
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # our own random name


def _drop(url: str) -> None:
    admin = with_database(url, "postgres")
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _tenant(url: str) -> tuple[uuid.UUID, bytes, str]:
    pool = await open_pool(url, min_size=1, max_size=2)
    try:
        created, key = await TenantStore(pool).create(f"bench-{uuid.uuid4().hex[:8]}", "warn")
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT secret FROM tenants WHERE id = %s", (created.tenant_id,)
            )
            row = await cur.fetchone()
    finally:
        await pool.close()
    return created.tenant_id, bytes(row[0]) if row else b"", key


async def writes(url_with: str, url_without: str) -> dict[str, Stats]:
    """Field write with and without its outbox row."""
    with_events, _, _ = await _tenant(url_with)
    without_events, _, _ = await _tenant(url_without)
    pool_a = await open_pool(url_with, min_size=1, max_size=2)
    pool_b = await open_pool(url_without, min_size=1, max_size=2)
    async with pool_b.connection() as conn:
        for table, trigger in (
            ("profile_fields", "ccv_events_fields_ins"),
            ("profile_fields", "ccv_events_fields_upd"),
            ("customer_profiles", "ccv_events_profiles_ins"),
        ):
            await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")  # constants
    store_a, store_b = ProfileStore(pool_a, None), ProfileStore(pool_b, None)
    rng = random.Random(15)

    async def write_with() -> None:
        await store_a.save_field(with_events, f"c{rng.randrange(PROFILES)}", "city", FIELD)

    async def write_without() -> None:
        await store_b.save_field(without_events, f"c{rng.randrange(PROFILES)}", "city", FIELD)

    try:
        return await measure_interleaved(
            {"write with outbox row": write_with, "write without (floor)": write_without},
            iterations=ITERATIONS,
            warmup=WARMUP,
        )
    finally:
        await pool_a.close()
        await pool_b.close()


async def pages(url: str) -> dict[str, Stats]:
    """A page of 200 events against a raw indexed 200-row select."""
    tenant_id, secret, _ = await _tenant(url)
    pool = await open_pool(url, min_size=1, max_size=2)
    store = ProfileStore(pool, None)
    log(f"writing {FEED_EVENTS} events")
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        async with sem:
            await store.save_field(tenant_id, f"p{i % 500}", f"f{i % 7}", FIELD)

    await asyncio.gather(*(one(i) for i in range(FEED_EVENTS)))
    await events_sql.sequence(pool, wait=True)
    async with pool.connection() as conn:
        await conn.execute("VACUUM ANALYZE events")
        cur = await conn.execute(
            "SELECT min(position), max(position) FROM events WHERE tenant_id = %s", (tenant_id,)
        )
        low, high = await cur.fetchone() or (0, 0)
    service = EventService(pool)
    caller = Caller(tenant_id=tenant_id, name="bench", validation_mode="warn", secret=secret)
    rng = random.Random(15)

    def start() -> int:
        return rng.randrange(low, high - 400)

    async def page() -> None:
        after = encode_cursor(secret, FEED_LIST, [start()])
        answer = await service.page(caller, after=after, limit=200, types=None)
        assert len(answer.body()) > 1000

    async def raw() -> None:
        async with pool.connection() as conn:
            cur = await conn.execute(RAW_PAGE, (tenant_id, start()))
            assert len(await cur.fetchall()) == 200

    try:
        return await measure_interleaved(
            {"page of 200 events": page, "raw 200-row select (floor)": raw},
            iterations=ITERATIONS // 2,
            warmup=WARMUP // 2,
        )
    finally:
        await pool.close()


class _Receiver:
    def __init__(self) -> None:
        self.count = 0
        self.done = asyncio.Event()
        self.wanted = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.count += 1
                if self.count >= self.wanted:
                    self.done.set()
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        writer.close()


async def webhooks(url: str) -> dict[str, Any]:
    """Deliveries per second with 2 workers, and raw signed POSTs per second."""
    settings = Settings(
        database_url=url,
        cache=False,
        webhook_allow_private=True,
        expire_cron="0 0 1 1 *",
        orphan_cron="0 0 1 1 *",
        db_pool_min=1,
        db_pool_max=6,
    )
    vault = await open_vault(settings)
    receiver = _Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hook_url = f"http://127.0.0.1:{port}/hook"
    results: dict[str, Any] = {}
    hook_secret = uuid.uuid4().hex
    try:
        for endpoints in (1, 4):
            tenant_id, secret, _ = await _tenant(url)
            caller = Caller(tenant_id=tenant_id, name="b", validation_mode="warn", secret=secret)
            for _ in range(endpoints):
                await vault.services.webhooks.create(
                    caller,
                    NewWebhook(url=hook_url, types=["field.written"], secret=hook_secret),
                )
            n_events = WEBHOOK_EVENTS // endpoints
            receiver.count, receiver.wanted = 0, n_events * endpoints
            receiver.done.clear()
            for i in range(n_events):
                await vault.profiles.save_field(tenant_id, f"w{i % 50}", "city", FIELD)
            await events_sql.sequence(vault.pool, wait=True)
            started = time.perf_counter()
            workers = [
                asyncio.create_task(
                    run_worker(
                        vault, concurrency=1, install_signal_handlers=False, name=f"bench-{n}"
                    )
                )
                for n in range(2)
            ]
            try:
                await asyncio.wait_for(receiver.done.wait(), timeout=600)
            finally:
                for w in workers:
                    w.cancel()
                for w in workers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await w
            took = time.perf_counter() - started
            rate = receiver.count / took
            results[f"{endpoints} endpoint(s)"] = round(rate, 1)
            log(f"{receiver.count} deliveries to {endpoints} endpoint(s) in {took:.2f} s")
        # The floor: the same number of signed POSTs from 2 loops on one client.
        body = b'{"id":"x","type":"field.written","at":"2026-01-01T00:00:00Z","data":{}}'
        receiver.count, receiver.wanted = 0, WEBHOOK_EVENTS
        receiver.done.clear()
        async with httpx.AsyncClient() as client:
            started = time.perf_counter()

            async def loop(n: int) -> None:
                for _ in range(n):
                    headers = {"CCV-Signature": signature("s", int(time.time()), body)}
                    await client.post(hook_url, content=body, headers=headers)

            await asyncio.gather(loop(WEBHOOK_EVENTS // 2), loop(WEBHOOK_EVENTS // 2))
            took = time.perf_counter() - started
        results["raw signed POSTs, 2 loops (floor)"] = round(receiver.count / took, 1)
    finally:
        server.close()
        await vault.close()
    return results


async def main() -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    url_a = with_database(URL, f"ccv_events_{suffix}_a")
    url_b = with_database(URL, f"ccv_events_{suffix}_b")
    for url in (url_a, url_b):
        _create(url)
        migrations.upgrade(url)
    try:
        log("field writes with and without the outbox")
        write_stats = await writes(url_a, url_b)
        log("pages of the feed")
        page_stats = await pages(url_a)
        log("webhook deliveries")
        hooks = await webhooks(url_a)
    finally:
        _drop(url_a)
        _drop(url_b)
    return {"writes": write_stats, "pages": page_stats, "webhooks_per_second": hooks}


def _show(name: str, stats: dict[str, Stats], floor: str, goal: float) -> dict[str, Any]:
    base = stats[floor]
    out: dict[str, Any] = {}
    for op, s in stats.items():
        ratio = None if op == floor else round(s.p50_us / base.p50_us, 3)
        ratio99 = None if op == floor else round(s.p99_us / base.p99_us, 3)
        print(
            f"{name:8} {op:32} p50 {s.p50_us:9.1f} µs  p99 {s.p99_us:9.1f} µs"
            + (f"  ratio p50 {ratio} (goal <= {goal}) p99 {ratio99}" if ratio else "")
        )
        out[op] = {**s.__dict__, "ratio_p50": ratio, "ratio_p99": ratio99, "goal": goal}
    return out


if __name__ == "__main__":
    result, loop_name = run_async(main)
    document = {
        "loop": loop_name,
        "iterations": ITERATIONS,
        "writes": _show("write", result["writes"], "write without (floor)", 1.15),
        "pages": _show("page", result["pages"], "raw 200-row select (floor)", 2.0),
        "webhooks_per_second": result["webhooks_per_second"],
    }
    for what, rate in result["webhooks_per_second"].items():
        print(f"webhook  {what:32} {rate} deliveries/s")
    report.write_json(OUTPUT, document)
