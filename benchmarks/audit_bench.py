"""Audit log benchmark (issue 13 point 5, DESIGN §8 "Audit log").

1. Warm HTTP read throughput with read auditing on vs off (goal: on >= 0.9x off).
   `GET /v1/profiles/{id}` through the whole app in-process (httpx's ASGI transport,
   `WORKERS` concurrent clients), every read a cache hit. Rounds alternate on/off
   (`ROUNDS` of `ROUND_SECONDS` each), so machine load drifts over both alike; the
   process's own audit task (flush every 0.5 s, seal) runs throughout, so its cost is in
   the "on" figure.
2. A field write with its audit entry vs the same write without (goal: p50 <= 1.15x):
   `ProfileStore.save_field` with and without `audit=`, interleaved (harness.py).
3. `ccv audit verify` over `ENTRIES` entries (default 1,000,000): entries inserted
   set-based as pending, sealed by the sealer (entries/s reported too), then verified
   with the service the command runs (entries/s).

A fresh migrated database on CCV_BENCH_DATABASE_URL and Redis on CCV_BENCH_REDIS_URL (or
embedded servers). Run: `python benchmarks/audit_bench.py`. The machine is shared with
other work: read the ratios, not the wall-clock figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from pydantic import SecretStr

from ccvault.api.app import create_app
from ccvault.config import Settings
from ccvault.domain.audit import Action, note
from ccvault.domain.caller import Caller
from ccvault.domain.writes import NewField
from ccvault.runtime import Vault, open_vault
from ccvault.storage.tenants import TenantStore
from harness import log, measure_interleaved, run_async
from servers import fresh_database, postgres_server, redis_server

ITERATIONS = int(os.environ.get("CCV_BENCH_ITERATIONS", "2000"))
WARMUP = int(os.environ.get("CCV_BENCH_WARMUP", "200"))
ENTRIES = int(os.environ.get("CCV_BENCH_AUDIT_ENTRIES", "1000000"))
ROUNDS = int(os.environ.get("CCV_BENCH_ROUNDS", "6"))
ROUND_SECONDS = float(os.environ.get("CCV_BENCH_ROUND_SECONDS", "3"))
WORKERS = 8
OUTPUT = Path(__file__).resolve().parent / "results" / "audit.json"
READ_GOAL, WRITE_GOAL = 0.9, 1.15


async def read_throughput(vault: Vault, key: str, customer_id: str) -> dict[str, Any]:
    """Requests per second, auditing on and off, alternating rounds."""
    app = create_app(vault=vault)
    app.access_log = False  # the same for both modes; keeps the output readable
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key}"}
    audit = vault.services.audit
    done = {True: 0, False: 0}
    spent = {True: 0.0, False: 0.0}
    # This process's CPU time (app, audit buffer, sealer): blind to the machine's load.
    cpu = {True: 0.0, False: 0.0}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://vault", headers=headers
    ) as client:

        async def worker(until: float, on: bool) -> None:
            while time.perf_counter() < until:
                resp = await client.get(f"/v1/profiles/{customer_id}")
                assert resp.status_code == 200
                done[on] += 1

        for _ in range(50):  # warm: the cache entry, the key, the code paths
            await client.get(f"/v1/profiles/{customer_id}")
        for round_no in range(ROUNDS * 2):
            on = round_no % 2 == 0
            audit.reads = on
            start, cpu_start = time.perf_counter(), time.process_time()
            until = start + ROUND_SECONDS
            await asyncio.gather(*(worker(until, on) for _ in range(WORKERS)))
            spent[on] += time.perf_counter() - start
            cpu[on] += time.process_time() - cpu_start
    audit.reads = True
    on_rps, off_rps = done[True] / spent[True], done[False] / spent[False]
    ratio = round(on_rps / off_rps, 3)
    return {
        "requests_per_s_audit_on": round(on_rps, 1),
        "requests_per_s_audit_off": round(off_rps, 1),
        "ratio_on_to_off": ratio,
        "cpu_us_per_read_audit_on": round(cpu[True] / done[True] * 1e6, 1),
        "cpu_us_per_read_audit_off": round(cpu[False] / done[False] * 1e6, 1),
        "goal": READ_GOAL,
        "passed": ratio >= READ_GOAL,
        "workers": WORKERS,
        "rounds_each": ROUNDS,
        "round_seconds": ROUND_SECONDS,
    }


async def write_cost(vault: Vault, caller: Caller) -> dict[str, Any]:
    """A field write with its entry vs without, interleaved."""
    store = vault.profiles
    turn = {"i": 0}

    def new() -> NewField:
        turn["i"] += 1
        return NewField.model_validate({"value": f"v{turn['i']}", "source": "user_provided"})

    async def with_entry() -> None:
        name = f"field_{turn['i'] % 20:02d}"
        entry = note(caller, Action.field_write, "w1", target=name)
        await store.save_field(caller.tenant_id, "w1", name, new(), audit=entry)

    async def without() -> None:
        await store.save_field(caller.tenant_id, "w1", f"field_{turn['i'] % 20:02d}", new())

    ops = {"field write with its entry": with_entry, "field write, no entry": without}
    stats = await measure_interleaved(ops, iterations=ITERATIONS, warmup=WARMUP)
    floor = stats["field write, no entry"].p50_us
    ratio = round(stats["field write with its entry"].p50_us / floor, 3)
    return {
        "results": {
            name: s.__dict__ | {"p50_ratio": round(s.p50_us / floor, 3)}
            for name, s in stats.items()
        },
        "p50_ratio": ratio,
        "goal": WRITE_GOAL,
        "passed": ratio <= WRITE_GOAL,
        "iterations": ITERATIONS,
    }


async def verify_rate(vault: Vault, tenant_id: UUID, name: str) -> dict[str, Any]:
    """Seal ENTRIES pending entries, then verify the chain; entries/s of each."""
    log(f"inserting {ENTRIES} pending entries")
    async with vault.pool.connection() as conn:
        await conn.execute(
            """
            INSERT INTO audit_pending (tenant_id, at, actor, action, subject_hash, target,
                                       purpose, request_id)
            SELECT %(tenant)s, now() - make_interval(secs => %(n)s - i), 'bench-key',
                   (ARRAY['field.write', 'profile.read', 'field.read'])[1 + i %% 3],
                   md5(i::text) || md5((i + 1)::text), 'field_' || i %% 20, NULL,
                   md5(i::text)
              FROM generate_series(1, %(n)s) i
            """,
            {"tenant": tenant_id, "n": ENTRIES},
        )
    start = time.perf_counter()
    sealed = await vault.services.audit.seal(tenant_id)
    seal_s = time.perf_counter() - start
    log(f"sealed {sealed} entries in {seal_s:.1f} s; verifying")
    start = time.perf_counter()
    (chain,) = await vault.services.audit.verify(name)
    verify_s = time.perf_counter() - start
    assert chain.broken is None, chain.broken
    return {
        "entries": chain.checked,
        "seal_seconds": round(seal_s, 2),
        "seal_entries_per_s": round(sealed / seal_s),
        "verify_seconds": round(verify_s, 2),
        "verify_entries_per_s": round(chain.checked / verify_s),
    }


async def main() -> dict[str, Any]:
    with (
        postgres_server() as server,
        redis_server() as redis,
        fresh_database(server.url) as url,
    ):
        settings = Settings(
            database_url=url,
            redis_url=redis.url,
            admin_api_key=SecretStr("bench-admin"),
            access_log=False,
            http_metrics=False,
            # The 1M-entry set-up statement runs longer than a request's 5 s.
            db_statement_timeout_seconds=0,
        )
        vault = await open_vault(settings)
        try:
            tenant_name = "bench-audit"
            created, key = await TenantStore(vault.pool).create(tenant_name, "warn")
            caller = await vault.services.keys.resolve(key)
            assert caller is not None
            for n in range(20):
                new = NewField.model_validate({"value": f"value {n}", "source": "user_provided"})
                await vault.profiles.save_field(created.tenant_id, "r1", f"field_{n:02d}", new)
            log("warm read throughput, read auditing on vs off")
            reads = await read_throughput(vault, key, "r1")
            log(json.dumps(reads))
            log("field write with its entry vs without")
            writes = await write_cost(vault, caller)
            log(json.dumps({"p50_ratio": writes["p50_ratio"]}))
            # Verify on a tenant of its own, so the chain holds exactly ENTRIES entries.
            verified_tenant, _ = await TenantStore(vault.pool).create("bench-verify", "warn")
            verify = await verify_rate(vault, verified_tenant.tenant_id, "bench-verify")
        finally:
            await vault.close()
    return {
        "warm_read_throughput": reads,
        "field_write": writes,
        "verify": verify,
        "server": server.kind,
        "note": "shared machine: ratios are the result, wall-clock figures only context",
    }


if __name__ == "__main__":
    report, loop = run_async(main)
    report["loop"] = loop
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
