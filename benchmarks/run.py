"""`make bench`: core store latencies (issue #2), then the profile cache (issue #4).

Core: times a cold profile read, a superseding field write and a depth-10 lineage walk
through the library, each interleaved with the cheapest raw query that could do the same
job on the same server, and reports p50/p99 and the p50 ratio to that floor against the
issue's targets. Cache: see cache_bench.py (warm reads against a raw Redis GET, HTTP
throughput against a bare FastAPI route). A missed target is reported, not turned into a
failing exit: wall-clock numbers depend on the machine, so only the ratios are meant to
be compared across runs.

    python benchmarks/run.py            # every section (one PostgreSQL server for all)
    python benchmarks/run.py core       # or: cache, schema

Environment: CCV_BENCH_DATABASE_URL (a server to use instead of the embedded one),
CCV_BENCH_ITERATIONS, CCV_BENCH_WARMUP, CCV_BENCH_LOOP (uvloop | asyncio),
CCV_BENCH_OUTPUT (core JSON path; default benchmarks/results/core.json); the cache
section's own variables are listed in cache_bench.py and benchmarks/README.md. Schema
(issue #3): see schema_bench.py (validation per value type, missing fields against a raw
20-row SELECT). Sweeps (issue #5; slow, so only with CCV_BENCH_SWEEPS=1, after the other
sections): see sweep_bench.py (`make bench-sweeps` runs it alone).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool

import cache_bench
import report
import scenarios
import schema_bench
import sweep_bench
from ccvault.storage.db import open_pool
from harness import Stats, log, measure_interleaved, run_async
from servers import Server, fresh_database, postgres_server, server_info

SECTIONS = ("core", "cache", "schema")
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "core.json"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


async def bench(server: Server, url: str, iterations: int, warmup: int) -> dict[str, Any]:
    """Seed, sanity-check, then time every group; returns the raw results and server info."""
    pool = await open_pool(url)
    try:
        # The floors run on one plain autocommit connection to the same server.
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            info = await server_info(conn, server)
            log(f"PostgreSQL {info['server_version']} ({server.kind}, {info['transport']})")
            started = time.perf_counter()
            data = await scenarios.seed(pool, conn)
            log(f"seeded in {time.perf_counter() - started:.1f}s")
            ops = scenarios.Operations(pool, conn, data)
            await scenarios.check(ops)
            groups = ops.groups()
            results: dict[str, dict[str, Stats]] = {}
            for group in groups:
                started = time.perf_counter()
                results[group.name] = await measure_interleaved(
                    group.ops, iterations=iterations, warmup=warmup
                )
                log(f"timed {group.name!r} in {time.perf_counter() - started:.1f}s")
    finally:
        await pool.close()
    return {"server": info, "groups": groups, "results": results}


def run_core(server: Server) -> None:
    """The core section: seed, time, print the table and write core.json."""
    iterations = _env_int("CCV_BENCH_ITERATIONS", 1000)
    warmup = _env_int("CCV_BENCH_WARMUP", 100)
    output = Path(os.environ.get("CCV_BENCH_OUTPUT") or DEFAULT_OUTPUT)
    started = time.perf_counter()
    with fresh_database(server.url) as url:
        outcome, loop = run_async(lambda: bench(server, url, iterations, warmup))
    elapsed = time.perf_counter() - started

    table = report.rows(outcome["groups"], outcome["results"])
    print("== core store latencies (issue #2) ==")
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
    log(f"wrote {output} ({elapsed:.0f}s)")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections (default: all) on one PostgreSQL server."""
    wanted = argv if argv is not None else sys.argv[1:]
    unknown = [name for name in wanted if name not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    sections = [name for name in SECTIONS if name in wanted or not wanted]
    started = time.perf_counter()
    with postgres_server() as server:
        if "core" in sections:
            run_core(server)
        if "cache" in sections:
            if "core" in sections:
                print()
            cache_bench.run_section(server)
        if "schema" in sections:
            if sections[0] != "schema":
                print()
            schema_bench.run_section(server)
        if os.environ.get("CCV_BENCH_SWEEPS") == "1":
            print()
            sweep_bench.run_section(server)
    log(f"done in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
