"""Scale benchmark (issue #17): reads and writes at a million profiles vs at ten thousand.

One database (`ccv_scale` on the configured server by default), loaded with the bulk
importer (`services.imports.Importer`, what `ccv import` and `POST /v1/profiles/import`
run), in two stages measured the same way:

1. "10k": 10,000 profiles x 20 fields x 3 versions (three imports of the same customers
   with new values: 200,000 active and 400,000 superseded versions). VACUUM ANALYZE,
   then measure.
2. "1M": 1,000,000 more profiles x 5 fields (an email, a name, a plan with a confidence,
   a number, a city) imported on top; VACUUM ANALYZE, then measure again.

Measured at each stage, interleaved (harness.measure_interleaved), on random profiles of
the 10,000 rich ones (the same profiles and rows at both stages: only the table around
them grows):
- cold read: `ProfileStore(pool).read_profile_json` (no cache): one query;
- warm read: the same through the Redis cache (a fixed sample of 500 profiles, read once
  before timing);
- field write: `services.fields.write_field` (validation, the write function, cache
  invalidation) of a random field of a random rich profile;
- floor: a raw indexed SELECT of a rich profile's 20 active rows on its own connection.
Targets: p99 at 1M <= 1.3 x p99 at 10k, for each of the three.

Also recorded: the load's rate (fields/s, profiles/s), the importer's max RSS after 10%,
50% and 100% of the big load (memory flat), database and table sizes per profile, and
the plan of the profile read at 1M (EXPLAIN ANALYZE, BUFFERS).

Run once: `python benchmarks/scale_bench.py` (about 15-20 minutes, the load dominates).
Environment: CCV_BENCH_SCALE_URL (postgresql://postgres@127.0.0.1:5432/ccv_scale; created
when missing, dropped at the end unless CCV_BENCH_SCALE_KEEP=1), CCV_BENCH_REDIS_URL
(redis://127.0.0.1:6379/0), CCV_BENCH_SCALE_PROFILES (1000000), CCV_BENCH_SCALE_RICH
(10000), CCV_BENCH_ITERATIONS (2000), CCV_BENCH_WARMUP (200), CCV_BENCH_SCALE_OUTPUT
(benchmarks/results/scale.json).
"""

from __future__ import annotations

import json
import os
import random
import resource
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

import report
from ccvault import migrations
from ccvault.domain.models import Source, ValidationMode
from ccvault.domain.writes import NewField
from ccvault.services.fields import write_field
from ccvault.services.imports import Importer
from ccvault.storage.cache import ProfileCache
from ccvault.storage.cache_epoch import DurableEpoch, cache_key_secret
from ccvault.storage.db import Pool, open_pool
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.schema import SchemaStore
from ccvault.storage.tenants import TenantStore
from ccvault.storage.urls import libpq_url, with_database
from harness import Stats, log, measure_interleaved, run_async

URL = os.environ.get("CCV_BENCH_SCALE_URL", "postgresql://postgres@127.0.0.1:5432/ccv_scale")
REDIS_URL = os.environ.get("CCV_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PROFILES = int(os.environ.get("CCV_BENCH_SCALE_PROFILES", "1000000"))
RICH = int(os.environ.get("CCV_BENCH_SCALE_RICH", "10000"))
ITERATIONS = int(os.environ.get("CCV_BENCH_ITERATIONS", "2000"))
WARMUP = int(os.environ.get("CCV_BENCH_WARMUP", "200"))
KEEP = os.environ.get("CCV_BENCH_SCALE_KEEP") == "1"
REUSE = os.environ.get("CCV_BENCH_SCALE_REUSE") == "1"
OUTPUT = Path(os.environ.get("CCV_BENCH_SCALE_OUTPUT", "benchmarks/results/scale.json"))
GOAL = 1.3
RICH_FIELDS = 20
VERSIONS = 3
WARM_SAMPLE = 500

FLOOR_SELECT = """
SELECT * FROM profile_fields
 WHERE tenant_id = %(tenant_id)s AND profile_id = %(profile_id)s
   AND status = 'active' AND deleted_at IS NULL
"""


def rich_line(i: int, version: int) -> dict[str, Any]:
    """A rich profile: 20 fields, each value new in every version."""
    fields: dict[str, Any] = {
        f"attr_{n:02d}": f"value {n} of rich {i}, version {version}" for n in range(RICH_FIELDS)
    }
    fields["attr_00"] = {"value": f"rich{i}.v{version}@Example.com", "value_type": "email"}
    fields["attr_01"] = {"value": i + version, "value_type": "integer", "confidence": 0.8}
    return {"customer_id": f"rich-{i:06d}", "fields": fields}


def bulk_line(i: int) -> dict[str, Any]:
    """A profile of the million: 5 fields."""
    return {
        "customer_id": f"cust-{i:07d}",
        "fields": {
            "email": {"value": f"customer{i}@Example.com", "value_type": "email"},
            "name": f"Customer {i}",
            "plan": {"value": ("free", "pro", "team")[i % 3], "confidence": 0.9},
            "seats": i % 250,
            "city": ("Lisbon", "Porto", "Braga", "Faro")[i % 4],
        },
    }


async def ndjson(count: int, make: Any, progress: list[int] | None = None) -> AsyncIterator[bytes]:
    """Lines generated as they are read, in chunks of about 1 MiB."""
    chunk: list[bytes] = []
    size = 0
    for i in range(count):
        chunk.append(json.dumps(make(i), separators=(",", ":")).encode() + b"\n")
        size += len(chunk[-1])
        if size >= 1 << 20:
            yield b"".join(chunk)
            chunk, size = [], 0
            if progress is not None:
                progress.append(i + 1)
    if chunk:
        yield b"".join(chunk)


def max_rss_mb() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Ops:
    """The measured operations on the rich profiles."""

    def __init__(
        self,
        tenant_id: UUID,
        pool: Pool,
        cache: ProfileCache,
        raw: psycopg.AsyncConnection[Any],
        ids: dict[str, UUID],
    ) -> None:
        self.tenant_id = tenant_id
        self.cold = ProfileStore(pool)
        self.warm = ProfileStore(pool, cache)
        self.schema = SchemaStore(pool)
        self.raw = raw
        self.ids = ids
        self.customers = sorted(ids)
        self.sample = random.Random(7).sample(self.customers, min(WARM_SAMPLE, len(self.customers)))
        self.random = random.Random(11)
        self.writes = 0

    async def warm_up_cache(self) -> None:
        for customer in self.sample:
            await self.warm.read_profile_json(self.tenant_id, customer)

    async def cold_read(self) -> object:
        return await self.cold.read_profile_json(self.tenant_id, self.random.choice(self.customers))

    async def warm_read(self) -> object:
        return await self.warm.read_profile_json(self.tenant_id, self.random.choice(self.sample))

    async def field_write(self) -> object:
        self.writes += 1
        customer = self.random.choice(self.customers)
        name = f"attr_{self.random.randrange(2, RICH_FIELDS):02d}"
        new = NewField(value=f"written {self.writes}", source=Source.user_provided)
        return await write_field(
            self.warm, self.schema, ValidationMode.warn, self.tenant_id, customer, name, new
        )

    async def floor(self) -> object:
        customer = self.random.choice(self.customers)
        cur = await self.raw.execute(
            FLOOR_SELECT, {"tenant_id": self.tenant_id, "profile_id": self.ids[customer]}
        )
        return await cur.fetchall()

    async def measure(self) -> dict[str, Stats]:
        await self.warm_up_cache()
        return await measure_interleaved(
            {
                "cold read": self.cold_read,
                "warm read": self.warm_read,
                "field write": self.field_write,
                "floor: raw 20-row select": self.floor,
            },
            iterations=ITERATIONS,
            warmup=WARMUP,
        )


async def vacuum_analyze(url: str) -> float:
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("VACUUM (ANALYZE)")
    return round(time.perf_counter() - started, 1)


async def autovacuum_state(url: str) -> dict[str, Any]:
    """What autovacuum had done to the big tables when the load ended."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            """SELECT relname, n_live_tup, n_dead_tup, n_ins_since_vacuum,
                      last_autovacuum IS NOT NULL, last_autoanalyze IS NOT NULL,
                      autovacuum_count, autoanalyze_count
                 FROM pg_stat_user_tables
                WHERE relname IN ('profile_fields', 'customer_profiles')"""
        )
        keys = (
            "live",
            "dead",
            "inserted_since_vacuum",
            "autovacuumed",
            "autoanalyzed",
            "autovacuum_count",
            "autoanalyze_count",
        )
        return {row[0]: dict(zip(keys, row[1:], strict=True)) for row in await cur.fetchall()}


async def sizes(url: str, tenant_id: UUID) -> dict[str, Any]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM customer_profiles WHERE tenant_id = %s", (tenant_id,)
        )
        row = await cur.fetchone()
        assert row is not None
        profiles = int(row[0])
        cur = await conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'active') FROM profile_fields"
        )
        counts = await cur.fetchone()
        assert counts is not None
        cur = await conn.execute("SELECT pg_database_size(current_database())")
        db = await cur.fetchone()
        assert db is not None
        cur = await conn.execute(
            """SELECT c.relname, pg_relation_size(c.oid), pg_indexes_size(c.oid),
                      pg_total_relation_size(c.oid)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind = 'r'
                ORDER BY pg_total_relation_size(c.oid) DESC LIMIT 6"""
        )
        tables = {
            name: {"heap_mb": _mb(heap), "indexes_mb": _mb(idx), "total_mb": _mb(total)}
            for name, heap, idx, total in await cur.fetchall()
        }
        cur = await conn.execute(
            """SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes
                WHERE relname = 'profile_fields' ORDER BY 2 DESC"""
        )
        indexes = {name: _mb(size) for name, size in await cur.fetchall()}
    return {
        "profiles": profiles,
        "field_versions": int(counts[0]),
        "active_fields": int(counts[1]),
        "database_mb": _mb(int(db[0])),
        "bytes_per_profile": round(int(db[0]) / max(profiles, 1)),
        "tables": tables,
        "profile_fields_indexes_mb": indexes,
    }


def _mb(size: int) -> float:
    return round(size / 1024 / 1024, 1)


async def explain_read(url: str, tenant_id: UUID, customer: str) -> list[str]:
    from ccvault.storage import profiles as profiles_module

    query = profiles_module.Q["get_profile"]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SET TIME ZONE 'UTC'")
        cur = await conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + query,
            {"tenant_id": tenant_id, "customer_id": customer, "include_history": False},
        )
        return [row[0] for row in await cur.fetchall()]


async def load(
    importer: Importer, tenant_id: UUID, count: int, make: Any, label: str
) -> dict[str, Any]:
    """Import `count` generated lines; the rate and the importer's RSS as it goes."""
    progress: list[int] = []
    rss: dict[str, float] = {}
    marks = {count // 10: "10%", count // 2: "50%"}

    async def watched() -> AsyncIterator[bytes]:
        async for chunk in ndjson(count, make, progress):
            yield chunk
            done = progress[-1] if progress else 0
            for mark, name in list(marks.items()):
                if done >= mark:
                    rss[name] = max_rss_mb()
                    log(f"{label}: {done} lines read, max RSS {rss[name]} MB")
                    del marks[mark]

    started = time.perf_counter()
    summary = await importer.run(tenant_id, ValidationMode.warn, watched())
    seconds = time.perf_counter() - started
    rss["100%"] = max_rss_mb()
    assert summary.failed == 0, summary.errors[:3]
    log(f"{label}: {summary.profiles} lines, {summary.fields} fields in {seconds:.0f} s")
    return {
        "lines": summary.profiles,
        "fields": summary.fields,
        "seconds": round(seconds, 1),
        "fields_per_s": round(summary.fields / seconds),
        "profiles_per_s": round(summary.profiles / seconds),
        "max_rss_mb": rss,
    }


def database_name(url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(libpq_url(url))["dbname"])


def ensure_database(url: str) -> bool:
    """Create the database when missing; True when this run created it."""
    name = database_name(url)
    admin = with_database(url, "postgres")
    with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return found is None


def drop_database(url: str) -> None:
    name = database_name(url)
    admin = with_database(url, "postgres")
    with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


async def run() -> dict[str, Any]:
    url = libpq_url(URL)
    pool = await open_pool(url, min_size=2, max_size=10)
    epoch = DurableEpoch(pool)
    cache = ProfileCache.from_url(
        REDIS_URL,
        1800,
        key_secret=await cache_key_secret(pool),
        durable_epoch=epoch.current,
        raise_durable_epoch=epoch.advance,
    )
    await cache.start()
    raw = await psycopg.AsyncConnection.connect(url, autocommit=True)
    result: dict[str, Any] = {"profiles_target": PROFILES, "rich": RICH}
    try:
        tenant, _ = await TenantStore(pool).create(f"scale-{uuid.uuid4().hex[:8]}", "warn")
        tenant_id = tenant.tenant_id
        importer = Importer(pool, cache)
        loads = {}
        for version in range(VERSIONS):
            loads[f"rich v{version}"] = await load(
                importer, tenant_id, RICH, lambda i, v=version: rich_line(i, v), f"rich v{version}"
            )
        result["vacuum_10k_s"] = await vacuum_analyze(url)
        cur = await raw.execute(
            "SELECT customer_id, id FROM customer_profiles WHERE tenant_id = %s", (tenant_id,)
        )
        ids = {c: pid for c, pid in await cur.fetchall()}
        ops = Ops(tenant_id, pool, cache, raw, ids)
        result["sizes_10k"] = await sizes(url, tenant_id)
        log("measuring at 10k")
        at_small = await ops.measure()
        loads["1M"] = await load(importer, tenant_id, PROFILES, bulk_line, "bulk")
        result["loads"] = loads
        result["autovacuum_after_load"] = await autovacuum_state(url)
        log("measuring at 1M as loaded (autovacuum only)")
        as_loaded = await ops.measure()
        result["results_as_loaded"] = compare(at_small, as_loaded)
        result["vacuum_1m_s"] = await vacuum_analyze(url)
        result["sizes_1m"] = await sizes(url, tenant_id)
        log("measuring at 1M")
        at_large = await ops.measure()
        result["plan_1m"] = await explain_read(url, tenant_id, ops.customers[0])
        result["results"] = compare(at_small, at_large)
        result["passed"] = all(r["passed"] for r in result["results"] if "passed" in r)
    finally:
        await raw.close()
        await cache.close()
        await pool.close()
    return result


class Side:
    """One database's pool, cache client and raw connection, with the Ops on its rich
    profiles."""

    def __init__(self, url: str) -> None:
        self.url = libpq_url(url)

    async def open(self, tenant_id: UUID) -> Ops:
        self.pool = await open_pool(self.url, min_size=2, max_size=10)
        epoch = DurableEpoch(self.pool)
        self.cache = ProfileCache.from_url(
            REDIS_URL,
            1800,
            key_secret=await cache_key_secret(self.pool),
            durable_epoch=epoch.current,
            raise_durable_epoch=epoch.advance,
        )
        await self.cache.start()
        self.raw = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        cur = await self.raw.execute(
            "SELECT customer_id, id FROM customer_profiles"
            " WHERE tenant_id = %s AND customer_id LIKE 'rich-%%'",
            (tenant_id,),
        )
        ids = {c: pid for c, pid in await cur.fetchall()}
        return Ops(tenant_id, self.pool, self.cache, self.raw, ids)

    async def close(self) -> None:
        await self.raw.close()
        await self.cache.close()
        await self.pool.close()


async def scale_tenant(url: str) -> UUID | None:
    """The tenant a previous run loaded into `url` (kept with CCV_BENCH_SCALE_KEEP=1)."""
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT t.id FROM tenants t WHERE t.name LIKE 'scale-%%'"
            " ORDER BY t.created_at DESC LIMIT 1"
        )
        row = await cur.fetchone()
    return None if row is None else row[0]


async def load_rich(url: str) -> UUID:
    """A database holding only the rich profiles (the 10k stage), vacuumed and analyzed."""
    pool = await open_pool(libpq_url(url), min_size=1, max_size=4)
    try:
        tenant, _ = await TenantStore(pool).create(f"scale-{uuid.uuid4().hex[:8]}", "warn")
        importer = Importer(pool)
        for version in range(VERSIONS):
            await load(
                importer,
                tenant.tenant_id,
                RICH,
                lambda i, v=version: rich_line(i, v),
                f"twin rich v{version}",
            )
    finally:
        await pool.close()
    await vacuum_analyze(libpq_url(url))
    return tenant.tenant_id


async def interleaved(small_url: str, small_tenant: UUID, large_tenant: UUID) -> dict[str, Any]:
    """The 10k twin and the 1M database measured in one loop, one call of each operation
    on each per iteration: whatever else the machine does hits both alike."""
    small, large = Side(small_url), Side(URL)
    at_small = await small.open(small_tenant)
    at_large = await large.open(large_tenant)
    try:
        await at_small.warm_up_cache()
        await at_large.warm_up_cache()
        ops = {}
        for label, side in (("10k", at_small), ("1M", at_large)):
            ops[f"cold read @{label}"] = side.cold_read
            ops[f"warm read @{label}"] = side.warm_read
            ops[f"field write @{label}"] = side.field_write
            ops[f"floor: raw 20-row select @{label}"] = side.floor
        stats = await measure_interleaved(ops, iterations=ITERATIONS, warmup=WARMUP)
    finally:
        await small.close()
        await large.close()
    names = ["cold read", "warm read", "field write", "floor: raw 20-row select"]
    rows = compare({n: stats[f"{n} @10k"] for n in names}, {n: stats[f"{n} @1M"] for n in names})
    return {"results": rows, "passed": all(r["passed"] for r in rows if "passed" in r)}


def compare(small: dict[str, Stats], large: dict[str, Stats]) -> list[dict[str, Any]]:
    rows = []
    for name in small:
        a, b = small[name], large[name]
        row: dict[str, Any] = {
            "operation": name,
            "p50_us_10k": a.p50_us,
            "p99_us_10k": a.p99_us,
            "p50_us_1m": b.p50_us,
            "p99_us_1m": b.p99_us,
            "p50_ratio": round(b.p50_us / a.p50_us, 2),
            "p99_ratio": round(b.p99_us / a.p99_us, 2),
        }
        if not name.startswith("floor"):
            row["goal"] = GOAL
            row["passed"] = row["p99_ratio"] <= GOAL
        rows.append(row)
    return rows


def main() -> None:
    created = ensure_database(URL)
    twin_url = with_database(URL, database_name(URL) + "_10k")
    ensure_database(twin_url)
    try:
        migrations.upgrade(URL)
        migrations.upgrade(twin_url)
        loaded, _ = run_async(lambda: scale_tenant(URL))
        if REUSE and loaded is not None:
            # The 1M database a previous run kept: measured again, not loaded again.
            result = json.loads(OUTPUT.read_text()) if OUTPUT.exists() else {}
            large_tenant = loaded
        else:
            result, loop = run_async(run)
            result["loop"] = loop
            found, _ = run_async(lambda: scale_tenant(URL))
            assert found is not None
            large_tenant = found
        log("loading the 10k twin database")
        small_tenant, _ = run_async(lambda: load_rich(twin_url))
        log("measuring 10k and 1M interleaved")
        result["interleaved"], _ = run_async(
            lambda: interleaved(twin_url, small_tenant, large_tenant)
        )
        result["passed"] = result["interleaved"]["passed"]
    finally:
        drop_database(twin_url)
        if not KEEP:
            drop_database(URL)
    result["database_created_by_run"] = created
    report.write_json(OUTPUT, result)
    print("interleaved (10k twin and 1M in one loop):")
    _print_rows(result["interleaved"]["results"])
    if "results" in result:
        print("sequential (10k, then 1M after the load):")
        _print_rows(result["results"])
    big = result["loads"]["1M"]
    print(
        f"load: {big['fields_per_s']} fields/s, {big['profiles_per_s']} profiles/s, "
        f"max RSS {big['max_rss_mb']} MB; database {result['sizes_1m']['database_mb']} MB, "
        f"{result['sizes_1m']['bytes_per_profile']} bytes per profile"
    )


def _print_rows(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'operation':<26} {'p50 10k':>9} {'p99 10k':>9} {'p50 1M':>9} {'p99 1M':>9} "
        f"{'p50 x':>6} {'p99 x':>6}"
    )
    for row in rows:
        mark = "" if "passed" not in row else (" ok" if row["passed"] else " MISS")
        print(
            f"{row['operation']:<26} {row['p50_us_10k']:>9} {row['p99_us_10k']:>9} "
            f"{row['p50_us_1m']:>9} {row['p99_us_1m']:>9} {row['p50_ratio']:>6} "
            f"{row['p99_ratio']:>6}{mark}"
        )


if __name__ == "__main__":
    main()
