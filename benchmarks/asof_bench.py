"""As-of read benchmark (issue 15): a profile read as of a past instant
(`GET /v1/profiles/{id}?as_of=T`'s query, `storage.asof.profile_as_of`) against a current
cold read of the same profile (`ProfileStore.get_profile` without a cache), goal p50 at
most 2x.

Dataset, built with set-based SQL: 2,000 profiles x 20 fields x 3 versions (the third
active, the first two superseded an hour apart), 2 assets, 1 channel identity and 2
consents answered twice (granted, then revoked after T: 4 consent history rows) per
profile; `ANALYZE`d. Each iteration reads the next profile (the same one for every
operation of the iteration), so reads spread over the whole dataset as a service's
would. Operations run interleaved, order rotated (harness.py). T lies between the second
and third versions (the answer holds the then-active second versions); diagnostic rows
read as of now and with `include=history`.

A fresh migrated database on CCV_BENCH_DATABASE_URL (or an embedded server). Run:
`python benchmarks/asof_bench.py` (CCV_BENCH_ITERATIONS, default 2000; CCV_BENCH_WARMUP,
default 200). The machine is shared: read the ratio, not the wall-clock figures.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from ccvault.storage.asof import profile_as_of
from ccvault.storage.db import Pool, open_pool
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.tenants import TenantStore
from harness import log, measure_interleaved, run_async
from servers import fresh_database, postgres_server

ITERATIONS = int(os.environ.get("CCV_BENCH_ITERATIONS", "2000"))
WARMUP = int(os.environ.get("CCV_BENCH_WARMUP", "200"))
OUTPUT = Path(__file__).resolve().parent / "results" / "asof.json"
PROFILES, FIELDS, VERSIONS = 2000, 20, 3
GOAL_RATIO = 2.0

_BUILD = [
    """
    INSERT INTO customer_profiles (id, tenant_id, customer_id, created_at, updated_at)
    SELECT gen_random_uuid(), %(tenant)s, 'c' || i, %(base)s, %(base)s
      FROM generate_series(0, {profiles} - 1) i
    """,
    # Version v of field n collected at base + v hours (+ n seconds); the next supersedes it.
    """
    INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type, status,
                                source, collected_at, updated_at, superseded_at)
    SELECT gen_random_uuid(), %(tenant)s, p.id, 'field_' || lpad(n::text, 2, '0'),
           to_jsonb('value ' || v || ' of field ' || n), 'string',
           CASE WHEN v = {versions} - 1 THEN 'active' ELSE 'superseded' END, 'user_provided',
           %(base)s + make_interval(hours => v, secs => n),
           %(base)s + make_interval(hours => v + 1, secs => n),
           CASE WHEN v < {versions} - 1 THEN %(base)s + make_interval(hours => v + 1, secs => n)
           END
      FROM customer_profiles p, generate_series(0, {fields} - 1) n,
           generate_series(0, {versions} - 1) v
     WHERE p.tenant_id = %(tenant)s
    """,
    """
    INSERT INTO profile_assets (id, tenant_id, profile_id, name, asset_type, storage_provider,
                                storage_path, mime_type, size_bytes, checksum, uploaded_at)
    SELECT gen_random_uuid(), %(tenant)s, p.id, 'doc_' || n, 'document', 's3',
           'bucket/' || p.customer_id || '/' || n, 'application/pdf', 1234, 'sha256:abc',
           %(base)s
      FROM customer_profiles p, generate_series(0, 1) n
     WHERE p.tenant_id = %(tenant)s
    """,
    """
    INSERT INTO channel_identities (id, tenant_id, profile_id, channel, channel_user_id,
                                    created_at)
    SELECT gen_random_uuid(), %(tenant)s, p.id, 'email', p.customer_id || '@example.com',
           %(base)s
      FROM customer_profiles p WHERE p.tenant_id = %(tenant)s
    """,
    # Each consent answered twice: the trigger keeps both answers in consent_history.
    """
    INSERT INTO consents (tenant_id, profile_id, consent_type, granted, granted_at, updated_at)
    SELECT %(tenant)s, p.id, t, true, now(), now()
      FROM customer_profiles p, unnest(ARRAY['marketing', 'profiling']) t
     WHERE p.tenant_id = %(tenant)s
    """,
    """
    UPDATE consents SET granted = false, revoked_at = clock_timestamp(),
                        updated_at = clock_timestamp()
     WHERE tenant_id = %(tenant)s
    """,
    # Dated as if answered over the day: granted at base, revoked three hours later.
    """
    UPDATE consent_history
       SET recorded_at = CASE WHEN granted THEN %(base)s
                              ELSE %(base)s + make_interval(hours => 3) END
     WHERE tenant_id = %(tenant)s
    """,
]


async def build(pool: Pool, tenant_id: UUID, base: datetime) -> None:
    params = {"tenant": tenant_id, "base": base}
    async with pool.connection() as conn:
        for statement in _BUILD:
            sql = statement.format(profiles=PROFILES, fields=FIELDS, versions=VERSIONS)
            await conn.execute(sql, params)
        await conn.execute("ANALYZE")


async def main() -> dict[str, Any]:
    with postgres_server() as server, fresh_database(server.url) as url:
        pool = await open_pool(url, min_size=2, max_size=4)
        try:
            created, _ = await TenantStore(pool).create("bench", "warn")
            tenant = created.tenant_id
            base = datetime.now(UTC) - timedelta(days=1)
            log(f"building {PROFILES} profiles x {FIELDS} fields x {VERSIONS} versions")
            await build(pool, tenant, base)
            store = ProfileStore(pool)  # no cache: every read is a cold read
            then = base + timedelta(hours=VERSIONS - 1, minutes=-30)
            turn = {"i": 0}

            def next_id() -> str:
                turn["i"] += 1
                # One profile per iteration, the same for every operation in it.
                return f"c{(turn['i'] // len(ops)) % PROFILES}"

            async def current() -> None:
                await store.get_profile(tenant, next_id())

            async def as_of_then() -> None:
                profile = await profile_as_of(pool, tenant, next_id(), then)
                assert len(profile.fields) == FIELDS

            async def as_of_now() -> None:
                await profile_as_of(pool, tenant, next_id(), datetime.now(UTC))

            async def as_of_history() -> None:
                await profile_as_of(pool, tenant, next_id(), then, include_history=True)

            ops = {
                "current cold read": current,
                "as-of read (T in history)": as_of_then,
                "as-of read (T = now)": as_of_now,
                "as-of read with history": as_of_history,
            }
            sample = await profile_as_of(pool, tenant, "c0", then)
            assert all(f.value.startswith("value 1 ") for f in sample.fields.values())
            assert [c.granted for c in sample.consents] == [True, True]
            stats = await measure_interleaved(ops, iterations=ITERATIONS, warmup=WARMUP)
        finally:
            await pool.close()
    floor = stats["current cold read"].p50_us
    ratio = round(stats["as-of read (T in history)"].p50_us / floor, 2)
    return {
        "dataset": {
            "profiles": PROFILES,
            "fields": FIELDS,
            "versions": VERSIONS,
            "assets": 2,
            "consent_history_rows": 4,
        },
        "iterations": ITERATIONS,
        "results": {
            name: s.__dict__ | {"p50_ratio_to_current": round(s.p50_us / floor, 2)}
            for name, s in stats.items()
        },
        "p50_ratio": ratio,
        "goal_ratio": GOAL_RATIO,
        "passed": ratio <= GOAL_RATIO,
        "server": server.kind,
    }


if __name__ == "__main__":
    report, loop = run_async(main)
    report["loop"] = loop
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    for name, row in report["results"].items():
        log(
            f"{name:28} p50 {row['p50_us']:8.1f} µs  p99 {row['p99_us']:8.1f} µs  "
            f"x{row['p50_ratio_to_current']}"
        )
    print(json.dumps(report, indent=2))
