"""The optional Hatchet backend (extra `[hatchet]`, CCV_JOBS_BACKEND=hatchet): the same
sweep functions registered as Hatchet tasks, with the same crons and retries.

Deferred work always goes to the PostgreSQL queue first (in the writer's transaction), so
nothing is lost when the engine is away: a worker that cannot reach the engine at start
runs everything — schedules included — from the PostgreSQL queue, and /readyz reports the
job backend `degraded`. The sweeps hold advisory locks, so a Hatchet run and a local run
never overlap.

No Hatchet engine can run on our build machines; this module is tested with the SDK's
mock runs and with the engine unreachable (see the README). It is imported only when the
backend is configured, so the extra stays optional.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog
from hatchet_sdk import ClientConfig, Context, Hatchet
from pydantic import BaseModel

from ccvault.config import Settings
from ccvault.jobs.sweeps import (
    apply_history_retention,
    detect_orphaned_items,
    expire_stale_fields,
)
from ccvault.runtime import Vault
from ccvault.services.events import prune_events

log = structlog.get_logger("ccvault.jobs")
EXPIRE_TASK = "ccv-expire-stale-fields"
ORPHAN_TASK = "ccv-detect-orphaned-items"
RETENTION_TASK = "ccv-apply-history-retention"
PRUNE_EVENTS_TASK = "ccv-prune-events"
PRUNE_EVENTS_CRON = "23 * * * *"
REACH_TIMEOUT_SECONDS = 1.0


class SweepInput(BaseModel):
    """A sweep's input: one tenant, or every tenant when absent."""

    tenant_id: UUID | None = None


def backoff(settings: Settings) -> tuple[int, float, int]:
    """(retries, backoff factor, max backoff seconds) matching the PostgreSQL queue's
    `job_retry_attempts` runs; Hatchet's engine computes the delays itself."""
    retries = settings.job_retry_attempts - 1
    ceiling = int(settings.job_retry_base_seconds * 2 ** max(retries - 1, 0))
    return retries, 2.0, max(ceiling, 1)


def register(hatchet: Any, settings: Settings, vault: Callable[[], Vault]) -> list[Any]:
    """Declare the sweeps on a hatchet_sdk.Hatchet client; returns the tasks."""
    retries, factor, ceiling = backoff(settings)
    common: dict[str, Any] = {
        "retries": retries,
        "backoff_factor": factor,
        "backoff_max_seconds": ceiling,
        "input_validator": SweepInput,
        "execution_timeout": timedelta(minutes=10),
    }

    @hatchet.task(name=EXPIRE_TASK, on_crons=[settings.expire_cron], **common)  # type: ignore[untyped-decorator]
    async def expire(input: SweepInput, ctx: Context) -> dict[str, int]:
        pause = settings.expire_pause
        return (await expire_stale_fields(vault().profiles, input.tenant_id, pause=pause)).as_dict()

    @hatchet.task(name=ORPHAN_TASK, on_crons=[settings.orphan_cron], **common)  # type: ignore[untyped-decorator]
    async def orphans(input: SweepInput, ctx: Context) -> dict[str, int]:
        pause = settings.orphan_pause
        return (
            await detect_orphaned_items(
                vault().profiles, input.tenant_id, pause=pause, incremental=True
            )
        ).as_dict()

    @hatchet.task(name=RETENTION_TASK, on_crons=[settings.retention_cron], **common)  # type: ignore[untyped-decorator]
    async def retention(input: SweepInput, ctx: Context) -> dict[str, int]:
        pause = settings.orphan_pause
        return (
            await apply_history_retention(vault().profiles, input.tenant_id, pause=pause)
        ).as_dict()

    @hatchet.task(name=PRUNE_EVENTS_TASK, on_crons=[PRUNE_EVENTS_CRON], **common)  # type: ignore[untyped-decorator]
    async def prune_events_task(input: SweepInput, ctx: Context) -> dict[str, int]:
        deleted = await prune_events(vault().pool, settings.event_retention_days)
        return {"deleted": deleted}

    return [expire, orphans, retention, prune_events_task]


def client(settings: Settings) -> Any:
    """A Hatchet client for the configured engine."""
    token = settings.hatchet_token.get_secret_value() if settings.hatchet_token else ""
    return Hatchet(config=ClientConfig(token=token, host_port=settings.hatchet_host_port))


async def engine_reachable(settings: Settings) -> bool:
    """Does anything answer at the engine's address? (A TCP connect, bounded.)"""
    host, _, port = settings.hatchet_host_port.rpartition(":")
    try:
        async with asyncio.timeout(REACH_TIMEOUT_SECONDS):
            _, writer = await asyncio.open_connection(host or "localhost", int(port))
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def run_hatchet_worker(vault: Vault, name: str) -> None:
    """Serve the sweeps to the Hatchet engine until stopped."""
    hatchet = client(vault.settings)
    tasks = register(hatchet, vault.settings, lambda: vault)
    worker = hatchet.worker(name, workflows=tasks)
    log.info("hatchet worker started", engine=vault.settings.hatchet_host_port)
    await worker.async_start()
