"""The change feed on PostgreSQL: the sequencer that gives committed events their feed
positions, the feed's pages, the explicit events (merges, extraction) and the prune."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("events.sql")
# Rows one sequencer call numbers at most (a backlog takes several calls).
SEQUENCE_BATCH = 10_000
PRUNE_BATCH = 5_000


@dataclass(frozen=True)
class FeedPage:
    """One page: the items as JSON text (built by the database), how many, the position
    of the last item (None: empty page) and the feed's head in the same snapshot."""

    items_json: str
    count: int
    last_position: int | None
    head: int


async def sequence(pool: Pool, *, wait: bool) -> int:
    """Give the committed, unsequenced events their positions. `wait`: when another
    sequencer runs, wait for it and then number what is left (a reader about to page);
    otherwise leave it to that one. Returns the events numbered (-1: left to another)."""
    total = 0
    async with pool.connection() as conn:
        cur = await conn.execute(Q["has_pending"])
        if not (await cur.fetchone() or [False])[0]:
            return 0
        while True:
            cur = await conn.execute(Q["sequence"], {"wait": wait, "batch": SEQUENCE_BATCH})
            row = await cur.fetchone()
            numbered = int(row[0]) if row else 0
            if numbered < 0:
                return -1 if total == 0 else total
            total += numbered
            if numbered < SEQUENCE_BATCH:
                return total


async def read_page(
    pool: Pool, tenant_id: UUID, *, after: int, limit: int, types: list[str] | None
) -> FeedPage:
    """A page of the tenant's feed after position `after`, once every event committed
    before this call has its position (so it is on this page or a later one)."""
    params = {"tenant_id": tenant_id, "after": after, "limit": limit, "types": types}
    async with pool.connection() as conn:
        # Most pages find nothing pending (the periodic sequencer keeps up): one query.
        # Otherwise number it (each statement commits on its own) and read again.
        cur = await conn.execute(Q["page"], params)
        row = await cur.fetchone()
        assert row is not None
        if row[4]:
            await _catch_up(conn)
            cur = await conn.execute(Q["page"], params)
            row = await cur.fetchone()
            assert row is not None
    head, count, last, items, _ = row
    return FeedPage(items, int(count), None if last is None else int(last), int(head))


async def _catch_up(conn: AsyncConnection[Any]) -> None:
    """Number every pending event, waiting for a running sequencer first."""
    while True:
        cur = await conn.execute(Q["sequence"], {"wait": True, "batch": SEQUENCE_BATCH})
        done = await cur.fetchone()
        if not done or int(done[0]) < SEQUENCE_BATCH:
            return


async def emit_merged(
    conn: AsyncConnection[Any], tenant_id: UUID, customer_id: str, source_customer_id: str
) -> None:
    """`profile.merged` on the target, in the merge's transaction."""
    await conn.execute(
        Q["emit_merged"],
        {
            "tenant_id": tenant_id,
            "customer_id": customer_id,
            "source_customer_id": source_customer_id,
        },
    )


async def emit_extracted(
    conn: AsyncConnection[Any], tenant_id: UUID, kind: str, agent_id: str, source_id: str
) -> None:
    """`requirements.extracted`, in the extraction run's transaction."""
    await conn.execute(
        Q["emit_extracted"],
        {"tenant_id": tenant_id, "kind": kind, "agent_id": agent_id, "source_id": source_id},
    )


async def prune(pool: Pool, days: int) -> int:
    """Delete the events older than `days` days, batch by batch; returns how many."""
    total = 0
    async with pool.connection() as conn:
        while True:
            cur = await conn.execute(Q["prune"], {"days": days, "batch": PRUNE_BATCH})
            total += cur.rowcount
            if cur.rowcount < PRUNE_BATCH:
                return total
