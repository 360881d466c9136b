"""`make bench`: core store latencies against raw psycopg floors on a real PostgreSQL (issue #2).

Times a cold profile read, a superseding field write and a depth-10 lineage walk through
the library, each interleaved with the cheapest raw query that could do the same job on
the same server, and reports p50/p99 and the p50 ratio to that floor against the issue's
targets. A missed target is reported, not turned into a failing exit: wall-clock numbers
depend on the machine, so only the ratios are meant to be compared across runs.

Environment: CCV_BENCH_DATABASE_URL (a server to use instead of the embedded one),
CCV_BENCH_ITERATIONS, CCV_BENCH_WARMUP, CCV_BENCH_LOOP (uvloop | asyncio),
CCV_BENCH_OUTPUT (JSON path; default benchmarks/results/core.json).
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import AsyncConnection

import report
import scenarios
from ccvault.storage.db import open_pool
from harness import Stats, measure_interleaved
from servers import Server, fresh_database, postgres_server

T = TypeVar("T")
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "core.json"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


async def server_info(conn: AsyncConnection[Any], server: Server) -> dict[str, Any]:
    """What the numbers depend on: version, durability settings and how we connect."""
    cur = await conn.execute(
        "SELECT current_setting('server_version'), current_setting('synchronous_commit'),"
        " current_setting('fsync'), current_setting('shared_buffers'), current_setting('jit')"
    )
    row = await cur.fetchone()
    assert row is not None
    host = conn.info.host
    return {
        "kind": server.kind,
        "url": server.display_url,
        "transport": "unix socket" if host.startswith("/") else f"tcp {host}:{conn.info.port}",
        "server_version": row[0],
        "synchronous_commit": row[1],
        "fsync": row[2],
        "shared_buffers": row[3],
        "jit": row[4],
    }


async def bench(server: Server, url: str, iterations: int, warmup: int) -> dict[str, Any]:
    """Seed, sanity-check, then time every group; returns the raw results and server info."""
    pool = await open_pool(url)
    try:
        # The floors run on one plain autocommit connection to the same server.
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            info = await server_info(conn, server)
            _log(f"PostgreSQL {info['server_version']} ({server.kind}, {info['transport']})")
            started = time.perf_counter()
            data = await scenarios.seed(pool, conn)
            _log(f"seeded in {time.perf_counter() - started:.1f}s")
            ops = scenarios.Operations(pool, conn, data)
            await scenarios.check(ops)
            groups = ops.groups()
            results: dict[str, dict[str, Stats]] = {}
            for group in groups:
                started = time.perf_counter()
                results[group.name] = await measure_interleaved(
                    group.ops, iterations=iterations, warmup=warmup
                )
                _log(f"timed {group.name!r} in {time.perf_counter() - started:.1f}s")
    finally:
        await pool.close()
    return {"server": info, "groups": groups, "results": results}


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T, str]:
    """Run on uvloop when available (what `ccv serve` runs on), else on asyncio's loop."""
    wanted = os.environ.get("CCV_BENCH_LOOP", "uvloop")
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    used = "asyncio"
    if wanted == "uvloop":
        try:
            import uvloop

            factory, used = uvloop.new_event_loop, "uvloop"
        except ImportError:
            _log("uvloop not installed; using asyncio's default loop")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(make()), used


def main() -> int:
    """Run the benchmark end to end and print and store the report."""
    iterations = _env_int("CCV_BENCH_ITERATIONS", 1000)
    warmup = _env_int("CCV_BENCH_WARMUP", 100)
    output = Path(os.environ.get("CCV_BENCH_OUTPUT") or DEFAULT_OUTPUT)
    started = time.perf_counter()
    with postgres_server() as server, fresh_database(server.url) as url:
        outcome, loop = run_async(lambda: bench(server, url, iterations, warmup))
    elapsed = time.perf_counter() - started

    table = report.rows(outcome["groups"], outcome["results"])
    print(report.render_table(table))
    print()
    print(report.summary(table))
    document = {
        "benchmark": "core",
        "issue": 2,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "config": {"iterations": iterations, "warmup": warmup, "event_loop": loop},
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "psycopg": psycopg.__version__,
            "psycopg_impl": psycopg.pq.__impl__,
            "psycopg_pool": psycopg_pool.__version__,
        },
        "server": outcome["server"],
        "results": table,
    }
    report.write_json(output, document)
    _log(f"wrote {output} ({elapsed:.0f}s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
