"""The job queue: procrastinate on the same PostgreSQL, running the plain sweep functions.

Periodic ticks are deduplicated by procrastinate across any number of workers (one row
per task and tick in procrastinate_periodic_defers), each periodic task has a queueing
lock so ticks do not pile up behind a slow run, failed jobs are retried with exponential
backoff, and jobs left `doing` by a dead worker are retried by a periodic janitor.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from uuid import UUID

import procrastinate
import structlog
from procrastinate.exceptions import UniqueViolation
from procrastinate.jobs import Job, Status
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from ccvault.config import JobsBackend, Settings
from ccvault.extraction.models import SourceKind
from ccvault.extraction.run import make_extractor, run_extraction
from ccvault.jobs.supervisor import supervise
from ccvault.jobs.sweeps import (
    apply_history_retention,
    detect_orphaned_items,
    expire_stale_fields,
)
from ccvault.runtime import Vault
from ccvault.services.events import prune_events, sequencing
from ccvault.storage.scenarios import EXTRACT_TASK, ScenarioStore
from ccvault.storage.urls import libpq_url

log = structlog.get_logger("ccvault.jobs")

EXPIRE_TASK = "ccv.expire_stale_fields"
ORPHAN_TASK = "ccv.detect_orphaned_items"
RETENTION_TASK = "ccv.apply_history_retention"
JANITOR_TASK = "ccv.retry_stalled_jobs"
PRUNE_TASK = "ccv.prune_finished_jobs"
PRUNE_EVENTS_TASK = "ccv.prune_events"
# Queued by the event sequencer (migration 0024), one job per event and endpoint.
WEBHOOK_TASK = "ccv.deliver_webhook"
STALLED_AFTER_SECONDS = 30
WORKER_POOL_TIMEOUT_SECONDS = 2.0


class ExponentialBackoff(BaseRetryStrategy):
    """`attempts` runs in all; the n-th retry waits base * 2^(n-1) seconds."""

    def __init__(self, attempts: int, base_seconds: float) -> None:
        self.attempts = attempts
        self.base_seconds = base_seconds

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        """Retry until the attempts are used up (job.attempts counts earlier failures)."""
        if job.attempts + 1 >= self.attempts:
            log.error(
                "job failed for good",
                task=job.task_name,
                job_id=job.id,
                error=repr(exception)[:300],
            )
            return None
        wait = self.base_seconds * 2**job.attempts
        log.warning(
            "job failed, retrying",
            task=job.task_name,
            job_id=job.id,
            attempt=job.attempts + 1,
            retry_in=wait,
            error=repr(exception)[:300],
        )
        return RetryDecision(retry_in={"seconds": wait})


def _vault(context: procrastinate.JobContext) -> Vault:
    vault = context.additional_context.get("vault")
    if not isinstance(vault, Vault):
        raise RuntimeError("the worker was started without a vault in its context")
    return vault


async def _expire_job(
    context: procrastinate.JobContext, timestamp: int | None = None, tenant_id: str | None = None
) -> dict[str, int]:
    scope = UUID(tenant_id) if tenant_id else None
    vault = _vault(context)
    pause = vault.settings.expire_pause
    return (await expire_stale_fields(vault.profiles, scope, pause=pause)).as_dict()


async def _orphan_job(
    context: procrastinate.JobContext, timestamp: int | None = None, tenant_id: str | None = None
) -> dict[str, int]:
    scope = UUID(tenant_id) if tenant_id else None
    vault = _vault(context)
    pause = vault.settings.orphan_pause
    # The periodic run over every tenant is incremental (a full pass once a day).
    return (
        await detect_orphaned_items(vault.profiles, scope, pause=pause, incremental=True)
    ).as_dict()


async def _retention_job(
    context: procrastinate.JobContext, timestamp: int | None = None, tenant_id: str | None = None
) -> dict[str, int]:
    scope = UUID(tenant_id) if tenant_id else None
    vault = _vault(context)
    # Paced like orphan detection: a daily walk with no deadline but its next day.
    pause = vault.settings.orphan_pause
    return (await apply_history_retention(vault.profiles, scope, pause=pause)).as_dict()


async def _extract_job(
    context: procrastinate.JobContext, kind: str, tenant_id: str, agent_id: str, source_id: str
) -> str:
    """Extract requirements for a stored scenario or rule (failures are recorded, not
    raised: the text stays saved and usable)."""
    vault = _vault(context)
    extractor = context.additional_context.get("extractor") or make_extractor(vault.settings)
    return await run_extraction(
        ScenarioStore(vault.pool),
        extractor,
        SourceKind(kind),
        UUID(tenant_id),
        agent_id,
        source_id,
    )


async def _janitor_job(context: procrastinate.JobContext, timestamp: int | None = None) -> int:
    """Give jobs of workers that stopped heartbeating back to the queue."""
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_SECONDS))
    for job in stalled:
        try:
            await manager.retry_job(job)
            log.warning("retrying a job its worker abandoned", task=job.task_name, job_id=job.id)
        except UniqueViolation:
            # A job with the same queueing lock already waits and does the same idempotent
            # work: close this one instead of queueing a twin.
            await manager.finish_job(job, status=Status.FAILED, delete_job=False)
            log.warning(
                "closed an abandoned job; an equivalent one is queued",
                task=job.task_name,
                job_id=job.id,
            )
    return len(stalled)


async def _prune_job(context: procrastinate.JobContext, timestamp: int | None = None) -> None:
    """Keep the job table small: succeeded jobs older than CCV_JOB_HISTORY_HOURS go
    (failed ones stay for inspection)."""
    hours = _vault(context).settings.job_history_hours
    await context.app.job_manager.delete_old_jobs(nb_hours=hours, queue="ccv")


async def _prune_events_job(context: procrastinate.JobContext, timestamp: int | None = None) -> int:
    """Keep the change feed to CCV_EVENT_RETENTION_DAYS."""
    vault = _vault(context)
    return await prune_events(vault.pool, vault.settings.event_retention_days)


async def _deliver_webhook_job(
    context: procrastinate.JobContext, tenant_id: str, webhook_id: str, event_id: str
) -> bool:
    """One attempt at one event for one endpoint (a failure raises: retried with backoff)."""
    attempt = (context.job.attempts or 0) + 1
    return await _vault(context).services.webhooks.deliver(
        UUID(tenant_id), UUID(webhook_id), UUID(event_id), attempt
    )


def build_app(settings: Settings, *, periodic: bool = True) -> procrastinate.App:
    """The procrastinate app with our tasks and, unless a Hatchet engine owns them, our
    schedules (crons from settings)."""
    assert settings.database_url
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(settings.database_url),
        min_size=1,
        max_size=settings.worker_concurrency + 3,
        # Not psycopg_pool's 30 s: a worker that lost the database spends this long
        # failing to unregister before it ends (and is restarted, or stops when asked).
        timeout=WORKER_POOL_TIMEOUT_SECONDS,
        kwargs={"options": "-c TimeZone=UTC"},
    )
    app = procrastinate.App(connector=connector)
    retry = ExponentialBackoff(settings.job_retry_attempts, settings.job_retry_base_seconds)
    schedules: list[tuple[str, Any, str, str]] = [
        (EXPIRE_TASK, _expire_job, settings.expire_cron, "expire"),
        (ORPHAN_TASK, _orphan_job, settings.orphan_cron, "orphans"),
        (RETENTION_TASK, _retention_job, settings.retention_cron, "retention"),
        (JANITOR_TASK, _janitor_job, "* * * * *", "janitor"),
        (PRUNE_TASK, _prune_job, "17 3 * * *", "prune"),
        (PRUNE_EVENTS_TASK, _prune_events_job, "23 * * * *", "prune-events"),
    ]
    for name, func, cron, lock in schedules:
        task = app.task(name=name, pass_context=True, retry=retry, queueing_lock=lock, queue="ccv")(
            func
        )
        if periodic:
            app.periodic(cron=cron, periodic_id=lock)(task)
    # Deferred by scenario/rule writes in their own transaction (storage/scenarios.sql),
    # with a queueing lock per scenario/rule.
    app.task(name=EXTRACT_TASK, pass_context=True, retry=retry, queue="ccv")(_extract_job)
    webhook_retry = ExponentialBackoff(settings.webhook_attempts, settings.webhook_backoff_seconds)
    app.task(name=WEBHOOK_TASK, pass_context=True, retry=webhook_retry, queue="ccv")(
        _deliver_webhook_job
    )
    return app


async def run_worker(
    vault: Vault,
    *,
    concurrency: int | None = None,
    install_signal_handlers: bool = True,
    name: str = "ccv-worker",
    app: procrastinate.App | None = None,
) -> None:
    """Run jobs until stopped. On SIGTERM or SIGINT (with signal handlers) the job in hand
    finishes first; cancelling the task stops the same way. A worker that loses the
    database starts again once it answers (jobs/supervisor.py).

    With the Hatchet backend and its engine reachable, the engine runs the schedules and
    this worker serves it too; otherwise everything runs from the PostgreSQL queue.
    """
    hatchet = None
    if app is None and vault.settings.jobs_backend is JobsBackend.hatchet:
        from ccvault.jobs import hatchet_backend

        if await hatchet_backend.engine_reachable(vault.settings):
            hatchet = asyncio.create_task(hatchet_backend.run_hatchet_worker(vault, name))
        else:
            log.warning(
                "hatchet engine unreachable: running every job from the PostgreSQL queue",
                engine=vault.settings.hatchet_host_port,
            )
    procrastinate_app = app or build_app(vault.settings, periodic=hatchet is None)
    assert vault.settings.database_url
    try:
        await supervise(
            lambda: _run_procrastinate(vault, procrastinate_app, concurrency, name),
            database_url=vault.settings.database_url,
            name=name,
            install_signal_handlers=install_signal_handlers,
        )
    finally:
        if hatchet is not None:
            hatchet.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hatchet


async def _run_procrastinate(
    vault: Vault, app: procrastinate.App, concurrency: int | None, name: str
) -> None:
    """One life of the worker: open the queue's pool, work until stopped or broken."""
    async with app.open_async(), sequencing(vault.pool):
        log.info(
            "worker started",
            name=name,
            concurrency=concurrency or vault.settings.worker_concurrency,
        )
        await app.run_worker_async(
            name=name,
            queues=["ccv"],
            concurrency=concurrency or vault.settings.worker_concurrency,
            additional_context={"vault": vault, "extractor": make_extractor(vault.settings)},
            # Signals are the supervisor's: it stops this worker by cancelling it.
            install_signal_handlers=False,
            update_heartbeat_interval=5,
            # Retried jobs are not announced by NOTIFY; poll often enough that a retry
            # starts close to its due time.
            fetch_job_polling_interval=1.0,
            stalled_worker_timeout=STALLED_AFTER_SECONDS,
        )
