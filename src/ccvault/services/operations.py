"""Operators' runs: the sweeps on demand (the same code as the periodic jobs) and what the
job queue is doing."""

from __future__ import annotations

from uuid import UUID

from ccvault.config import Settings
from ccvault.domain.admin import JobsAnswer, SweepCounts
from ccvault.jobs.status import job_overview
from ccvault.jobs.sweeps import (
    apply_history_retention,
    detect_orphaned_items,
    expire_stale_fields,
)
from ccvault.storage.db import Pool
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.tenants import TenantStore


class OperationsService:
    """Sweeps now, for one tenant or all, and the job overview."""

    def __init__(
        self, settings: Settings, pool: Pool, profiles: ProfileStore, tenants: TenantStore
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._profiles = profiles
        self._tenants = tenants

    async def _scope(self, tenant_id: UUID | None) -> UUID | None:
        if tenant_id is not None:
            await self._tenants.get(tenant_id)  # NotFound for an unknown tenant
        return tenant_id

    async def expire_stale(self, tenant_id: UUID | None = None) -> SweepCounts:
        """Run the expiry sweep now."""
        scope = await self._scope(tenant_id)
        pause = self._settings.expire_pause
        result = await expire_stale_fields(self._profiles, scope, pause=pause)
        return SweepCounts(**result.as_dict())

    async def detect_orphans(self, tenant_id: UUID | None = None) -> SweepCounts:
        """Run orphan detection now, paced like the periodic job."""
        scope = await self._scope(tenant_id)
        pause = self._settings.orphan_pause
        result = await detect_orphaned_items(self._profiles, scope, pause=pause)
        return SweepCounts(**result.as_dict())

    async def apply_retention(self, tenant_id: UUID | None = None) -> SweepCounts:
        """Run the history retention sweep now (versions deleted, per kind), paced like
        the periodic job."""
        scope = await self._scope(tenant_id)
        pause = self._settings.orphan_pause
        result = await apply_history_retention(self._profiles, scope, pause=pause)
        return SweepCounts(**result.as_dict())

    async def jobs(self, limit: int = 50) -> JobsAnswer:
        """Recent jobs (newest first) and how many are in each state."""
        overview = await job_overview(self._pool, limit)
        return JobsAnswer(
            counts=overview.counts,
            live_workers=overview.live_workers,
            backlog=overview.backlog,
            items=overview.recent,
        )
