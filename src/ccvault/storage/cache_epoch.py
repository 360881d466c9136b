"""The durable copy of the cache epoch, in PostgreSQL (see storage/cache.py)."""

from __future__ import annotations

from ccvault.storage.db import Pool


class DurableEpoch:
    """Reads and raises the cache epoch row."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def current(self) -> int:
        """The epoch every cache entry must carry to be served."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT epoch FROM cache_epoch WHERE id = 1")
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def advance(self) -> int:
        """Retire every entry made so far (an invalidation was lost)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE cache_epoch SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch"
            )
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def catch_up(self, seen: int) -> None:
        """Raise the durable copy to an epoch Redis already holds (never lowers it)."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE cache_epoch SET epoch = %s WHERE id = 1 AND epoch < %s", (seen, seen)
            )
