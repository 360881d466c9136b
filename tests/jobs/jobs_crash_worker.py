"""A worker process for the crash tests, and the slow task it runs.

Run as `python jobs_crash_worker.py NAME [--signals]` with CCV_DATABASE_URL set: it runs
the vault's worker (with its janitor) plus `test.slow_sweep`, until killed or, with
--signals, until SIGTERM (after which the job in hand finishes first).

`test.slow_sweep` records each start in `test_job_runs`, sleeps (only on its first
attempt), runs the expiry sweep for one tenant and records the sweep's answer in
`test_job_effects`, one row per job at most.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any
from uuid import UUID

import procrastinate

from ccvault.config import Settings
from ccvault.jobs.queue import build_app, run_worker
from ccvault.jobs.sweeps import expire_stale_fields
from ccvault.runtime import Vault, open_vault

SLOW_TASK = "test.slow_sweep"
TABLES = """
CREATE TABLE IF NOT EXISTS test_job_runs (
    job_id bigint NOT NULL, attempt int NOT NULL, pid int NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS test_job_effects (
    job_id bigint PRIMARY KEY, updated int NOT NULL, pid int NOT NULL
);
"""


def register_slow_task(app: procrastinate.App) -> procrastinate.tasks.Task[Any, Any, Any]:
    """Add `test.slow_sweep` to an app built by build_app."""

    async def slow_sweep(
        context: procrastinate.JobContext, tenant_id: str, first_attempt_seconds: float
    ) -> dict[str, int]:
        vault = context.additional_context["vault"]
        assert isinstance(vault, Vault)
        job = context.job
        async with vault.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO test_job_runs (job_id, attempt, pid) VALUES (%s, %s, %s)",
                (job.id, job.attempts, os.getpid()),
            )
        if job.attempts == 0:
            await asyncio.sleep(first_attempt_seconds)
        result = await expire_stale_fields(vault.profiles, UUID(tenant_id))
        async with vault.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO test_job_effects (job_id, updated, pid) VALUES (%s, %s, %s)"
                " ON CONFLICT (job_id) DO NOTHING",
                (job.id, result.updated, os.getpid()),
            )
        return result.as_dict()

    return app.task(name=SLOW_TASK, pass_context=True, queue="ccv")(slow_sweep)


async def main(name: str, signals: bool) -> None:
    """Run a worker with the slow task until stopped."""
    settings = Settings()
    vault = await open_vault(settings)
    try:
        app = build_app(settings)
        register_slow_task(app)
        await run_worker(vault, name=name, app=app, install_signal_handlers=signals)
    finally:
        await vault.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], "--signals" in sys.argv[2:]))
