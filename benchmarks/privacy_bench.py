"""Privacy benchmarks (issue 13): what the cache's HMAC keys cost a warm read, and what the
history retention sweep costs next to a raw DELETE of the same rows.

1. Warm profile read (`ProfileStore.get_profile_json`, a cache hit) with today's keys
   (`profile:{tenant}:{HMAC-SHA256 hex}`) vs the keys before them
   (`profile:{tenant}:{customer_id}`, a cache subclass), interleaved; the raw floor is one
   redis-py `MGET` of the epoch and the entry. Also the key computation alone.
2. Retention over ~100,000 versions (1,000 profiles x 10 names x 10 versions: 90,000
   superseded and older than the tenant's 30 days, 10,000 current), through
   `apply_history_retention` (windows of 2,000, no pause, no cache), vs one raw
   `DELETE ... WHERE superseded_at IS NOT NULL AND collected_at < cutoff` of the same rows
   on an identical dataset in another tenant. Rounds alternate; each builds its dataset
   with set-based SQL first (not timed).

A fresh migrated database on CCV_BENCH_DATABASE_URL and CCV_BENCH_REDIS_URL (or embedded
servers). Run: `python benchmarks/privacy_bench.py` (CCV_BENCH_PRIVACY_ITERATIONS, default
5000; CCV_BENCH_RETENTION_ROUNDS, default 3). Other work on the machine moves the
absolute numbers: read the ratios.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from time import perf_counter_ns
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis

from ccvault.config import Settings
from ccvault.domain.admin import RetentionChange
from ccvault.domain.writes import NewField
from ccvault.jobs.sweeps import apply_history_retention
from ccvault.runtime import open_vault
from ccvault.storage.cache import ProfileCache, profile_key
from ccvault.storage.cache_epoch import DurableEpoch, cache_key_secret
from ccvault.storage.db import Pool
from ccvault.storage.profiles import ProfileStore
from harness import log, measure_interleaved, run_async
from servers import fresh_database, postgres_server, redis_server

ITERATIONS = int(os.environ.get("CCV_BENCH_PRIVACY_ITERATIONS", "5000"))
ROUNDS = int(os.environ.get("CCV_BENCH_RETENTION_ROUNDS", "3"))
OUTPUT = Path(__file__).resolve().parent / "results" / "privacy.json"
READ = "customer-4711@example-shop"
PROFILES, NAMES, VERSIONS = 1000, 10, 10


class PlainKeyCache(ProfileCache):
    """The cache as it was before migration 0018: keys name the customer."""

    def key(self, tenant_id: UUID, customer_id: str) -> str:
        return f"profile:{tenant_id}:{customer_id}"


async def warm_reads(url: str, redis_url: str) -> dict[str, Any]:
    vault = await open_vault(Settings(database_url=url, redis_url=redis_url))
    assert vault.cache is not None
    secret = await cache_key_secret(vault.pool)
    epoch = DurableEpoch(vault.pool)
    plain = PlainKeyCache.from_url(
        redis_url,
        1800,
        key_secret=secret,
        durable_epoch=epoch.current,
        raise_durable_epoch=epoch.advance,
    )
    await plain.start()
    raw = aioredis.Redis.from_url(redis_url)
    try:
        tenant = (await vault.services.tenants.create("bench-keys")).tenant_id
        for n in range(20):
            value = f"value {n} of a realistic length for a profile field"
            await vault.profiles.save_field(
                tenant, READ, f"field_{n:02d}", NewField(value=value, source="user_provided")
            )
        plain_store = ProfileStore(vault.pool, plain)
        body = await vault.profiles.get_profile_json(tenant, READ)
        assert await plain_store.get_profile_json(tenant, READ) == body
        hmac_key = vault.cache.key(tenant, READ)
        ops = {
            "hmac_key": lambda: vault.profiles.get_profile_json(tenant, READ),
            "plain_key": lambda: plain_store.get_profile_json(tenant, READ),
            "raw_mget": lambda: raw.mget("profile:epoch", hmac_key),
        }
        stats = await measure_interleaved(ops, iterations=ITERATIONS, warmup=200)
    finally:
        await raw.aclose()
        await plain.close()
        await vault.close()
    started = perf_counter_ns()
    for _ in range(100_000):
        profile_key(tenant, READ, secret)
    hmac_ns = (perf_counter_ns() - started) / 100_000
    started = perf_counter_ns()
    for _ in range(100_000):
        f"profile:{tenant}:{READ}"
    plain_ns = (perf_counter_ns() - started) / 100_000
    return {
        "profile_bytes": len(body),
        "reads": {name: s.__dict__ for name, s in stats.items()},
        "p50_ratio_hmac_to_plain": round(stats["hmac_key"].p50_us / stats["plain_key"].p50_us, 3),
        "p99_ratio_hmac_to_plain": round(stats["hmac_key"].p99_us / stats["plain_key"].p99_us, 3),
        "p50_ratio_hmac_to_raw_mget": round(stats["hmac_key"].p50_us / stats["raw_mget"].p50_us, 2),
        "key_us": {"hmac": round(hmac_ns / 1000, 2), "plain": round(plain_ns / 1000, 2)},
    }


_BUILD = """
WITH p AS (
    INSERT INTO customer_profiles (id, tenant_id, customer_id)
    SELECT gen_random_uuid(), %(tenant)s, 'c' || i FROM generate_series(1, {profiles}) i
    RETURNING id
)
INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type, status,
                            source, collected_at, superseded_at)
SELECT gen_random_uuid(), %(tenant)s, p.id, 'field_' || n, to_jsonb('value ' || v), 'string',
       CASE WHEN v = {versions} THEN 'active' ELSE 'superseded' END, 'user_provided',
       now() - interval '60 days' + make_interval(mins => v),
       CASE WHEN v = {versions} THEN NULL ELSE now() - interval '59 days' END
  FROM p, generate_series(1, {names}) n, generate_series(1, {versions}) v
"""


async def build(pool: Pool, tenant: UUID) -> None:
    query = _BUILD.format(profiles=PROFILES, names=NAMES, versions=VERSIONS)
    async with pool.connection() as conn:
        await conn.execute(query, {"tenant": tenant})
        await conn.execute("ANALYZE profile_fields")


async def raw_delete(pool: Pool, tenant: UUID) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "DELETE FROM profile_fields WHERE tenant_id = %s AND superseded_at IS NOT NULL"
            " AND collected_at < now() - interval '30 days'",
            (tenant,),
        )
        return cur.rowcount


async def retention(url: str) -> dict[str, Any]:
    # No statement timeout: building 100,000 rows in one statement takes a while.
    settings = Settings(database_url=url, cache=False, db_statement_timeout_seconds=0)
    vault = await open_vault(settings)
    store = ProfileStore(vault.pool)  # no cache: the SQL's cost
    sweep_ms: list[float] = []
    raw_ms: list[float] = []
    deleted = raw_deleted = 0
    try:
        for i in range(ROUNDS):
            swept = (await vault.services.tenants.create(f"sweep-{i}")).tenant_id
            await vault.services.tenants.patch(swept, history_retention=RetentionChange(30))
            await build(vault.pool, swept)
            started = time.perf_counter()
            result = await apply_history_retention(store, swept, pause=0)
            sweep_ms.append((time.perf_counter() - started) * 1000)
            deleted = result.fields
            floor = (await vault.services.tenants.create(f"raw-{i}")).tenant_id
            await build(vault.pool, floor)
            started = time.perf_counter()
            raw_deleted = await raw_delete(vault.pool, floor)
            raw_ms.append((time.perf_counter() - started) * 1000)
            log(f"retention round {i}: sweep {sweep_ms[-1]:.0f} ms, raw {raw_ms[-1]:.0f} ms")
    finally:
        await vault.close()
    sweep_ms.sort()
    raw_ms.sort()
    return {
        "rows": PROFILES * NAMES * VERSIONS,
        "deleted": deleted,
        "raw_deleted": raw_deleted,
        "sweep_ms": [round(x, 1) for x in sweep_ms],
        "raw_delete_ms": [round(x, 1) for x in raw_ms],
        "median_ratio": round(sweep_ms[len(sweep_ms) // 2] / raw_ms[len(raw_ms) // 2], 2),
        "sweep_rows_per_s": round(deleted / (sweep_ms[len(sweep_ms) // 2] / 1000)),
    }


async def main() -> dict[str, Any]:
    with (
        postgres_server() as server,
        redis_server() as redis,
        fresh_database(server.url) as url,
    ):
        log("warm reads: HMAC keys vs plain keys")
        reads = await warm_reads(url, redis.url)
        log("retention vs raw DELETE")
        swept = await retention(url)
    return {"warm_read": reads, "retention": swept, "server": server.kind}


if __name__ == "__main__":
    report, loop = run_async(main)
    report["loop"] = loop
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
