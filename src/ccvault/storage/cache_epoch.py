"""The cache's durable state in PostgreSQL (see storage/cache.py): the epoch, and the
secret its keys are made with."""

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


async def cache_key_secret(pool: Pool) -> bytes:
    """The deployment-wide secret profile cache keys are HMACs under (migration 0018)."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT secret FROM cache_key_secret WHERE id = 1")
        row = await cur.fetchone()
    if row is None:
        raise RuntimeError("cache_key_secret is empty: run `ccv migrate`")
    return bytes(row[0])
