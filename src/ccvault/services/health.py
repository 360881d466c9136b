"""Readiness and metrics: the state of each dependency, read now."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ccvault.config import JobsBackend, Settings
from ccvault.jobs.status import job_overview
from ccvault.metrics import exposition
from ccvault.storage.cache import ProfileCache
from ccvault.storage.db import Pool

CHECK_TIMEOUT = 1.0


@dataclass(frozen=True)
class Readiness:
    """`status` is `down` when the database is, `degraded` when another check is."""

    status: str
    checks: dict[str, str]
    details: dict[str, str]


class HealthService:
    """Checks of PostgreSQL, the cache and the job queue, each bounded to a second."""

    def __init__(self, settings: Settings, pool: Pool, cache: ProfileCache | None) -> None:
        self.settings = settings
        self._pool = pool
        self._cache = cache

    async def _database(self) -> tuple[str, str | None]:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT), self._pool.connection() as conn:
                await conn.execute("SELECT 1")
        except Exception as exc:
            return "down", f"{type(exc).__name__}: {exc}"[:200]
        return "ok", None

    async def _cache_state(self) -> tuple[str, str | None]:
        if self._cache is None:
            return "ok", "cache disabled"
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                answered = await self._cache.ping()
        except TimeoutError:
            answered = False
        if not answered:
            return "degraded", "cache unreachable: serving from PostgreSQL"
        return "ok", None

    async def _jobs(self) -> tuple[str, str | None]:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                overview = await job_overview(self._pool, limit=0)
        except Exception as exc:
            return "down", f"{type(exc).__name__}: {exc}"[:200]
        settings = self.settings
        if settings.jobs_backend is JobsBackend.hatchet:
            from ccvault.jobs.hatchet_backend import engine_reachable

            if not await engine_reachable(settings):
                return "degraded", (
                    f"hatchet engine unreachable at {settings.hatchet_host_port}; "
                    f"{overview.backlog} due jobs on the PostgreSQL queue"
                )
        if overview.live_workers == 0:
            return "degraded", f"no worker has sent a heartbeat lately; {overview.backlog} due jobs"
        return "ok", None

    async def readiness(self) -> Readiness:
        """Every check; the jobs check only when the database answers."""
        (db, db_detail), (cache, cache_detail) = await asyncio.gather(
            self._database(), self._cache_state()
        )
        jobs, jobs_detail = await self._jobs() if db == "ok" else ("down", "database down")
        checks = {"database": db, "cache": cache, "jobs": jobs}
        found = {"database": db_detail, "cache": cache_detail, "jobs": jobs_detail}
        details = {k: v for k, v in found.items() if v}
        if db == "down":
            status = "down"
        elif "degraded" in checks.values():
            status = "degraded"
        else:
            status = "ok"
        return Readiness(status, checks, details)

    async def metrics(self) -> bytes:
        """Prometheus text exposition, the pool and the job queue read now."""
        return await exposition(self._pool)
