"""Import benchmark (issue #17): fields/s of the bulk importer vs a raw COPY of the same rows.

The importer (`services.imports.Importer.run`, what `POST /v1/profiles/import` and `ccv
import` call) reads P profiles x F fields of NDJSON (made before the clock starts, about
250 bytes a line), validates and stores them in batches. The floor is one `COPY` of the
rows the importer stores for those lines (the same field names, normalized values, value
types and confidences, ids minted by the server as the importer's are) into a bare table
(no index, no constraint, no trigger) on the same server, in the same run. Runs alternate
(floor, importer, floor, importer...) into fresh tenants so that both see the same server
state; the median of each and each round's ratio are reported, with where the importer's
time goes (its validation CPU alone, then storing the validated lines alone).
Target: importer >= 0.5x the floor's fields/s. A second, diagnostic floor is a raw COPY of
the same rows into the real tables (customer_profiles, profile_fields: every index,
foreign key and trigger), which shows what the schema alone costs.

Environment: CCV_BENCH_DATABASE_URL (else embedded), CCV_BENCH_IMPORT_PROFILES (20000),
CCV_BENCH_IMPORT_FIELDS (5), CCV_BENCH_IMPORT_ROUNDS (3), CCV_BENCH_IMPORT_OUTPUT
(benchmarks/results/import.json).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg

import report
from ccvault.domain.models import ValidationMode
from ccvault.services.imports import BATCH_LINES, Importer, _Run
from ccvault.storage.db import open_pool
from ccvault.storage.imports import PreparedLine
from ccvault.storage.tenants import TenantStore
from harness import log, run_async
from servers import fresh_database, postgres_server, server_info

PROFILES = int(os.environ.get("CCV_BENCH_IMPORT_PROFILES", "20000"))
FIELDS = int(os.environ.get("CCV_BENCH_IMPORT_FIELDS", "5"))
ROUNDS = int(os.environ.get("CCV_BENCH_IMPORT_ROUNDS", "3"))
OUTPUT = Path(os.environ.get("CCV_BENCH_IMPORT_OUTPUT", "benchmarks/results/import.json"))
GOAL = 0.5

_NAMES = ["email", "phone", "name", "plan", "seats", "city", "tier", "score"]


def line(i: int, fields: int = FIELDS, version: int = 0) -> dict[str, Any]:
    """Profile i's line: a mix of typed and bare values (version varies the values)."""
    values: dict[str, Any] = {
        "email": {"value": f"user{i}.{version}@Example.com", "value_type": "email"},
        "phone": {"value": f"+1 415 555 {i % 10000:04d}", "value_type": "phone"},
        "name": f"Customer {i} v{version}",
        "plan": {"value": "gold" if i % 2 else "silver", "confidence": 0.9},
        "seats": i % 500 + version,
    }
    chosen = {name: values.get(name, f"{name}-{i}-{version}") for name in _NAMES[:fields]}
    for extra in range(len(chosen), fields):
        chosen[f"attr_{extra:02d}"] = f"value {i} {extra} v{version}"
    return {"customer_id": f"cust-{i:07d}", "fields": chosen}


async def ndjson(
    profiles: int, fields: int = FIELDS, version: int = 0, start: int = 0
) -> AsyncIterator[bytes]:
    """The lines in chunks of about 1 MiB, generated as they are read."""
    chunk: list[bytes] = []
    size = 0
    for i in range(start, start + profiles):
        text = json.dumps(line(i, fields, version), separators=(",", ":")).encode() + b"\n"
        chunk.append(text)
        size += len(text)
        if size >= 1 << 20:
            yield b"".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield b"".join(chunk)


# Ids minted by the server, as the importer's are.
BARE = """
CREATE TABLE IF NOT EXISTS bench_bare_fields (
    id uuid DEFAULT gen_random_uuid(), tenant_id uuid, profile_id uuid, name text,
    value jsonb, value_type text, status text, source text, confidence double precision,
    verified boolean, collected_at timestamptz, updated_at timestamptz)
"""


def stored(i: int, fields: int = FIELDS, version: int = 0) -> list[tuple[str, Any, str, float]]:
    """What the importer stores for profile i's line: (name, value as normalized, value
    type, confidence), computed directly (the floor validates nothing)."""
    out: list[tuple[str, Any, str, float]] = []
    for name, raw in line(i, fields, version)["fields"].items():
        value = raw["value"] if isinstance(raw, dict) else raw
        kind = raw.get("value_type") if isinstance(raw, dict) else None
        if kind == "email":
            local, _, domain = value.rpartition("@")
            value = f"{local}@{domain.lower()}"
        elif kind == "phone":
            value = "+" + "".join(c for c in value if c.isdigit())
        kind = kind or ("number" if isinstance(value, int) else "string")
        confidence = raw.get("confidence", 1.0) if isinstance(raw, dict) else 1.0
        out.append((name, value, kind, confidence))
    return out


def floor_rows(profiles: int) -> list[list[tuple[str, str, str, float]]]:
    """Per profile, the rows the floor COPYs: (name, value as JSON text, type, confidence),
    made before the clock starts (as the importer's NDJSON is)."""
    return [
        [(n, json.dumps(v, separators=(",", ":")), k, c) for n, v, k, c in stored(i)]
        for i in range(profiles)
    ]


async def replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    """The NDJSON body, made before the clock starts (the importer's time is its own)."""
    for chunk in chunks:
        yield chunk


async def raw_copy(url: str, rows: list[list[tuple[str, str, str, float]]]) -> float:
    """Seconds for one COPY of the rows the importer stores (the same names, normalized
    values, types and confidences) into a bare table, a profile id per line."""
    tenant = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(BARE)
        await conn.execute("TRUNCATE bench_bare_fields")
        started = time.perf_counter()
        async with conn.transaction():
            cur = conn.cursor()
            async with cur.copy(
                "COPY bench_bare_fields (tenant_id, profile_id, name, value, value_type,"
                " status, source, confidence, verified, collected_at, updated_at) FROM STDIN"
            ) as copy:
                now = "2026-01-01T00:00:00Z"
                for fields in rows:
                    profile = uuid.uuid4()
                    for name, value, kind, confidence in fields:
                        await copy.write_row(
                            (
                                tenant,
                                profile,
                                name,
                                value,
                                kind,
                                "active",
                                "human_entered",
                                confidence,
                                False,
                                now,
                                now,
                            )
                        )
        return time.perf_counter() - started


async def raw_copy_schema(
    url: str, tenant_id: uuid.UUID, rows: list[list[tuple[str, str, str, float]]]
) -> float:
    """Seconds for raw COPYs of the same rows into the real tables, in one transaction:
    the profiles into customer_profiles, then the versions into profile_fields, with every
    index, foreign key and trigger (profile limits, the events outbox) the schema has.
    Nothing is validated, compared or audited: what the schema alone costs per field."""
    profile_ids = [uuid.uuid4() for _ in rows]
    field_ids = [[uuid.uuid4() for _ in fields] for fields in rows]
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, options="-c TimeZone=UTC"
    ) as conn:
        started = time.perf_counter()
        async with conn.transaction():
            cur = conn.cursor()
            async with cur.copy(
                "COPY customer_profiles (id, tenant_id, customer_id) FROM STDIN"
            ) as copy:
                for i, pid in enumerate(profile_ids):
                    await copy.write_row((pid, tenant_id, f"raw-{i:07d}"))
            async with cur.copy(
                "COPY profile_fields (id, tenant_id, profile_id, name, value, value_type,"
                " status, source, confidence, verified, collected_at, updated_at) FROM STDIN"
            ) as copy:
                now = "2026-01-01T00:00:00Z"
                for pid, ids, fields in zip(profile_ids, field_ids, rows, strict=True):
                    for fid, (name, value, kind, confidence) in zip(ids, fields, strict=True):
                        await copy.write_row(
                            (
                                fid,
                                tenant_id,
                                pid,
                                name,
                                value,
                                kind,
                                "active",
                                "human_entered",
                                confidence,
                                False,
                                now,
                                now,
                            )
                        )
        return time.perf_counter() - started


async def storage_only(
    importer: Importer, tenants: TenantStore, body: list[bytes], rows: int
) -> tuple[float, float, float]:
    """Where the importer's time goes, the two halves one after the other: seconds of
    this process's CPU to validate the lines (parsing and the per-field checks), then
    wall seconds and this process's CPU seconds to store them already validated
    (ImportStore.write_batch in the importer's batches; wall minus CPU is, roughly,
    PostgreSQL's share)."""
    tenant, _ = await tenants.create(f"import-bench-{uuid.uuid4().hex[:8]}", "warn")
    prepare = _Run(importer, tenant.tenant_id, ValidationMode.warn, None)
    prepared: list[PreparedLine] = []
    texts = [text for chunk in body for text in chunk.splitlines()]
    cpu = time.process_time()
    for number, text in enumerate(texts, start=1):
        found = await prepare._prepare(number, text)
        assert found is not None
        prepared.append(found)
    validate_cpu = time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(prepared), BATCH_LINES):
        await importer.store.write_batch(
            tenant.tenant_id, None, prepared[start : start + BATCH_LINES]
        )
    seconds, store_cpu = time.perf_counter() - started, time.process_time() - cpu
    log(
        f"validation alone: {validate_cpu:.2f} s CPU; storage alone: {rows} fields in "
        f"{seconds:.2f} s ({store_cpu:.2f} s of it this process's CPU)"
    )
    return validate_cpu, seconds, store_cpu


async def run(url: str, server: Any) -> dict[str, Any]:
    pool = await open_pool(url, min_size=1, max_size=2)
    try:
        async with pool.connection() as conn:
            info = await server_info(conn, server)
        importer = Importer(pool)
        tenants = TenantStore(pool)
        rows = PROFILES * FIELDS
        floor_s: list[float] = []
        schema_s: list[float] = []
        import_s: list[float] = []
        rss_kb: list[int] = []
        body = [chunk async for chunk in ndjson(PROFILES)]
        bare = floor_rows(PROFILES)
        for r in range(ROUNDS):
            floor_s.append(await raw_copy(url, bare))
            tenant, _ = await tenants.create(f"import-bench-{uuid.uuid4().hex[:8]}", "warn")
            schema_s.append(await raw_copy_schema(url, tenant.tenant_id, bare))
            started = time.perf_counter()
            summary = await importer.run(tenant.tenant_id, ValidationMode.warn, replay(body))
            import_s.append(time.perf_counter() - started)
            assert summary.failed == 0 and summary.fields == rows, summary.errors[:3]
            rss_kb.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            log(
                f"round {r + 1}: floor {floor_s[-1]:.2f} s, raw COPY into the schema "
                f"{schema_s[-1]:.2f} s, importer {import_s[-1]:.2f} s"
            )
        validate_cpu, store_s, store_cpu = await storage_only(importer, tenants, body, rows)
        floor_rate = rows / statistics.median(floor_s)
        import_rate = rows / statistics.median(import_s)
        ratio = import_rate / floor_rate
        # Each round's own ratio (its importer against the floor measured just before it).
        ratios = [round(f / i, 3) for f, i in zip(floor_s, import_s, strict=True)]
        return {
            "server": info,
            "profiles": PROFILES,
            "fields_per_profile": FIELDS,
            "rounds": ROUNDS,
            "floor_seconds": floor_s,
            "import_seconds": import_s,
            "floor_fields_per_s": round(floor_rate),
            "import_fields_per_s": round(import_rate),
            "import_profiles_per_s": round(PROFILES / statistics.median(import_s)),
            "ratio": round(ratio, 3),
            "ratio_per_round": ratios,
            "schema_copy_seconds": schema_s,
            "schema_copy_fields_per_s": round(rows / statistics.median(schema_s)),
            "schema_copy_ratio": round(statistics.median(floor_s) / statistics.median(schema_s), 3),
            "import_vs_schema_copy": round(
                statistics.median(schema_s) / statistics.median(import_s), 3
            ),
            "validation_cpu_seconds": round(validate_cpu, 2),
            "validation_cpu_us_per_field": round(validate_cpu / rows * 1e6, 1),
            "storage_only_seconds": round(store_s, 2),
            "storage_only_cpu_seconds": round(store_cpu, 2),
            "storage_only_fields_per_s": round(rows / store_s),
            "storage_only_ratio": round(rows / store_s / floor_rate, 3),
            "goal": GOAL,
            "passed": ratio >= GOAL,
            "max_rss_kb_after_each_round": rss_kb,
        }
    finally:
        await pool.close()


def main() -> None:
    with postgres_server() as server, fresh_database(server.url) as url:
        result, loop = run_async(lambda: run(url, server))
    result["loop"] = loop
    report.write_json(OUTPUT, result)
    mark = "ok" if result["passed"] else "MISS"
    print(
        f"import: {result['import_fields_per_s']} fields/s "
        f"({result['import_profiles_per_s']} profiles/s) vs raw COPY "
        f"{result['floor_fields_per_s']} fields/s: {result['ratio']}x "
        f"(goal >= {GOAL}x) {mark}; rounds {result['ratio_per_round']}; a raw COPY into "
        f"the real tables {result['schema_copy_fields_per_s']} fields/s "
        f"({result['schema_copy_ratio']}x; the importer {result['import_vs_schema_copy']}x of "
        f"it); storing already "
        f"validated lines alone: {result['storage_only_fields_per_s']} fields/s "
        f"({result['storage_only_ratio']}x); validation alone "
        f"{result['validation_cpu_us_per_field']} µs of CPU a field"
    )


if __name__ == "__main__":
    main()
