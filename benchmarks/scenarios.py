"""The data the benchmark runs against and the operations it times, grouped for comparison.

Each group pairs library calls with a raw psycopg floor doing the least work that could
answer the same question on the same server, plus diagnostics that split the library's
cost (the store's own SQL sent on a raw connection, a field with a long history).
"""

from __future__ import annotations

import functools
import itertools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from ccvault.domain.models import Direction, ProfileField, Source, SourceItemType
from ccvault.domain.writes import NewAsset, NewField
from ccvault.storage import lineage as lineage_module
from ccvault.storage import profiles as profiles_module
from ccvault.storage.db import Pool
from ccvault.storage.lineage import lineage
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.tenants import TenantStore
from harness import Op

RawConn = AsyncConnection[TupleRow]
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")

FIELDS = 20  # fields per profile
VERSIONS = 3  # versions per field at seed time: 40 superseded + 20 active
NEIGHBOURS = 6  # other profiles of the same shape in the tenant
CHAIN_DEPTH = 10  # lineage: 11 items, the leaf's ancestors at depth 1..10
LONG_HISTORY = 2000  # superseded versions of one field, for the history diagnostics
ASSET_KINDS = ("passport", "utility_bill")  # assets per profile

READ = "bench-read"
WRITE = "bench-write"
HISTORY = "bench-history"
CHAIN = "bench-chain"
LONG_FIELD = "field_00"

FLOOR_SELECT = """
SELECT * FROM profile_fields
 WHERE tenant_id = %(tenant_id)s AND profile_id = %(profile_id)s
   AND status = 'active' AND deleted_at IS NULL
"""
FLOOR_INSERT = "INSERT INTO bench_floor_insert (id, note, doc) VALUES (%s, %s, %s)"
FLOOR_CTE = """
WITH RECURSIVE walk (depth, id, parent) AS (
    SELECT 0, id, parent FROM bench_floor_tree WHERE id = %(id)s
    UNION ALL
    SELECT w.depth + 1, t.id, t.parent
      FROM walk w JOIN bench_floor_tree t ON t.id = w.parent
     WHERE w.depth < %(max_depth)s
)
SELECT depth, id, parent FROM walk ORDER BY depth
"""
SCRATCH_TABLES = """
CREATE TABLE bench_floor_insert (id uuid PRIMARY KEY, note text NOT NULL, doc jsonb NOT NULL);
CREATE TABLE bench_floor_tree (id uuid PRIMARY KEY, parent uuid);
"""
# Superseded versions written straight in SQL: 2000 store writes would take seconds.
LONG_HISTORY_ROWS = """
INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type, status,
                            source, collected_at, updated_at, superseded_at)
SELECT gen_random_uuid(), p.tenant_id, p.id, %(name)s, to_jsonb('old ' || g), 'string',
       'superseded', 'user_provided', now() - make_interval(mins => g),
       now() - make_interval(mins => g), now() - make_interval(mins => g)
  FROM customer_profiles p, generate_series(1, %(n)s) g
 WHERE p.tenant_id = %(tenant_id)s AND p.customer_id = %(customer_id)s
"""


def _parameters(query: str, known: dict[str, Any]) -> dict[str, Any]:
    """Every named parameter the query uses, None where we have no value (optional ones).

    Filling by the query's own placeholders keeps this diagnostic working when the store
    grows a new optional parameter.
    """
    return {name: known.get(name) for name in _placeholders(query)}


@functools.cache
def _placeholders(query: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_PLACEHOLDER.findall(query)))


def _value(field_no: int, version: int) -> Any:
    """A mix of value types, like a real profile (strings, numbers, booleans, JSON)."""
    kind = field_no % 4
    if kind == 0:
        return f"value {field_no} v{version} " + "x" * 24
    if kind == 1:
        return field_no * 1000 + version
    if kind == 2:
        return version % 2 == 0
    return {"line1": f"{field_no} Main St", "city": "Springfield", "v": version}


@dataclass
class Dataset:
    """Ids the operations need, found or created by `seed`."""

    tenant_id: UUID
    read_profile_id: UUID
    chain_leaf_id: UUID
    tree_leaf_id: UUID


@dataclass(frozen=True)
class Group:
    """Operations timed together; `floor` is the raw baseline the others are divided by."""

    name: str
    ops: dict[str, Op]
    floor: str | None
    targets: dict[str, float] = field(default_factory=dict)  # op -> max p50 ratio
    notes: dict[str, str] = field(default_factory=dict)  # op -> what it shows


async def seed(pool: Pool, conn: RawConn) -> Dataset:
    """Create the tenant, profiles, assets, lineage chain and scratch tables, then ANALYZE."""
    tenant, _ = await TenantStore(pool).create(f"bench-{uuid.uuid4().hex[:8]}", "warn")
    tid = tenant.tenant_id
    store = ProfileStore(pool)
    profiles = [READ, WRITE, HISTORY] + [f"bench-other-{n}" for n in range(NEIGHBOURS)]
    for customer in profiles:
        await seed_profile(store, tid, customer)

    leaf: ProfileField | None = None
    for depth in range(CHAIN_DEPTH + 1):
        leaf = await store.save_field(
            tid,
            CHAIN,
            f"chain_{depth:02d}",
            NewField(
                value=f"step {depth}",
                source=Source.llm_extracted,
                source_item_id=str(leaf.id) if leaf else None,
                source_item_type=SourceItemType.profile_field if leaf else None,
            ),
        )
    assert leaf is not None

    await conn.execute(
        LONG_HISTORY_ROWS,
        {"tenant_id": tid, "customer_id": HISTORY, "name": LONG_FIELD, "n": LONG_HISTORY},
    )
    await conn.execute(SCRATCH_TABLES)
    tree_ids = [uuid.uuid4() for _ in range(CHAIN_DEPTH + 1)]
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO bench_floor_tree (id, parent) VALUES (%s, %s)",
            [(node, tree_ids[i - 1] if i else None) for i, node in enumerate(tree_ids)],
        )
    # Unrelated rows, so the walk is an index lookup in a table, not a scan of 11 rows.
    await conn.execute(
        "INSERT INTO bench_floor_tree SELECT gen_random_uuid(), gen_random_uuid()"
        " FROM generate_series(1, 5000)"
    )
    await conn.execute("ANALYZE")

    cur = await conn.execute(
        "SELECT id FROM customer_profiles WHERE tenant_id = %s AND customer_id = %s",
        (tid, READ),
    )
    row = await cur.fetchone()
    assert row is not None
    return Dataset(tid, row[0], leaf.id, tree_ids[-1])


async def seed_profile(store: ProfileStore, tenant_id: UUID, customer_id: str) -> None:
    """One profile of the benchmark's shape: FIELDS fields x VERSIONS versions, 2 assets."""
    for version in range(VERSIONS):
        for no in range(FIELDS):
            new = NewField(value=_value(no, version), source=Source.user_provided)
            await store.save_field(tenant_id, customer_id, f"field_{no:02d}", new)
    for kind in ASSET_KINDS:
        await store.save_asset(tenant_id, customer_id, _asset(kind))


def _asset(kind: str) -> NewAsset:
    return NewAsset(
        name=kind,
        asset_type="document",
        storage_provider="s3",
        storage_path=f"s3://bench-bucket/{kind}/{uuid.uuid4()}.pdf",
        mime_type="application/pdf",
        size_bytes=123_456,
        checksum="sha256:" + "0" * 64,
    )


class Operations:
    """The timed calls, as zero-argument coroutines over one seeded dataset."""

    def __init__(self, pool: Pool, conn: RawConn, data: Dataset) -> None:
        self.pool = pool
        self.conn = conn
        self.data = data
        self.store = ProfileStore(pool)
        # The library write and its raw-SQL twin rotate over the same 20 fields of the same
        # profile (the same rows and index pages, so their costs compare), leaving each
        # field about a hundred versions by the end (long histories are measured apart).
        self._names: Iterator[str] = itertools.cycle(f"field_{n:02d}" for n in range(FIELDS))
        self._sql_names: Iterator[str] = itertools.cycle(f"field_{n:02d}" for n in range(FIELDS))
        # Inputs are built before timing: parsing a request is not the store's cost.
        self._inputs: Iterator[NewField] = itertools.cycle(
            [NewField(value=f"new value {n}", source=Source.user_provided) for n in range(64)]
        )

    # -- cold profile read ----------------------------------------------------------

    async def profile_read(self) -> object:
        """The library read: one query, JSON built in PostgreSQL, parsed by pydantic."""
        return await self.store.get_profile(self.data.tenant_id, READ)

    async def profile_read_sql(self) -> object:
        """The store's get_profile SQL alone on a raw connection: no pool, no parsing."""
        query = profiles_module.Q["get_profile"]
        known = {"tenant_id": self.data.tenant_id, "customer_id": READ, "include_history": False}
        cur = await self.conn.execute(query, _parameters(query, known))
        return await cur.fetchone()

    async def profile_read_long_history(self) -> object:
        """The same read for a profile one of whose fields has thousands of old versions."""
        return await self.store.get_profile(self.data.tenant_id, HISTORY)

    async def floor_select(self) -> object:
        """Floor: the 20 active rows of the profile by an indexed SELECT."""
        cur = await self.conn.execute(
            FLOOR_SELECT,
            {"tenant_id": self.data.tenant_id, "profile_id": self.data.read_profile_id},
        )
        return await cur.fetchall()

    # -- field write with supersede ---------------------------------------------------

    async def field_write(self) -> object:
        """The library write: a new active version superseding the current one."""
        return await self.store.save_field(
            self.data.tenant_id, WRITE, next(self._names), next(self._inputs)
        )

    async def field_write_sql(self) -> object:
        """The store's write statement on a raw connection: one function call."""
        new = next(self._inputs)
        query = profiles_module.Q["save_field"]
        known = {
            **new.model_dump(exclude={"agent_id"}),
            "id": uuid.uuid4(),
            "tenant_id": self.data.tenant_id,
            "customer_id": WRITE,
            "name": next(self._sql_names),
            "value": Jsonb(new.value),
            "value_type": "string",
            "source_metadata": Jsonb(new.source_metadata),
        }
        cur = await self.conn.execute(query, _parameters(query, known))
        return await cur.fetchone()

    async def field_write_long_history(self) -> object:
        """A library write to a field with thousands of superseded versions."""
        return await self.store.save_field(
            self.data.tenant_id, HISTORY, LONG_FIELD, next(self._inputs)
        )

    async def floor_insert_commit(self) -> None:
        """Floor: BEGIN, one INSERT of a uuid, a text and a jsonb, COMMIT."""
        async with self.conn.transaction():
            await self.conn.execute(
                FLOOR_INSERT, (uuid.uuid4(), "benchmark row", Jsonb({"value": "x", "n": 1}))
            )

    # -- lineage ---------------------------------------------------------------------

    async def lineage_chain(self) -> object:
        """The library lineage walk from the deepest of 11 linked fields to the root."""
        return await lineage(
            self.pool, self.data.tenant_id, self.data.chain_leaf_id, Direction.ancestors
        )

    async def lineage_chain_sql(self) -> object:
        """The store's ancestors SQL alone on a raw connection: no pool, no parsing."""
        query = lineage_module.Q["ancestors"]
        known = {"tenant_id": self.data.tenant_id, "id": self.data.chain_leaf_id}
        cur = await self.conn.execute(query, _parameters(query, {**known, "max_depth": 10}))
        return await cur.fetchall()

    async def floor_cte(self) -> object:
        """Floor: a depth-10 recursive CTE over a plain (id, parent) table."""
        cur = await self.conn.execute(
            FLOOR_CTE, {"id": self.data.tree_leaf_id, "max_depth": CHAIN_DEPTH}
        )
        return await cur.fetchall()

    # -- reference -------------------------------------------------------------------

    async def round_trip(self) -> object:
        """One client-server round trip (SELECT 1) on the raw connection."""
        cur = await self.conn.execute("SELECT 1")
        return await cur.fetchone()

    async def pool_checkout(self) -> None:
        """Taking a connection from the pool and giving it back, with no query."""
        async with self.pool.connection():
            pass

    # -- grouping --------------------------------------------------------------------

    def groups(self) -> list[Group]:
        """The groups to time, each with its floor, targets (from issue #2) and notes."""
        return [
            Group(
                name="cold profile read",
                ops={
                    "get_profile": self.profile_read,
                    "get_profile SQL (raw conn)": self.profile_read_sql,
                    "get_profile, 2000-version field": self.profile_read_long_history,
                    "floor: 20-row indexed SELECT": self.floor_select,
                },
                floor="floor: 20-row indexed SELECT",
                targets={"get_profile": 2.0},
                notes={
                    "get_profile SQL (raw conn)": "the query alone; the rest is pool+pydantic",
                    "get_profile, 2000-version field": "status summary counts every version",
                },
            ),
            Group(
                name="field write with supersede",
                ops={
                    "save_field": self.field_write,
                    "save_field SQL (raw conn)": self.field_write_sql,
                    "save_field, 2000-version field": self.field_write_long_history,
                    "floor: INSERT+COMMIT": self.floor_insert_commit,
                },
                floor="floor: INSERT+COMMIT",
                targets={"save_field": 1.5},
                notes={
                    "save_field SQL (raw conn)": "one call of ccv_save_field: 1 round trip",
                    "save_field, 2000-version field": "old versions are outside the current index",
                },
            ),
            Group(
                name="lineage depth 10",
                ops={
                    "lineage ancestors": self.lineage_chain,
                    "lineage SQL (raw conn)": self.lineage_chain_sql,
                    "floor: recursive CTE depth 10": self.floor_cte,
                },
                floor="floor: recursive CTE depth 10",
                targets={"lineage ancestors": 1.5},
                notes={"lineage SQL (raw conn)": "the query alone; the rest is pool+pydantic"},
            ),
            Group(
                name="reference",
                ops={
                    "round trip (SELECT 1)": self.round_trip,
                    "pool checkout, no query": self.pool_checkout,
                },
                floor=None,
                notes={
                    "round trip (SELECT 1)": "cost of one extra statement",
                    "pool checkout, no query": "paid once per library call",
                },
            ),
        ]


async def check(ops: Operations) -> None:
    """Refuse to time a dataset of the wrong shape: a wrong number means a wrong benchmark."""
    profile: Any = await ops.profile_read()
    summary = profile.field_status_summary
    _expect("fields read", len(profile.fields), FIELDS)
    _expect("assets read", len(profile.assets), 2)
    _expect("active versions", summary.active, FIELDS)
    _expect("superseded versions", summary.superseded, FIELDS * (VERSIONS - 1))
    _expect("floor SELECT rows", len(await _rows(ops.floor_select())), FIELDS)
    chain: Any = await ops.lineage_chain()
    _expect("lineage entries", len(chain.chain), CHAIN_DEPTH + 1)
    _expect("lineage truncated", chain.truncated, False)
    # The query answers one row: the whole lineage as JSON.
    _expect("lineage SQL rows", len(await _rows(ops.lineage_chain_sql())), 1)
    _expect("floor CTE rows", len(await _rows(ops.floor_cte())), CHAIN_DEPTH + 1)
    history: Any = await ops.profile_read_long_history()
    _expect(
        "long-history superseded",
        history.field_status_summary.superseded,
        FIELDS * (VERSIONS - 1) + LONG_HISTORY,
    )


async def _rows(result: Any) -> list[Any]:
    return list(await result)


def _expect(what: str, got: object, want: object) -> None:
    if got != want:
        raise RuntimeError(f"benchmark dataset is wrong: {what} = {got!r}, expected {want!r}")
