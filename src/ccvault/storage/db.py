"""The connection pool every store shares."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from ccvault.storage.urls import libpq_url

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]


async def open_pool(database_url: str, *, min_size: int = 2, max_size: int = 10) -> Pool:
    """Open a pool of autocommit connections in UTC (writes open explicit transactions)."""
    pool: Pool = AsyncConnectionPool(
        libpq_url(database_url),
        min_size=min_size,
        max_size=max_size,
        # Reads are single statements: autocommit saves the BEGIN/COMMIT round trips.
        kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
        open=False,
        name="ccvault",
    )
    await pool.open(wait=True, timeout=30)
    return pool
