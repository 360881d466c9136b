"""What the job queue is doing, for GET /admin/jobs and the `jobs` check of /readyz."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("status.sql", "ccvault.jobs")
ALIVE_SECONDS = 30


@dataclass(frozen=True)
class JobOverview:
    """Counts per state, recent jobs, live workers and the backlog of due jobs."""

    counts: dict[str, int]
    recent: list[dict[str, Any]]
    live_workers: int
    backlog: int


async def job_overview(pool: Pool, limit: int = 50) -> JobOverview:
    """One query over procrastinate's tables."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q["job_overview"], {"limit": limit, "alive_seconds": ALIVE_SECONDS}
        )
        row = await cur.fetchone()
    assert row is not None
    counts, recent, live, backlog = row
    return JobOverview(counts=counts, recent=recent, live_workers=live, backlog=backlog)
