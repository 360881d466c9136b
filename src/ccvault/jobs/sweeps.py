"""The two periodic sweeps, as plain async functions (no queue imports): the job queue,
the admin routes and the tests all call these same functions.

Both walk an index in keyset windows, one short autocommit statement per window (no long
transactions or table locks), are idempotent (a second run changes nothing), never touch
superseded items, and right after each window invalidate the cache entries of the
profiles it changed (orphan detection first bumps their versions: reads show orphans;
expiry changes nothing a read shows), so a sweep that dies midway leaves nothing stale.
A session-level advisory lock keeps a periodic run and a manual run of the same sweep
from overlapping.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID

import structlog
from psycopg import AsyncConnection

from ccvault.config import DEFAULT_EXPIRE_PAUSE, DEFAULT_ORPHAN_PAUSE
from ccvault.domain.audit import Action, job_actor
from ccvault.domain.privacy import subject_hash
from ccvault.storage import audit as audit_sql
from ccvault.storage.cache import Touched
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.queries import load

_TABLES = {
    "fields": ("profile_fields", ", updated_at = clock_timestamp()"),
    "assets": ("profile_assets", ""),
}
# PostgreSQL 18 parses a stored generated column's expression (source_uuid's) again for
# every row an UPDATE changes when the UPDATE sets none of its inputs: a sixth of an
# expiry run. Setting one input to itself makes it parse once per statement; on older
# servers that would only add a recomputation per row, so they get the plain UPDATE.
_REGENERATE = ", source_item_type = t.source_item_type"
_PG18 = 180000


def _statement(text: str, table: str, touch: str, regenerate: str) -> str:
    return (
        text.replace("{table}", table).replace("{touch}", touch).replace("{regenerate}", regenerate)
    )


# One statement per sweep and table (and, for expiry, per server generation), built
# from constants only.
_TEXTS = load("sweeps.sql", "ccvault.jobs")
Q = {
    f"{sweep}_{kind}": _statement(text, table, touch, "")
    for sweep, text in _TEXTS.items()
    for kind, (table, touch) in _TABLES.items()
}
Q_PG18 = {
    f"expire_window_{kind}": _statement(_TEXTS["expire_window"], table, touch, _REGENERATE)
    for kind, (table, touch) in _TABLES.items()
}
log = structlog.get_logger("ccvault.jobs")

# Rows per window: keeps each statement well under 200 ms on a small machine (about
# 10 ms per 1,000 rows for expiry and 25 ms for orphan detection here). Larger windows
# cost the same per row (the walk's plan is pinned: see _run) but did not help requests
# running alongside.
BATCH_SIZE = 2000
# An incremental orphan run starts this long before the previous run started: a delete
# committed just after that run read was stamped (clock_timestamp) before it began.
INCREMENTAL_OVERLAP = timedelta(minutes=10)
FULL_PASS_EVERY = timedelta(days=1)
Q_RUNS = {
    # The last run's start, less the overlap; NULL (a full pass) when none or the last
    # full pass is a day old.
    "incremental_since": """
        SELECT last_started_at - %(overlap)s FROM sweep_runs
         WHERE sweep = %(sweep)s AND last_full_at > now() - %(full_every)s
    """,
    # At the end of a run that completed, when it started (taken before its first read).
    "record_run": """
        INSERT INTO sweep_runs AS r (sweep, last_started_at, last_full_at)
        VALUES (%(sweep)s, %(started)s, CASE WHEN %(full)s THEN %(started)s END)
        ON CONFLICT (sweep) DO UPDATE SET
            last_started_at = excluded.last_started_at,
            last_full_at = coalesce(excluded.last_full_at, r.last_full_at)
    """,
}
EXPIRE_LOCK = 7_337_101
ORPHAN_LOCK = 7_337_102
RETENTION_LOCK = 7_337_103
# The tenants the retention sweep works for, each with its cutoff (taken once per run).
Q_RETENTION_TENANTS = """
    SELECT id, now() - make_interval(days => history_retention_days) FROM tenants
     WHERE history_retention_days IS NOT NULL
       AND (%(tenant_id)s::uuid IS NULL OR id = %(tenant_id)s::uuid)
     ORDER BY id
"""
RETENTION_ACTOR = job_actor("apply_history_retention")
_BEFORE_ALL = uuid.UUID(int=0)
_BEFORE_ALL_TIMES = "-infinity"


@dataclass(frozen=True)
class SweepResult:
    """What a sweep changed: `updated = fields + assets`."""

    fields: int
    assets: int

    @property
    def updated(self) -> int:
        """Items changed in all."""
        return self.fields + self.assets

    def as_dict(self) -> dict[str, int]:
        """The admin routes' answer."""
        return {"updated": self.updated, "fields": self.fields, "assets": self.assets}


Invalidate = Callable[[list[Touched]], Awaitable[None]]
Sweep = Callable[[AsyncConnection[Any], Invalidate], Awaitable[int]]
Sweeps = Callable[[AsyncConnection[Any], Invalidate], Awaitable[tuple[int, int]]]


def _expire(kind: str, tenant_id: UUID | None, batch: int, pause: float) -> Sweep:
    """Walk the items with an expires_at window by window; returns the items changed."""

    async def sweep(conn: AsyncConnection[Any], invalidate: Invalidate) -> int:
        queries = Q_PG18 if conn.info.server_version >= _PG18 else Q
        query = queries[f"expire_window_{kind}"]
        changed, after_at, after_id = 0, _BEFORE_ALL_TIMES, _BEFORE_ALL
        while True:
            started = time.perf_counter()
            # One statement in autocommit mode: each window is its own short transaction.
            cur = await conn.execute(
                query,
                {
                    "tenant_id": tenant_id,
                    "batch": batch,
                    "after_at": after_at,
                    "after_id": after_id,
                },
            )
            row = await cur.fetchone()
            assert row is not None
            end_at, end_id, scanned, count, tenant_ids, customer_ids, versions = row
            changed += int(count)
            # The window answers its profiles and their versions: nothing to look up.
            await invalidate(list(map(Touched, tenant_ids, customer_ids, versions)))
            if scanned < batch or end_at is None:
                return changed
            after_at, after_id = end_at, end_id
            await _rest(pause, started)

    return sweep


async def _rest(pause: float, started: float) -> None:
    """Sleep `pause` times as long as the window begun at `started` took: the sweep then
    keeps at most 1/(1 + pause) of a CPU, and requests find the rest free."""
    if pause:
        await asyncio.sleep(pause * (time.perf_counter() - started))


def _orphan(query: str, tenant_id: UUID | None, batch: int, pause: float) -> Sweep:
    """Walk the derived items window by window; returns the items changed."""

    async def sweep(conn: AsyncConnection[Any], invalidate: Invalidate) -> int:
        changed, after = 0, _BEFORE_ALL
        while True:
            started = time.perf_counter()
            cur = await conn.execute(
                query, {"tenant_id": tenant_id, "batch": batch, "after": after}
            )
            row = await cur.fetchone()
            assert row is not None
            window_end, scanned, count, tenant_ids, customer_ids, versions = row
            changed += int(count)
            # Reads show orphans (status is shown as stored): the window bumped the
            # versions of its profiles, whose cache entries go now.
            await invalidate(list(map(Touched, tenant_ids, customer_ids, versions)))
            if scanned < batch or window_end is None:
                return changed
            after = window_end
            await _rest(pause, started)

    return sweep


def _orphan_from_sources(
    since: datetime, tenant_id: UUID | None, batch: int, pause: float
) -> Callable[[AsyncConnection[Any], Invalidate], Awaitable[tuple[int, int]]]:
    """Walk the fields and assets deleted since `since` window by window and orphan the
    items derived from each window's sources; returns the (fields, assets) changed."""

    # A source often has several derived items (two in the benchmark's dataset): a window
    # of batch/2 sources changes about as many rows as a window of the full pass.
    sources_batch = max(1, batch // 2)

    async def sweep(conn: AsyncConnection[Any], invalidate: Invalidate) -> tuple[int, int]:
        counts = {"fields": 0, "assets": 0}
        for source_kind in ("fields", "assets"):
            after_at: datetime | str = _BEFORE_ALL_TIMES
            after_id = _BEFORE_ALL
            while True:
                started = time.perf_counter()
                cur = await conn.execute(
                    Q[f"deleted_sources_{source_kind}"],
                    {
                        "since": since,
                        "tenant_id": tenant_id,
                        "batch": sources_batch,
                        "after_at": after_at,
                        "after_id": after_id,
                    },
                )
                row = await cur.fetchone()
                assert row is not None
                sources, end_at, end_id = row
                if not sources:
                    break
                # A source of either kind may have derived items of either kind.
                for derived_kind in ("fields", "assets"):
                    cur = await conn.execute(
                        Q[f"orphan_derived_{derived_kind}"],
                        {"sources": sources, "tenant_id": tenant_id},
                    )
                    found = await cur.fetchone()
                    assert found is not None
                    count, tenant_ids, customer_ids, versions = found
                    counts[derived_kind] += int(count)
                    await invalidate(list(map(Touched, tenant_ids, customer_ids, versions)))
                if len(sources) < sources_batch:
                    break
                after_at, after_id = end_at, end_id
                await _rest(pause, started)
        return counts["fields"], counts["assets"]

    return sweep


# Profile versions a run remembers having tombstoned; past this many it forgets them all
# and starts again (a tombstone sent twice is harmless), so a sweep over millions of
# profiles holds a few megabytes, not one entry per profile.
TOMBSTONED_MEMORY = 100_000


_Key = TypeVar("_Key", bound=Hashable)


class _FirstTimes(Generic[_Key]):
    """What a sweep run has met so far, at most TOMBSTONED_MEMORY of it."""

    def __init__(self) -> None:
        self._seen: set[_Key] = set()

    def fresh(self, keys: Iterable[_Key]) -> list[bool]:
        """For each key, whether this run meets it for the first time (it now has)."""
        first = []
        for key in keys:
            new = key not in self._seen
            if new:
                if len(self._seen) >= TOMBSTONED_MEMORY:
                    self._seen.clear()
                self._seen.add(key)
            first.append(new)
        return first


class _Tombstoned(_FirstTimes[tuple[UUID, str, int]]):
    """The (tenant, customer, version) a sweep run has tombstoned so far."""

    def first_time(self, touched: list[Touched]) -> list[Touched]:
        """The profile versions of `touched` not tombstoned before in this run (each one
        once, in order), now counted as tombstoned."""
        keys = ((t.tenant_id, t.customer_id, t.version) for t in touched)
        return list(itertools.compress(touched, self.fresh(keys)))


async def _run(
    store: ProfileStore,
    name: str,
    lock_key: int,
    tenant_id: UUID | None,
    field_sweep: Sweep,
    asset_sweep: Sweep,
    *,
    incremental: Callable[[datetime], Sweeps] | None = None,
) -> SweepResult:
    started = time.perf_counter()
    profiles = 0
    tombstoned = _Tombstoned()

    async def invalidate(touched: list[Touched]) -> None:
        """After each committed batch: drop its profiles' cache entries, each profile
        version once per run (expiry bumps no version, so a profile whose due items fall
        in several windows is tombstoned in the first only)."""
        nonlocal profiles
        fresh = tombstoned.first_time(touched)
        if store.cache is not None and fresh:
            await store.cache.invalidate(fresh)
        profiles += len(fresh)

    async with store.pool.connection() as conn:
        # Session-level lock on this connection: a second runner waits for the first, for
        # as long as that runs (the vault's statement timeout bounds the windows, not this).
        await conn.execute("SET statement_timeout = 0")
        try:
            await conn.execute("SELECT pg_advisory_lock(%s)", (lock_key,))
        finally:
            await conn.execute("RESET statement_timeout")
        # Windows walk an index in order and stop after `batch` rows. How many rows are
        # due is hard to estimate, and past a few thousand the planner may prefer to
        # collect every due row (a bitmap or sequential scan) and sort them: seen here
        # at 5,000 rows a window, 360 ms statements instead of 50 ms. The walk is the
        # only plan wanted, so this session offers no other.
        await conn.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
        mode = "full"
        try:
            run_started, since = None, None
            if incremental:
                # Taken before the run reads anything: the next run starts from here.
                cur = await conn.execute("SELECT clock_timestamp()")
                run_started = (await cur.fetchone() or [None])[0]
                since = await _incremental_since(conn, name)
            if since is not None and incremental is not None:
                mode = "incremental"
                fields, assets = await incremental(since)(conn, invalidate)
            else:
                fields = await field_sweep(conn, invalidate)
                assets = await asset_sweep(conn, invalidate)
            if incremental:
                await conn.execute(
                    Q_RUNS["record_run"],
                    {"sweep": name, "started": run_started, "full": since is None},
                )
        finally:
            await conn.execute("RESET enable_seqscan; RESET enable_bitmapscan")
            await conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key,))
    result = SweepResult(fields, assets)
    # Periodic runs that change nothing are most runs: keep them out of an INFO log.
    emit = log.info if fields or assets else log.debug
    emit(
        f"{name} finished",
        mode=mode,
        tenant_id=str(tenant_id) if tenant_id else None,
        fields=fields,
        assets=assets,
        profile_versions=profiles,
        seconds=round(time.perf_counter() - started, 3),
    )
    return result


async def _incremental_since(conn: AsyncConnection[Any], name: str) -> datetime | None:
    """Where an incremental run of sweep `name` starts: a little before the last run
    started; None when a full pass is due (never run, or none for FULL_PASS_EVERY)."""
    cur = await conn.execute(
        Q_RUNS["incremental_since"],
        {"sweep": name, "overlap": INCREMENTAL_OVERLAP, "full_every": FULL_PASS_EVERY},
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def expire_stale_fields(
    store: ProfileStore,
    tenant_id: UUID | None = None,
    *,
    batch: int = BATCH_SIZE,
    pause: float = DEFAULT_EXPIRE_PAUSE,
) -> SweepResult:
    """Active fields and assets whose expires_at has passed become `expired` (every
    tenant when none is given). After each window the sweep sleeps `pause` times as long
    as the window took (0: no pause): reads already show these items expired, so the
    sweep has no deadline but its next tick."""
    # Reads already showed these items expired (effective expiry): no new versions, only
    # the cache entries dropped, at the versions the batch read.
    return await _run(
        store,
        "expire_stale_fields",
        EXPIRE_LOCK,
        tenant_id,
        _expire("fields", tenant_id, batch, pause),
        _expire("assets", tenant_id, batch, pause),
    )


async def detect_orphaned_items(
    store: ProfileStore,
    tenant_id: UUID | None = None,
    *,
    batch: int = BATCH_SIZE,
    pause: float = DEFAULT_ORPHAN_PAUSE,
    incremental: bool = False,
) -> SweepResult:
    """Active items whose profile_field/profile_asset source is gone or soft-deleted
    become `orphaned`; session, tool and external sources never do. After each window
    the sweep sleeps `pause` times as long as the window took (0: no pause).

    `incremental` (the periodic job, over every tenant): only the items derived from the
    sources deleted since the last run started (less INCREMENTAL_OVERLAP), unless no
    full pass has run for FULL_PASS_EVERY: then this run is one."""
    return await _run(
        store,
        "detect_orphaned_items",
        ORPHAN_LOCK,
        tenant_id,
        _orphan(Q["orphan_window_fields"], tenant_id, batch, pause),
        _orphan(Q["orphan_window_assets"], tenant_id, batch, pause),
        incremental=(
            (lambda since: _orphan_from_sources(since, tenant_id, batch, pause))
            if incremental and tenant_id is None
            else None
        ),
    )


class _RetentionAudit(_FirstTimes[tuple[UUID, str]]):
    """The retention run's audit entries (DESIGN §8: `job:<name>`): it deletes stored
    versions of a customer's data, so each profile it deleted from gets one entry per
    kind and run (`field.delete` / `asset.delete`, target `history`), written in the
    window's transaction, one statement per window. Remembers at most TOMBSTONED_MEMORY
    profiles (past that, a profile may get a second entry in one run)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: dict[UUID, bytes] = {}

    async def record(
        self, conn: AsyncConnection[Any], tenant: UUID, action: Action, customer_ids: list[str]
    ) -> None:
        keys = [(tenant, customer_id) for customer_id in customer_ids]
        fresh = list(itertools.compress(customer_ids, self.fresh(keys)))
        if not fresh:
            return
        secret = self._secrets.get(tenant)
        if secret is None:
            secret = self._secrets[tenant] = await audit_sql.subject_secret(conn, tenant)
        entries = [(action, subject_hash(secret, c), "history") for c in fresh]
        await audit_sql.note_many(conn, tenant, RETENTION_ACTOR, entries)


def _retain(kind: str, tenant_id: UUID | None, batch: int, pause: float) -> Sweep:
    """For each tenant with a history retention, walk its history rows, then its current
    rows past their expires_at, window by window; returns the rows deleted."""
    action = Action.field_delete if kind == "fields" else Action.asset_delete

    async def sweep(conn: AsyncConnection[Any], invalidate: Invalidate) -> int:
        cur = await conn.execute(Q_RETENTION_TENANTS, {"tenant_id": tenant_id})
        deleted = 0
        audit = _RetentionAudit()
        for tenant, cutoff in await cur.fetchall():
            for expired in (False, True):
                after_at: datetime | str = _BEFORE_ALL_TIMES
                after_id = _BEFORE_ALL
                while True:
                    started = time.perf_counter()
                    # The window and its audit entries commit together.
                    async with conn.transaction():
                        cur = await conn.execute(
                            Q[f"retention_window_{kind}"],
                            {
                                "tenant_id": tenant,
                                "cutoff": cutoff,
                                "expired": expired,
                                "after_at": after_at,
                                "after_id": after_id,
                                "batch": batch,
                            },
                        )
                        row = await cur.fetchone()
                        assert row is not None
                        end_at, end_id, scanned, count, tenant_ids, customer_ids, versions = row
                        await audit.record(conn, tenant, action, customer_ids)
                    deleted += int(count)
                    # History and field_status_summary changed: the window bumped its
                    # profiles' versions, whose cache entries go now.
                    await invalidate(list(map(Touched, tenant_ids, customer_ids, versions)))
                    if scanned < batch or end_at is None:
                        break
                    after_at, after_id = end_at, end_id
                    await _rest(pause, started)
        return deleted

    return sweep


async def apply_history_retention(
    store: ProfileStore,
    tenant_id: UUID | None = None,
    *,
    batch: int = BATCH_SIZE,
    pause: float = DEFAULT_ORPHAN_PAUSE,
) -> SweepResult:
    """Delete, for each tenant with a `history_retention_days` (or the one given, if it
    has one), the superseded, deleted and expired field and asset versions collected
    (uploaded) longer ago than that, except those something non-deleted derives from.
    Set-based windows, idempotent, each window's profiles bumped and invalidated; logs
    counts only. After each window it sleeps `pause` times as long as it took."""
    return await _run(
        store,
        "apply_history_retention",
        RETENTION_LOCK,
        tenant_id,
        _retain("fields", tenant_id, batch, pause),
        _retain("assets", tenant_id, batch, pause),
    )
