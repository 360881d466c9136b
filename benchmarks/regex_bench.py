"""Tenant patterns on RE2 (issue 11): what a field-definition PUT and a validated field
write cost now, against the `regex`-module path they took before, and how long the event
loop is held while hostile or large patterns are put.

Reported, not judged (the issue asks for a report): every group's p50/p99 and its ratio to
the group's floor. The old path no longer exists in the app, so it is rebuilt from its
parts in the same run: the old definition PUT parsed the body, compiled the pattern with
`regex.compile` on the event loop (a new pattern: a miss of its lru_cache), then stored
it, so "old path" is `regex.compile(pattern)` on the loop followed by the PUT of the same
definition without a pattern. The old write matched with `pattern.fullmatch(text,
timeout=0.05)` on the loop: "old path" is that call followed by the write to a
definition without a pattern.

    python benchmarks/regex_bench.py

Environment: CCV_BENCH_DATABASE_URL (else an embedded PostgreSQL), CCV_BENCH_LOOP,
CCV_BENCH_REGEX_ITERATIONS (default 600), CCV_BENCH_REGEX_WARMUP (60),
CCV_BENCH_REGEX_OUTPUT (default benchmarks/results/regex.json).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from time import perf_counter
from typing import Any

import httpx
import regex

import report
from ccvault.api.app import create_app
from ccvault.config import Settings
from ccvault.domain.models import ValueType
from ccvault.domain.patterns import PATTERNS, compile_pattern
from ccvault.domain.validation import Rules, check_value
from ccvault.runtime import Vault, open_vault
from harness import Stats, log, measure_interleaved, run_async
from scenarios import Group
from schema_bench import time_sync
from servers import Server, fresh_database, postgres_server

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "regex.json"
PACKAGES = ("google-re2", "regex", "fastapi", "pydantic", "psycopg")
AGENT = "bench-agent"
CUSTOMER = "bench-regex"
ORDINARY = r"[A-Z]{2}\d{6}"  # an id: what most validation_regex values look like
LARGE = r"\pL{1,20}"  # Unicode letters, counted: near the 1 MiB budget
VALUE = "DE123456"
LONG_VALUE = "lorem ipsum " * 5000  # 60 KB: matched on a worker thread
LONG_PATTERN = r"[a-z ]+"
HOSTILE = [
    "((((a{100}){100}){100}){100}){100}",
    "a{1000000}",
    r"\p{L}{1,200}",
    r"[\p{L}\p{N}]{1,100}",
    r"(\w+)\1",
]
_serial = itertools.count()


def unique(pattern: str) -> str:
    """The pattern made new (an optional literal no value has), so no cache can answer."""
    return f"{pattern}(?:~{next(_serial)})?"


class Bench:
    """The app in-process (httpx ASGITransport, no sockets) with one tenant."""

    def __init__(self, vault: Vault, api_key: str) -> None:
        self.vault = vault
        transport = httpx.ASGITransport(app=create_app(vault=vault))
        self.http = httpx.AsyncClient(
            transport=transport,
            base_url="http://bench",
            headers={"Authorization": f"Bearer {api_key}"},
        )

    async def put(self, name: str, pattern: str | None) -> None:
        doc: dict[str, Any] = {"display_name": name, "value_type": "string"}
        if pattern is not None:
            doc["validation_regex"] = pattern
        resp = await self.http.put(f"/v1/agents/{AGENT}/field-definitions/{name}", json=doc)
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"PUT {name}: {resp.status_code} {resp.text[:200]}")

    async def refused(self, pattern: str) -> None:
        doc = {"display_name": "h", "value_type": "string", "validation_regex": pattern}
        resp = await self.http.put(f"/v1/agents/{AGENT}/field-definitions/hostile", json=doc)
        if resp.status_code != 422:
            raise RuntimeError(f"hostile {pattern!r} answered {resp.status_code}")

    async def write(self, name: str, value: str) -> None:
        doc = {"value": value, "source": "user_provided", "agent_id": AGENT}
        resp = await self.http.put(f"/v1/profiles/{CUSTOMER}/fields/{name}", json=doc)
        if resp.status_code != 201 or resp.json()["validation_warnings"]:
            raise RuntimeError(f"write {name}: {resp.status_code} {resp.text[:200]}")

    async def old_put(self, name: str, pattern: str) -> None:
        regex.compile(pattern)
        await self.put(name, None)

    async def old_write(self, name: str, compiled: regex.Pattern[str], value: str) -> None:
        if compiled.fullmatch(value, timeout=0.05) is None:
            raise RuntimeError("the old path's pattern did not match")
        await self.write(name, value)


def put_group(bench: Bench) -> Group:
    """Definition PUTs: no pattern (floor), RE2 new and cached, the old path."""

    def new(pattern: str, name: str) -> Callable[[], Awaitable[None]]:
        return lambda: bench.put(name, unique(pattern))

    def old(pattern: str, name: str) -> Callable[[], Awaitable[None]]:
        return lambda: bench.old_put(name, unique(pattern))

    return Group(
        "field-definition PUT, in-process HTTP",
        {
            "PUT, no pattern": partial(bench.put, "plain", None),
            "PUT, RE2, new id pattern": new(ORDINARY, "re2_new"),
            "PUT, RE2, cached id pattern": partial(bench.put, "re2_cached", ORDINARY),
            "PUT, old path, new id pattern": old(ORDINARY, "old_new"),
            "PUT, RE2, new \\pL{1,20}": new(LARGE, "re2_large"),
            "PUT, old path, new \\pL{1,20}": old(LARGE, "old_large"),
        },
        floor="PUT, no pattern",
        notes={
            "PUT, RE2, new id pattern": "compiled on a worker thread",
            "PUT, RE2, cached id pattern": "no thread hop",
            "PUT, old path, new id pattern": "regex.compile on the loop",
            "PUT, RE2, new \\pL{1,20}": "512 KiB budget; GIL held while compiling",
        },
    )


def write_group(bench: Bench) -> Group:
    """Field writes through a definition: no pattern (floor), RE2, the old path."""
    old_short = regex.compile(ORDINARY)
    old_long = regex.compile(LONG_PATTERN)
    return Group(
        "field write validated by a pattern, in-process HTTP",
        {
            "write, no pattern": partial(bench.write, "w_plain", VALUE),
            "write, RE2 id pattern": partial(bench.write, "w_re2", VALUE),
            "write, old path": partial(bench.old_write, "w_plain", old_short, VALUE),
            "write 60 KB, no pattern": partial(bench.write, "w_plain", LONG_VALUE),
            "write 60 KB, RE2 [a-z ]+": partial(bench.write, "w_long", LONG_VALUE),
            "write 60 KB, old path": partial(bench.old_write, "w_plain", old_long, LONG_VALUE),
        },
        floor="write, no pattern",
        notes={"write 60 KB, RE2 [a-z ]+": "matched on a worker thread"},
    )


def sync_rows(iterations: int, warmup: int) -> dict[str, Stats]:
    """The engine alone: compile a new pattern, check a value (no HTTP, no database)."""
    old = regex.compile(ORDINARY)
    re2_rules = Rules(ValueType.string, ORDINARY)
    check_value(VALUE, re2_rules)
    ops: dict[str, Callable[[], object]] = {
        "compile new id pattern, RE2": lambda: compile_pattern(unique(ORDINARY)),
        "compile new id pattern, regex": lambda: regex.compile(unique(ORDINARY)),
        "compile new \\pL{1,20}, RE2": lambda: compile_pattern(unique(LARGE)),
        "compile new \\pL{1,20}, regex": lambda: regex.compile(unique(LARGE)),
        "check_value id, RE2 (cached)": partial(check_value, VALUE, re2_rules),
        "fullmatch id, regex (timeout)": lambda: old.fullmatch(VALUE, timeout=0.05),
    }
    return time_sync(ops, iterations=iterations, warmup=warmup)


async def loop_stall(action: Callable[[], Awaitable[object]]) -> dict[str, float]:
    """The longest the event loop could not run another task while `action` ran."""
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        while not done:
            started = perf_counter()
            await asyncio.sleep(0)
            gaps.append(perf_counter() - started)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    started = perf_counter()
    await action()
    elapsed = perf_counter() - started
    done = True
    await task
    ordered = sorted(gaps)
    return {
        "elapsed_ms": round(elapsed * 1000, 2),
        "max_stall_ms": round(ordered[-1] * 1000, 2),
        "p99_stall_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 3),
    }


async def stalls(bench: Bench) -> dict[str, dict[str, float]]:
    """Loop stalls: 20 PUTs without a pattern (what the machine's own noise looks like), 20
    of new near-budget patterns, 20 hostile PUTs, and one old-path compile of
    `a{1000000}` (the issue's 0.4 s)."""

    async def control() -> None:
        for _ in range(20):
            await bench.put("stall_plain", None)

    async def large() -> None:
        for _ in range(20):
            await bench.put("stall_large", unique(LARGE))

    async def hostile() -> None:
        for i in range(20):
            await bench.refused(unique(HOSTILE[i % len(HOSTILE)]))

    async def old_huge() -> None:
        regex.compile(unique("a{1000000}"))

    return {
        "20 PUTs without a pattern (control)": await loop_stall(control),
        "20 PUTs of a new \\pL{1,20} (RE2)": await loop_stall(large),
        "20 hostile PUTs (RE2, all 422)": await loop_stall(hostile),
        "old path: regex.compile('a{1000000}') once": await loop_stall(old_huge),
    }


async def bench_http(url: str, iterations: int, warmup: int) -> dict[str, Any]:
    """Seed one tenant and its definitions, check the paths answer, then time them."""
    vault = await open_vault(Settings(database_url=url, cache=False))
    try:
        tenant, key = await vault.tenants.create("bench-regex", "warn")
        bench = Bench(vault, key)
        for name, pattern in (("w_plain", None), ("w_re2", ORDINARY), ("w_long", LONG_PATTERN)):
            await bench.put(name, pattern)
        for op in (*put_group(bench).ops.values(), *write_group(bench).ops.values()):
            await op()
        groups = [put_group(bench), write_group(bench)]
        results: dict[str, dict[str, Stats]] = {}
        for group in groups:
            started = time.perf_counter()
            results[group.name] = await measure_interleaved(
                group.ops, iterations=iterations, warmup=warmup
            )
            log(f"timed {group.name!r} in {time.perf_counter() - started:.1f}s")
        stall = await stalls(bench)
        await bench.http.aclose()
    finally:
        await vault.pool.close()
    return {"table": report.rows(groups, results), "stalls": stall, "tenant": str(tenant)}


def render_sync(stats: dict[str, Stats]) -> str:
    """The engine-only rows, RE2 next to regex."""
    lines = [f"{'operation':<34} {'p50 µs':>8} {'p99 µs':>8}", "-" * 52]
    lines += [f"  {name:<32} {s.p50_us:>8.1f} {s.p99_us:>8.1f}" for name, s in stats.items()]
    return "\n".join(lines)


def main() -> int:
    """Run everything on the configured PostgreSQL or an embedded one; write regex.json."""
    iterations = int(os.environ.get("CCV_BENCH_REGEX_ITERATIONS") or 600)
    warmup = int(os.environ.get("CCV_BENCH_REGEX_WARMUP") or 60)
    output = Path(os.environ.get("CCV_BENCH_REGEX_OUTPUT") or DEFAULT_OUTPUT)
    started = time.perf_counter()
    load_start = os.getloadavg()
    engine = sync_rows(iterations * 4, warmup)
    PATTERNS.clear()
    with postgres_server() as server, fresh_database(server.url) as url:
        outcome, loop = run_async(lambda: bench_http(url, iterations, warmup))
        server_kind = _server_kind(server)
    elapsed = time.perf_counter() - started
    print("== tenant patterns (issue 11): the engine alone ==")
    print(render_sync(engine))
    print()
    print("== tenant patterns (issue 11): over HTTP, in-process ==")
    print(report.render_table(outcome["table"]))
    print()
    print("== event-loop stalls ==")
    for name, stall in outcome["stalls"].items():
        took = stall["elapsed_ms"]
        print(f"  {name:<44} max {stall['max_stall_ms']:>7.2f} ms   (took {took} ms)")
    load_end = os.getloadavg()
    print(f"load average (1 min) {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    document = {
        "benchmark": "regex",
        "issue": 11,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "config": {"iterations": iterations, "warmup": warmup, "event_loop": loop},
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in load_end],
            "platform": platform.platform(),
            "python": platform.python_version(),
            **{pkg: metadata.version(pkg) for pkg in PACKAGES},
        },
        "server": server_kind,
        "engine": {name: asdict(s) for name, s in engine.items()},
        "http": outcome["table"],
        "loop_stalls": outcome["stalls"],
    }
    report.write_json(output, document)
    log(f"wrote {output} ({elapsed:.0f}s)")
    return 0


def _server_kind(server: Server) -> dict[str, str]:
    return {"kind": server.kind, "url": server.display_url}


if __name__ == "__main__":
    sys.exit(main())
