"""The change feed (DESIGN §8 "Events") as callers page it, and the sequencer that keeps
feed positions in commit order (README "Change feed").

A cursor is a feed position signed for the tenant (domain/cursors.py); the feed starts at
position 0 (the oldest event kept). Every answer carries a cursor: the last item's
position, or, when the page is not full, the feed's head (nothing the reader could still
see lies before it, filtered or not), so a reader following the feed never scans the same
stretch twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg
import structlog

from ccvault.domain.caller import Caller
from ccvault.domain.cursors import LOC, decode_cursor, encode_cursor
from ccvault.domain.errors import InvalidInput, Problem
from ccvault.domain.events import FEED_LIST
from ccvault.storage import events as events_sql
from ccvault.storage.db import Pool

log = structlog.get_logger("ccvault.events")
MAX_PAGE = 200
# How often each API and worker process numbers new events: readers and webhooks see a
# change about this long after its commit at most.
SEQUENCE_EVERY_SECONDS = 0.15


class FeedAnswer:
    """A page ready to send: the database's JSON of the items and the next cursor."""

    def __init__(self, items_json: str, next_cursor: str) -> None:
        self.items_json = items_json
        self.next_cursor = next_cursor

    def body(self) -> bytes:
        """The answer's JSON body (the items passed through as the database built them)."""
        return f'{{"items":{self.items_json},"next_cursor":"{self.next_cursor}"}}'.encode()


def _position(caller: Caller, after: str | None) -> int:
    if not after:
        return 0
    position = decode_cursor(caller.secret, FEED_LIST, after)
    if len(position) != 1 or not isinstance(position[0], int) or position[0] < 0:
        # Signed by us, so never; but never a 500 either.
        raise InvalidInput(
            "The cursor is not one this list handed out.",
            [Problem(LOC, "malformed cursor", "invalid_cursor")],
        )
    return position[0]


class EventService:
    """Pages of the feed for a tenant."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def page(
        self, caller: Caller, *, after: str | None, limit: int, types: list[str] | None
    ) -> FeedAnswer:
        """Up to `limit` of the caller's events after the cursor, in commit order."""
        start = _position(caller, after)
        found = await events_sql.read_page(
            self._pool, caller.tenant_id, after=start, limit=limit, types=types
        )
        if found.count == limit and found.last_position is not None:
            end = found.last_position
        else:
            end = max(start, found.head, found.last_position or 0)
        return FeedAnswer(found.items_json, encode_cursor(caller.secret, FEED_LIST, [end]))


async def prune_events(pool: Pool, days: int) -> int:
    """Delete the events older than `days` days (the hourly job); returns how many."""
    return await events_sql.prune(pool, days)


async def run_sequencer(pool: Pool, every: float = SEQUENCE_EVERY_SECONDS) -> None:
    """Number committed events every `every` seconds until cancelled (one per process;
    runs in different processes take turns, and a busy turn is left to its holder)."""
    while True:
        try:
            await events_sql.sequence(pool, wait=False)
        except (psycopg.Error, OSError) as exc:
            # The database is away: the next tick tries again (readers sequence too).
            log.debug("event sequencing failed", error=type(exc).__name__)
        except Exception:
            log.exception("event sequencing failed")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def sequencing(pool: Pool, every: float = SEQUENCE_EVERY_SECONDS) -> AsyncIterator[None]:
    """Run the sequencer in the background while the block runs."""
    task = asyncio.create_task(run_sequencer(pool, every), name="ccv-event-sequencer")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
