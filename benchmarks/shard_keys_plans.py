"""Plans of the hot paths before and after migration 0014 (tenant_id in every key).

On a fresh database at 0012 (the revision before), loads the sweep benchmark's dataset
(CCV_BENCH_PLAN_PROFILES profiles, default 20,000, x 20 fields; fields derived from other
fields), ANALYZEs, and records with auto_explain (nested statements included, so the
write functions' statements too) the plans of: a profile read (`get_profile_json`, no
cache), a field write (`save_field`: the plpgsql write function), and
lineage both ways (the recursive query). Then migrates to head, ANALYZEs, and records
them again. Prints each statement's plan before and after when they differ (node types
and index names; costs and row estimates left out), and the timings of each operation
(median of CCV_BENCH_ITERATIONS, 300) before and after.

Run: `python benchmarks/shard_keys_plans.py` (CCV_BENCH_DATABASE_URL or an embedded
server, as the other benchmarks).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

import psycopg

from ccvault import migrations
from ccvault.domain.models import Direction
from ccvault.storage.db import open_pool
from ccvault.storage.lineage import lineage
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.urls import libpq_url
from servers import fresh_database, postgres_server
from sweep_bench import LOAD_FIELDS, LOAD_PROFILES, LOAD_TENANTS

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from integration.helpers import new_field

PROFILES = int(os.environ.get("CCV_BENCH_PLAN_PROFILES", "20000"))
ITERATIONS = int(os.environ.get("CCV_BENCH_ITERATIONS", "300"))


def _shape(notice: str) -> str:
    """A plan's node types and the indexes they use, one node a line (no costs, no
    literals: the same statement plans to the same text whatever its parameters)."""
    document = json.loads(notice.split("plan:", 1)[1])
    lines: list[str] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        index = node.get("Index Name")
        lines.append("  " * depth + node["Node Type"] + (f" using {index}" if index else ""))
        for child in node.get("Plans", []):
            walk(child, depth + 1)

    walk(document["Plan"], 0)
    return "\n".join(lines)


async def _measure(url: str) -> tuple[dict[str, list[str]], dict[str, float]]:
    pool = await open_pool(url, min_size=1, max_size=1)
    plans: list[str] = []
    async with pool.connection() as conn:
        conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
        for setting in (
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_nested_statements = on",
            "SET auto_explain.log_level = notice",
            "SET auto_explain.log_format = json",
            "SET client_min_messages = notice",
        ):
            await conn.execute(setting)
    store = ProfileStore(pool, None)
    async with pool.connection() as conn:
        row = await (
            await conn.execute("SELECT tenant_id FROM customer_profiles LIMIT 1")
        ).fetchone()
        assert row is not None
        tenant = row[0]
        cur = await conn.execute(
            "SELECT p.customer_id, f.id FROM customer_profiles p JOIN profile_fields f"
            " ON f.profile_id = p.id AND f.name = 'field_07' WHERE p.tenant_id = %s LIMIT 1",
            (tenant,),
        )
        found = await cur.fetchone()
        assert found is not None
        customer, source = found
        cur = await conn.execute(
            "SELECT id FROM profile_fields WHERE source_uuid = %s LIMIT 1", (source,)
        )
        derived = (await cur.fetchone() or [None])[0]
    ops: dict[str, Any] = {
        "profile read": lambda i: store.get_profile_json(tenant, customer),
        "field write": lambda i: store.save_field(tenant, customer, "bench", new_field(i)),
        "lineage down": lambda i: lineage(pool, tenant, source, Direction.descendants),
        "lineage up": lambda i: lineage(pool, tenant, derived, Direction.ancestors),
    }
    by_op: dict[str, list[str]] = {}
    timings: dict[str, float] = {}
    for name, op in ops.items():
        plans.clear()
        await op(0)
        by_op[name] = [_shape(p) for p in plans]
    async with pool.connection() as conn:
        await conn.execute("LOAD 'auto_explain'; SET auto_explain.log_min_duration = -1")
    for name, op in ops.items():
        samples = []
        for i in range(ITERATIONS):
            started = time.perf_counter()
            await op(i + 1)
            samples.append((time.perf_counter() - started) * 1e6)
        timings[name] = statistics.median(samples)
    await pool.close()
    return by_op, timings


async def main() -> int:
    with postgres_server() as server, fresh_database(server.url) as url:
        migrations.downgrade(url, "0012_input_bounds")
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            params = {"tenants": 10, "profiles": PROFILES}
            conn.execute(LOAD_TENANTS, params)
            conn.execute(LOAD_PROFILES, params)
            conn.execute(LOAD_FIELDS, {**params, "lo": 0, "hi": PROFILES})
            conn.execute("VACUUM ANALYZE")
        before, before_t = await _measure(url)
        migrations.upgrade(url)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        after, after_t = await _measure(url)
    same = True
    for name in before:
        for i, (b, a) in enumerate(zip(before[name], after[name], strict=False)):
            if b != a:
                same = False
                print(
                    f"== {name}, statement {i + 1}: plan changed\n-- before\n{b}\n-- after\n{a}\n"
                )
        print(
            f"{name:14} {len(before[name])} statements, plans "
            f"{'identical' if before[name] == after[name] else 'DIFFER'};"
            f" median {before_t[name]:7.0f} µs before, {after_t[name]:7.0f} µs after"
            f" ({after_t[name] / before_t[name]:.2f}x)"
        )
    print("all plans identical" if same else "some plans differ (above)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
