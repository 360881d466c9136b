"""Erasure benchmark (issue 13): erase a profile with 1,000 field versions (10 names x 100
versions) and 100 derived items in 10 other profiles (10 each, derived from the profile's
current versions), goal < 200 ms. Raw baseline in the same run: the same rows removed by
plain DELETEs of known ids in one transaction (no lock, no lineage walk, no receipt).

Each round builds a fresh dataset with set-based SQL (not timed), then times one erasure
through the storage layer (`storage.erasure.erase`, no cache) or one baseline; the two
alternate. A fresh migrated database on CCV_BENCH_DATABASE_URL (or an embedded server).
Run: `python benchmarks/erasure_bench.py` (CCV_BENCH_ERASURE_ROUNDS, default 30).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from time import perf_counter_ns
from typing import Any
from uuid import UUID

from ccvault.domain.privacy import subject_hash
from ccvault.storage import erasure as erasure_sql
from ccvault.storage.db import Pool, open_pool
from ccvault.storage.tenants import TenantStore
from harness import Stats, log, run_async
from servers import fresh_database, postgres_server

ROUNDS = int(os.environ.get("CCV_BENCH_ERASURE_ROUNDS", "30"))
OUTPUT = Path(__file__).resolve().parent / "results" / "erasure.json"
NAMES, VERSIONS, OTHERS, DERIVED_EACH = 10, 100, 10, 10

_BUILD = """
WITH p AS (
    INSERT INTO customer_profiles (id, tenant_id, customer_id)
    VALUES (%(pid)s, %(tenant)s, %(cid)s)
), f AS (
    INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type, status,
                                source, collected_at, superseded_at)
    SELECT gen_random_uuid(), %(tenant)s, %(pid)s, 'field_' || (i %% {names}),
           to_jsonb('value ' || i), 'string',
           CASE WHEN i >= {total} - {names} THEN 'active' ELSE 'superseded' END,
           'user_provided', now() - make_interval(secs => {total} - i),
           CASE WHEN i >= {total} - {names} THEN NULL ELSE now() END
      FROM generate_series(0, {total} - 1) i
    RETURNING id, status
)
SELECT array_agg(id) FILTER (WHERE status = 'active') FROM f
"""


async def build(pool: Pool, tenant_id: UUID, cid: str) -> list[UUID]:
    """The profile and its derived items elsewhere; returns every row id involved."""
    pid = uuid.uuid4()
    total = NAMES * VERSIONS
    query = _BUILD.format(names=NAMES, total=total)
    async with pool.connection() as conn:
        cur = await conn.execute(query, {"pid": pid, "tenant": tenant_id, "cid": cid})
        row = await cur.fetchone()
        assert row is not None
        sources: list[UUID] = row[0]
        for o in range(OTHERS):
            other = uuid.uuid4()
            await conn.execute(
                "INSERT INTO customer_profiles (id, tenant_id, customer_id) VALUES (%s, %s, %s)",
                (other, tenant_id, f"{cid}-o{o}"),
            )
            await conn.execute(
                """
                INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type,
                                            source, source_item_id, source_item_type)
                SELECT gen_random_uuid(), %s, %s, 'derived_' || n, '"d"', 'string',
                       'system_inferred', s::text, 'profile_field'
                  FROM unnest(%s::uuid[]) WITH ORDINALITY AS x(s, n)
                """,
                (tenant_id, other, sources[:DERIVED_EACH]),
            )
        cur = await conn.execute(
            "SELECT id FROM profile_fields WHERE tenant_id = %s AND (profile_id = %s"
            " OR source_uuid = ANY(%s))",
            (tenant_id, pid, sources),
        )
        return [r[0] for r in await cur.fetchall()]


async def baseline(pool: Pool, tenant_id: UUID, cid: str, ids: list[UUID]) -> None:
    """The raw floor: the same rows and the profile deleted, ids known in advance."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "DELETE FROM profile_fields WHERE tenant_id = %s AND id IN (SELECT unnest(%s::uuid[]))",
            (tenant_id, ids),
        )
        await conn.execute(
            "DELETE FROM customer_profiles WHERE tenant_id = %s AND customer_id = %s",
            (tenant_id, cid),
        )


async def main() -> dict[str, Any]:
    with postgres_server() as server, fresh_database(server.url) as url:
        pool = await open_pool(url, min_size=2, max_size=4)
        try:
            created, _ = await TenantStore(pool).create("bench", "warn")
            tenant = created.tenant_id
            secret = b"b" * 32
            erase_ns: list[int] = []
            base_ns: list[int] = []
            counts = None
            for i in range(ROUNDS + 3):  # the first 3 rounds warm caches and plans
                cid = f"c{i}"
                await build(pool, tenant, cid)
                start = perf_counter_ns()
                done = await erasure_sql.erase(
                    pool, tenant, cid, reason=None, subject_of=lambda c: subject_hash(secret, c)
                )
                elapsed = perf_counter_ns() - start
                counts = done.counts
                ids = await build(pool, tenant, f"b{i}")
                start = perf_counter_ns()
                await baseline(pool, tenant, f"b{i}", ids)
                base = perf_counter_ns() - start
                if i >= 3:
                    erase_ns.append(elapsed)
                    base_ns.append(base)
        finally:
            await pool.close()
    erase_stats, base_stats = Stats.from_ns(erase_ns), Stats.from_ns(base_ns)
    assert counts is not None
    return {
        "dataset": {
            "field_versions": NAMES * VERSIONS,
            "derived_items": OTHERS * DERIVED_EACH,
            "other_profiles": OTHERS,
        },
        "counts": counts.model_dump(),
        "erase": erase_stats.__dict__,
        "raw_delete_baseline": base_stats.__dict__,
        "p50_ratio": round(erase_stats.p50_us / base_stats.p50_us, 2),
        "goal_p99_ms": 200,
        "server": server.kind,
    }


if __name__ == "__main__":
    report, loop = run_async(main)
    report["loop"] = loop
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    log(
        f"erasure p50 {report['erase']['p50_us'] / 1000:.1f} ms, p99 "
        f"{report['erase']['p99_us'] / 1000:.1f} ms; raw deletes p50 "
        f"{report['raw_delete_baseline']['p50_us'] / 1000:.1f} ms"
    )
    print(json.dumps(report, indent=2))
