"""Schema layer benchmark (issue #3): value validation per type, and missing fields against
a raw 20-row SELECT.

Validation: `check_value` per value type (target p50 < 20 µs), plus regex and allowed values.
Missing fields: `SchemaStore(pool).missing_fields` against the floor (target p50 <= 2x), the
store's own statement alone, the Python side alone, and the library at scale. Dataset,
method and environment variables: benchmarks/README.md.

Run alone: `python benchmarks/schema_bench.py` (or `python benchmarks/run.py schema`).
"""

from __future__ import annotations

import os
import platform
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from time import perf_counter_ns
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

import report
from ccvault.domain.missing import missing_fields
from ccvault.domain.models import Source, ValueType
from ccvault.domain.schema import (
    CurrentValue,
    DefinitionBody,
    DefinitionHints,
    FallbackAction,
    MissingFields,
    RequiredLevel,
    Requirement,
    RequirementBody,
)
from ccvault.domain.validation import Rules, check_value
from ccvault.domain.writes import NewField
from ccvault.storage.db import Pool, open_pool
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.schema import SchemaStore
from ccvault.storage.tenants import TenantStore
from harness import Stats, clean_heap, log, measure_interleaved, rotated, run_async
from scenarios import Group
from servers import Server, fresh_database, postgres_server, server_info

RawConn = AsyncConnection[TupleRow]
SyncOp = Callable[[], object]
Row = dict[str, Any]

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "schema.json"
PACKAGES = ("psycopg", "pydantic", "email-validator", "phonenumbers", "google-re2")
TYPE_TARGET_US = 20.0  # issue #3: check_value p50 per value type
MISSING_TARGET_RATIO = 2.0  # issue #3: missing fields p50 <= 2x a raw 20-row SELECT

# -- part 1: validation ------------------------------------------------------------------

ID_PATTERN = r"^[A-Z]{2}\d{6}$"
TIERS = ["bronze", "silver", "gold", "platinum"]
JSON_TEXT = '{"street": "Unter den Linden 1", "city": "Berlin", "tags": ["vip", 3, true]}'
# label -> (a valid value, its rules); a row labelled with a value type is judged.
CASES: dict[str, tuple[Any, Rules]] = {
    "string": ("Ada Lovelace", Rules(ValueType.string)),
    "email": ("Ada.Lovelace@Example.COM", Rules(ValueType.email)),
    "phone": ("+49 30 1234567", Rules(ValueType.phone)),
    "date": ("1815-12-10", Rules(ValueType.date)),
    "datetime": ("2024-03-01T14:30:00+01:00", Rules(ValueType.datetime)),
    "number": ("1234.56", Rules(ValueType.number)),
    "integer": ("42", Rules(ValueType.integer)),
    "boolean": ("yes", Rules(ValueType.boolean)),
    "url": ("https://example.com/customers/42?tab=profile", Rules(ValueType.url)),
    "json": (JSON_TEXT, Rules(ValueType.json)),
    "string + regex": ("DE123456", Rules(ValueType.string, ID_PATTERN)),
    "string + allowed_values (4)": ("gold", Rules(ValueType.string, None, TIERS)),
}
VALUE_TYPES = [t.value for t in ValueType]
if not set(VALUE_TYPES) <= CASES.keys():
    raise RuntimeError("a value type has no benchmark case")


def time_sync(ops: Mapping[str, SyncOp], *, iterations: int, warmup: int) -> dict[str, Stats]:
    """`measure_interleaved` for plain functions: one call of each per round, order rotated,
    each call timed alone; collector on, started from a clean, frozen heap."""
    names = list(ops)
    for name in rotated(names, warmup):
        ops[name]()
    samples: dict[str, list[int]] = {name: [] for name in names}
    with clean_heap():
        for name in rotated(names, iterations):
            op = ops[name]
            start = perf_counter_ns()
            op()
            samples[name].append(perf_counter_ns() - start)
    return {name: Stats.from_ns(values) for name, values in samples.items()}


def run_validation(iterations: int, warmup: int) -> list[Row]:
    """Time `check_value` per case, after checking every value passes (a rejected value
    takes another path and would time the wrong thing); one row per case, the value types
    judged against TYPE_TARGET_US."""
    for label, (value, rules) in CASES.items():
        if problems := check_value(value, rules).problems:
            raise RuntimeError(f"benchmark value for {label} is not valid: {problems}")
    ops = {label: partial(check_value, value, rules) for label, (value, rules) in CASES.items()}
    started = time.perf_counter()
    stats = time_sync(ops, iterations=iterations, warmup=warmup)
    log(f"timed check_value per case in {time.perf_counter() - started:.1f}s")
    group = f"check_value per case (target p50 < {TYPE_TARGET_US:.0f} µs per value type)"
    return [
        {
            "group": group,
            "operation": name,
            **asdict(s),
            "target_p50_us": TYPE_TARGET_US if name in VALUE_TYPES else None,
            "passed": s.p50_us < TYPE_TARGET_US if name in VALUE_TYPES else None,
        }
        for name, s in stats.items()
    ]


def render_validation(rows: Sequence[Row]) -> str:
    """Fixed-width table: absolute targets, not ratios."""
    width = max(len(row["operation"]) for row in rows) + 2
    lines = [
        f"{'operation':<{width}}  {'p50 µs':>7}  {'p99 µs':>7}  target  result",
        "-" * (width + 34),
        f"[{rows[0]['group']}, n={rows[0]['n']}]",
    ]
    for row in rows:
        judged = row["passed"] is not None
        target = f"< {row['target_p50_us']:.0f}" if judged else ""
        result = ("pass" if row["passed"] else "MISS") if judged else ""
        cells = f"{row['p50_us']:>7.1f}  {row['p99_us']:>7.1f}  {target:>6}  {result}"
        lines.append(f"  {row['operation']:<{width - 2}}  {cells}".rstrip())
    return "\n".join(lines)


# -- part 2: missing fields -------------------------------------------------------------

AGENT = "bench-agent"
OTHER_AGENT = "bench-other-agent"
BIG_AGENT = "bench-big-agent"  # the scale phase: another agent with 2000 x 10 requirements
BIG_SCENARIOS = 2000
SCENARIO = "onboarding"
STEP = "kyc"
CUSTOMER = "bench-missing"
FIELDS = 20
VERSIONS = 3
NEIGHBOURS = 200
YEAR = 365 * 24 * 3600

FLOOR_SELECT = "SELECT * FROM profile_fields WHERE profile_id = %s AND status = 'active'"
PROFILE_ID = "SELECT id FROM customer_profiles WHERE tenant_id = %s AND customer_id = %s"
# Bulk benchmark data, written straight in SQL (store calls would take minutes).
NEIGHBOUR_ROWS = """
WITH p AS (
    INSERT INTO customer_profiles (id, tenant_id, customer_id)
    SELECT gen_random_uuid(), %(tenant_id)s, 'bench-neighbour-' || g
      FROM generate_series(1, %(n)s) g
    RETURNING id, tenant_id
)
INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type, status,
                            source, collected_at, superseded_at)
SELECT gen_random_uuid(), p.tenant_id, p.id, 'field_' || lpad(f::text, 2, '0'),
       to_jsonb('value ' || f || ' v' || v), 'string',
       CASE WHEN v = %(versions)s THEN 'active' ELSE 'superseded' END, 'user_provided',
       now() - make_interval(mins => %(versions)s - v),
       CASE WHEN v = %(versions)s THEN NULL ELSE now() END
  FROM p, generate_series(0, %(fields)s - 1) f, generate_series(1, %(versions)s) v
"""
BIG_AGENT_ROWS = """
INSERT INTO scenario_field_requirements (id, tenant_id, agent_id, scenario_id, field_name,
    step_id, required_level, fallback_action, depends_on_fields, collection_order, origin)
SELECT gen_random_uuid(), %(tenant_id)s, %(agent_id)s, 'scenario-' || lpad(s::text, 4, '0'),
       'field_' || lpad(f::text, 2, '0'), CASE WHEN f = 9 THEN %(step)s END, 'hard', 'ask',
       '[]', f * 10, 'manual'
  FROM generate_series(1, %(scenarios)s) s, generate_series(0, 9) f
"""


def _definition(vtype: ValueType, display: str, prompt: str | None, **extra: Any) -> DefinitionBody:
    return DefinitionBody(value_type=vtype, display_name=display, collection_prompt=prompt, **extra)


def _requirement(order: int, **extra: Any) -> RequirementBody:
    return RequirementBody(collection_order=order, **extra)


VERIFIED = {"required_verification": True}
SOFT = {"required_level": RequiredLevel.soft}
BLOCK, SKIP = FallbackAction.block, FallbackAction.skip
COUNTRIES = ["DE", "AT", "CH", "FR"]
DEFINITIONS: dict[str, DefinitionBody] = {
    "first_name": _definition(ValueType.string, "First name", "Your first name?", is_pii=True),
    "last_name": _definition(ValueType.string, "Last name", "And your last name?", is_pii=True),
    "email": _definition(ValueType.email, "Email", "Your email address?", **VERIFIED),
    "phone": _definition(ValueType.phone, "Phone", "Your phone number?", **VERIFIED),
    "date_of_birth": _definition(ValueType.date, "Date of birth", "Your date of birth?"),
    "country": _definition(ValueType.string, "Country", "Country?", allowed_values=COUNTRIES),
    "postal_address": _definition(ValueType.json, "Address", "Address?", freshness_seconds=YEAR),
    "tax_id": _definition(ValueType.string, "Tax ID", "Your tax ID?", validation_regex=ID_PATTERN),
    "annual_income": _definition(ValueType.number, "Income", None, freshness_seconds=YEAR // 2),
    "marketing_consent": _definition(ValueType.boolean, "Marketing consent", None),
}
# (field, step, body): 9 scenario-wide, 1 for the step; one conditional, one dependent.
REQUIREMENTS: list[tuple[str, str | None, RequirementBody]] = [
    ("first_name", None, _requirement(10)),
    ("last_name", None, _requirement(20)),
    ("email", None, _requirement(30)),
    ("country", None, _requirement(40)),
    ("date_of_birth", STEP, _requirement(50)),
    ("phone", None, _requirement(60, **SOFT)),
    ("postal_address", None, _requirement(70, depends_on_fields=["country"])),
    ("tax_id", None, _requirement(80, when_condition='country == "DE"', fallback_action=BLOCK)),
    ("annual_income", None, _requirement(90, **SOFT, fallback_action=SKIP)),
    ("marketing_consent", None, _requirement(100, **SOFT, fallback_action=SKIP)),
]
# The profile holds half of the required fields (email unverified), plus 15 others.
PRESENT = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "country": "DE",
    "date_of_birth": "1815-12-10",
}
EXPECTED_MISSING = [("email", "unverified")] + [
    (name, "missing")
    for name in ("phone", "postal_address", "tax_id", "annual_income", "marketing_consent")
]


def _other_value(no: int, version: int) -> Any:
    """The profile's other fields: strings, numbers, booleans and JSON, like core's."""
    return [
        f"note {no} v{version} " + "x" * 24,
        no * 1000 + version,
        version % 2 == 0,
        {"line1": f"{no} Main St", "city": "Springfield", "v": version},
    ][no % 4]


async def seed(pool: Pool, conn: RawConn) -> tuple[UUID, UUID]:
    """Tenant, definitions, requirements, the profile and its neighbours, then ANALYZE;
    returns the tenant and profile ids."""
    tenant, _ = await TenantStore(pool).create(f"bench-schema-{uuid.uuid4().hex[:8]}", "warn")
    tid = tenant.tenant_id
    schema = SchemaStore(pool)
    for agent in (AGENT, OTHER_AGENT):
        for name, body in DEFINITIONS.items():
            await schema.put_definition(tid, agent, name, body)
    for field_name, step, requirement in REQUIREMENTS:
        await schema.put_requirement(tid, AGENT, SCENARIO, field_name, step, requirement)
        # Noise the query must filter out: another scenario, another agent, another step.
        await schema.put_requirement(tid, AGENT, "checkout", field_name, step, requirement)
        await schema.put_requirement(tid, OTHER_AGENT, SCENARIO, field_name, step, requirement)
    other_step = _requirement(5)
    await schema.put_requirement(tid, AGENT, SCENARIO, "annual_income", "other-step", other_step)
    store = ProfileStore(pool)
    others = [f"note_{n:02d}" for n in range(FIELDS - len(PRESENT))]
    for version in range(VERSIONS):
        values = {**PRESENT, **{name: _other_value(no, version) for no, name in enumerate(others)}}
        for name, value in values.items():
            new = NewField(value=value, source=Source.user_provided)
            await store.save_field(tid, CUSTOMER, name, new)
    params = {"tenant_id": tid, "n": NEIGHBOURS, "fields": FIELDS, "versions": VERSIONS}
    await conn.execute(NEIGHBOUR_ROWS, params)
    await conn.execute("ANALYZE")
    cur = await conn.execute(PROFILE_ID, (tid, CUSTOMER))
    row = await cur.fetchone()
    assert row is not None
    return tid, row[0]


class RecordingStore(SchemaStore):
    """A SchemaStore that keeps the last statement it sent, so that the SQL-alone row runs
    the library's own query text with its own parameters."""

    sent: tuple[str, dict[str, Any]] | None = None

    async def _one(self, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        self.sent = (query, params)
        return await super()._one(query, params)


@dataclass
class Operations:
    """The timed calls over the seeded dataset; `check` sets `statement` and `row`."""

    conn: RawConn
    store: SchemaStore
    tenant_id: UUID
    profile_id: UUID
    statement: tuple[str, dict[str, Any]] = ("", {})  # the store's, captured
    row: tuple[Any, ...] = ()  # the statement's answer

    async def missing(self, store: SchemaStore | None = None) -> MissingFields:
        """The library call."""
        return await (store or self.store).missing_fields(
            self.tenant_id, CUSTOMER, AGENT, scenario_id=SCENARIO, step_id=STEP
        )

    async def missing_sql(self) -> tuple[Any, ...] | None:
        """The store's statement alone on the raw connection: no pool, no pydantic."""
        cur = await self.conn.execute(*self.statement)
        return await cur.fetchone()

    async def python_only(self) -> MissingFields:
        """The Python side alone on the prefetched row: parsing + the computation."""
        return parse_inputs(self.row)

    async def floor(self) -> list[TupleRow]:
        """Floor: the profile's 20 active rows by an indexed SELECT."""
        cur = await self.conn.execute(FLOOR_SELECT, (self.profile_id,))
        return await cur.fetchall()


LIBRARY = "SchemaStore.missing_fields"
SQL = "missing_fields SQL (raw conn)"
PYTHON = "Python only (parse + compute)"
FLOOR = "floor: 20-row indexed SELECT"


def groups(ops: Operations) -> tuple[Group, Group]:
    """The judged group (library, its split, the floor), and the library at scale."""
    judged = Group(
        name="missing fields, 10 requirements",
        ops={LIBRARY: ops.missing, SQL: ops.missing_sql, PYTHON: ops.python_only, FLOOR: ops.floor},
        floor=FLOOR,
        targets={LIBRARY: MISSING_TARGET_RATIO},
        notes={
            SQL: "the store's statement alone: DB + transfer + JSON decoding",
            PYTHON: "pydantic + missing_fields() on a prefetched row, no I/O",
        },
    )
    scale = Group(
        name=f"missing fields, 10 of {BIG_SCENARIOS * 10 + 31} requirements in the table",
        ops={LIBRARY: ops.missing, FLOOR: ops.floor},
        floor=FLOOR,
        notes={LIBRARY: "diagnostic: another agent has 20,000 requirements"},
    )
    return judged, scale


def parse_inputs(row: Sequence[Any]) -> MissingFields:
    """What SchemaStore.missing_fields does after its query (`check` compares the answers)."""
    requirements = [Requirement.model_validate(doc) for doc in row[0]]
    definitions = {d["name"]: DefinitionHints.model_validate(d) for d in row[1]}
    current = {f["name"]: CurrentValue.model_validate(f) for f in row[2]}
    return missing_fields(requirements, definitions, current, row[3])


async def check(ops: Operations) -> None:
    """Capture the store's statement and its row; refuse a dataset of the wrong shape."""
    recorder = RecordingStore(ops.store.pool)
    answer = await ops.missing(recorder)
    assert recorder.sent is not None
    ops.statement = recorder.sent
    row = await ops.missing_sql()
    assert row is not None
    ops.row = tuple(row)
    sizes = [len(REQUIREMENTS), len(DEFINITIONS), FIELDS]
    _expect("requirements, definitions, current fields", [len(x) for x in ops.row[:3]], sizes)
    _expect("floor rows", len(await ops.floor()), FIELDS)
    got = [(m.field_name, m.reason.value) for m in answer.missing]
    _expect("missing fields", got, EXPECTED_MISSING)
    _expect("can_proceed", answer.can_proceed, False)
    _expect("Python-only answer", parse_inputs(ops.row), answer)


def _expect(what: str, got: object, want: object) -> None:
    if got != want:
        raise RuntimeError(f"benchmark dataset is wrong: {what} = {got!r}, expected {want!r}")


async def bench_missing(server: Server, url: str, config: dict[str, int]) -> dict[str, Any]:
    """Seed, check and time the judged group, then the scale phase."""
    iterations, warmup = config["missing_iterations"], config["missing_warmup"]
    pool = await open_pool(url)
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            info = await server_info(conn, server)
            log(f"PostgreSQL {info['server_version']} ({server.kind}, {info['transport']})")
            started = time.perf_counter()
            ops = Operations(conn, SchemaStore(pool), *await seed(pool, conn))
            log(f"seeded in {time.perf_counter() - started:.1f}s")
            await check(ops)
            judged, scale = groups(ops)
            results = {judged.name: await _timed(judged, iterations, warmup)}

            big = {"agent_id": BIG_AGENT, "step": STEP, "scenarios": BIG_SCENARIOS}
            await conn.execute(BIG_AGENT_ROWS, {"tenant_id": ops.tenant_id, **big})
            await conn.execute("ANALYZE")
            await check(ops)
            results[scale.name] = await _timed(scale, max(100, iterations // 2), warmup)
    finally:
        await pool.close()
    table = report.rows([judged, scale], results)
    return {"server": info, "table": table}


async def _timed(group: Group, iterations: int, warmup: int) -> dict[str, Stats]:
    """One group, interleaved, with a progress line."""
    started = time.perf_counter()
    stats = await measure_interleaved(group.ops, iterations=iterations, warmup=warmup)
    log(f"timed {group.name!r} in {time.perf_counter() - started:.1f}s")
    return stats


# -- running -----------------------------------------------------------------------------


ENVIRONMENT = {  # config key: (variable, default)
    "validation_iterations": ("CCV_BENCH_VALIDATION_ITERATIONS", 20_000),
    "validation_warmup": ("CCV_BENCH_VALIDATION_WARMUP", 2_000),
    "missing_iterations": ("CCV_BENCH_SCHEMA_ITERATIONS", 1_500),  # the scale phase: half
    "missing_warmup": ("CCV_BENCH_SCHEMA_WARMUP", 200),
}


def run_section(server: Server) -> None:
    """Both parts on a PostgreSQL server: print the tables and write schema.json. A missed
    target is marked MISS, never turned into a failing exit."""
    config = {key: int(os.environ.get(var) or n) for key, (var, n) in ENVIRONMENT.items()}
    output = Path(os.environ.get("CCV_BENCH_SCHEMA_OUTPUT") or DEFAULT_OUTPUT)
    started = time.perf_counter()
    load_start = os.getloadavg()

    validation = run_validation(config["validation_iterations"], config["validation_warmup"])
    with fresh_database(server.url) as url:
        outcome, loop = run_async(lambda: bench_missing(server, url, config))
    elapsed = time.perf_counter() - started
    load_end = os.getloadavg()

    table = outcome["table"]
    print("== schema layer (issue #3): value validation ==")
    print(render_validation(validation))
    print()
    print("== schema layer (issue #3): missing fields ==")
    print(report.render_table(table))
    print()
    judged = [(f"validate {r['operation']}", r["passed"]) for r in validation if r["target_p50_us"]]
    print(report.summary(table, extra=judged))
    cpus = os.cpu_count()
    print(
        f"load average (1 min) {load_start[0]:.2f} at start, {load_end[0]:.2f} at end; {cpus} CPUs"
    )
    document = {
        "benchmark": "schema",
        "issue": 3,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "config": {**config, "event_loop": loop},
        "machine": {
            "cpu_count": cpus,
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in load_end],
            "platform": platform.platform(),
            "python": platform.python_version(),
            "psycopg_impl": psycopg.pq.__impl__,
            **{pkg: metadata.version(pkg) for pkg in PACKAGES},
        },
        "server": outcome["server"],
        "validation": validation,
        "missing_fields": table,
    }
    report.write_json(output, document)
    log(f"wrote {output} ({elapsed:.0f}s)")


def main() -> int:
    """Run on the configured PostgreSQL or an embedded one."""
    with postgres_server() as server:
        run_section(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
