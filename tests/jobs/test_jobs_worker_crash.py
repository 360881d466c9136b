"""Worker processes that die or are told to stop mid-job.

A worker killed with SIGKILL leaves its job `doing`; once its heartbeat is old, the next
worker prunes it and the janitor gives the job back to the queue: the job runs again and
its effect (an expiry sweep) lands exactly once. A worker sent SIGTERM finishes the job in
hand before it exits. And the janitor must recover every stalled job even when one of them
cannot go back to the queue because the next tick of its task already waits there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from jobs_crash_worker import SLOW_TASK, TABLES, register_slow_task
from jobs_support import NEVER, job_events, job_status, start_worker, stop_worker, wait_until
from procrastinate.exceptions import AlreadyEnqueued

from ccvault.config import Settings
from ccvault.jobs import queue
from ccvault.jobs.queue import EXPIRE_TASK, JANITOR_TASK, ORPHAN_TASK, build_app
from ccvault.runtime import Vault
from integration.helpers import fetch, new_asset, new_field

SCRIPT = Path(__file__).with_name("jobs_crash_worker.py")
PAST = datetime(2020, 1, 1, tzinfo=UTC)
# Longer than run_worker's 5 s heartbeat interval, so a live worker never looks stalled.
SHORT_STALLED_SECONDS = 6


async def due_items(vault: Vault) -> tuple[UUID, int]:
    """A tenant with three fields and one asset past their expiry: (tenant, item count)."""
    tenant_id = (await vault.tenants.create("crash", "warn"))[0].tenant_id
    for i in range(3):
        await vault.profiles.save_field(
            tenant_id, f"c{i}", "otp", new_field(f"{i:06}", expires_at=PAST)
        )
    await vault.profiles.save_asset(tenant_id, "c0", new_asset("scan", expires_at=PAST))
    async with vault.pool.connection() as conn:
        await conn.execute(TABLES)
    return tenant_id, 4


async def stored_statuses(vault: Vault, tenant_id: UUID) -> list[str]:
    """The stored statuses of the tenant's fields and assets."""
    rows = await fetch(
        vault.pool,
        "SELECT status FROM profile_fields WHERE tenant_id = %(t)s"
        " UNION ALL SELECT status FROM profile_assets WHERE tenant_id = %(t)s",
        {"t": tenant_id},
    )
    return sorted(str(row[0]) for row in rows)


async def defer_slow_sweep(
    settings: Settings, tenant_id: UUID, first_attempt_seconds: float
) -> int:
    """Queue one `test.slow_sweep` job; its id."""
    app = build_app(settings)
    task = register_slow_task(app)
    async with app.open_async():
        return await task.defer_async(
            tenant_id=str(tenant_id), first_attempt_seconds=first_attempt_seconds
        )


@asynccontextmanager
async def worker_process(
    settings: Settings, name: str, log: Path, *, signals: bool
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A worker in a process of its own on the test's database; killed if still running."""
    assert settings.database_url
    env = {
        **os.environ,
        "CCV_DATABASE_URL": settings.database_url,
        "CCV_CACHE": "off",
        "CCV_EXPIRE_CRON": NEVER,
        "CCV_ORPHAN_CRON": NEVER,
    }
    env.pop("CCV_CONFIG", None)
    args = [str(SCRIPT), name, *(["--signals"] if signals else [])]
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, env=env, stdout=out, stderr=out
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def tail(log: Path) -> str:
    """The end of a worker process's output, for failure messages."""
    return log.read_text(errors="replace")[-3000:]


def job_started_in(vault: Vault, job_id: int, proc: asyncio.subprocess.Process, log: Path) -> Any:
    """A check: the job is `doing` and has recorded its start (fails if the process died)."""

    async def check() -> bool:
        if proc.returncode is not None:
            raise AssertionError(f"the worker process exited early:\n{tail(log)}")
        runs = await fetch(vault.pool, "SELECT 1 FROM test_job_runs WHERE job_id = %s", (job_id,))
        return bool(runs) and await job_status(vault.pool, job_id) == "doing"

    return check


async def test_a_job_of_a_killed_worker_is_retried_and_its_effect_applied_exactly_once(
    isolated_settings: Settings,
    isolated_vault: Vault,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vault = isolated_vault
    tenant_id, items = await due_items(vault)
    job_id = await defer_slow_sweep(isolated_settings, tenant_id, first_attempt_seconds=60)
    log = tmp_path / "doomed.log"

    async with worker_process(isolated_settings, "doomed", log, signals=False) as proc:
        await wait_until(job_started_in(vault, job_id, proc, log), 30, "the job to start")
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    # Killed mid-job: nothing applied, the job still marked as running.
    assert await job_status(vault.pool, job_id) == "doing"
    assert await fetch(vault.pool, "SELECT * FROM test_job_effects") == []
    assert await stored_statuses(vault, tenant_id) == ["active"] * items

    monkeypatch.setattr(queue, "STALLED_AFTER_SECONDS", SHORT_STALLED_SECONDS)

    async def dead_worker_is_stale() -> bool:
        rows = await fetch(
            vault.pool,
            "SELECT count(*) FROM procrastinate_workers"
            " WHERE last_heartbeat > now() - make_interval(secs => %s)",
            (SHORT_STALLED_SECONDS,),
        )
        return int(rows[0][0]) == 0

    await wait_until(dead_worker_is_stale, SHORT_STALLED_SECONDS + 10, "a stale heartbeat")
    rescuer_app = build_app(isolated_settings)
    register_slow_task(rescuer_app)
    # A job given back to the queue is not announced: poll often to pick it up at once.
    rescuer_app.worker_defaults["fetch_job_polling_interval"] = 0.2
    rescuer = start_worker(vault, "rescuer", app=rescuer_app)
    try:
        janitor_app = build_app(isolated_settings)
        async with janitor_app.open_async():
            with contextlib.suppress(AlreadyEnqueued):
                await janitor_app.tasks[JANITOR_TASK].defer_async()

        async def job_succeeded() -> bool:
            return await job_status(vault.pool, job_id) == "succeeded"

        await wait_until(job_succeeded, 20, "the retried job to succeed")
    finally:
        await stop_worker(rescuer)

    runs = await fetch(
        vault.pool,
        "SELECT attempt, pid FROM test_job_runs WHERE job_id = %s ORDER BY attempt",
        (job_id,),
    )
    assert runs == [(0, proc.pid), (1, os.getpid())]
    effects = await fetch(vault.pool, "SELECT job_id, updated, pid FROM test_job_effects")
    assert effects == [(job_id, items, os.getpid())]
    assert await stored_statuses(vault, tenant_id) == ["expired"] * items
    transitions = [kind for kind, _ in await job_events(vault.pool, job_id) if kind != "scheduled"]
    assert transitions == ["deferred", "started", "deferred_for_retry", "started", "succeeded"]
    janitor_runs = await fetch(
        vault.pool,
        "SELECT status::text FROM procrastinate_jobs WHERE task_name = %s",
        (JANITOR_TASK,),
    )
    assert janitor_runs and {row[0] for row in janitor_runs} == {"succeeded"}
    slow_jobs = await fetch(
        vault.pool, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s", (SLOW_TASK,)
    )
    assert slow_jobs == [(1,)]


async def test_a_worker_sent_sigterm_finishes_the_job_in_hand_before_it_exits(
    isolated_settings: Settings, isolated_vault: Vault, tmp_path: Path
) -> None:
    vault = isolated_vault
    tenant_id, items = await due_items(vault)
    job_id = await defer_slow_sweep(isolated_settings, tenant_id, first_attempt_seconds=2)
    log = tmp_path / "polite.log"

    async with worker_process(isolated_settings, "polite", log, signals=True) as proc:
        await wait_until(job_started_in(vault, job_id, proc, log), 30, "the job to start")
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            returncode = await proc.wait()

    assert returncode == 0, tail(log)
    assert await job_status(vault.pool, job_id) == "succeeded"
    assert await fetch(vault.pool, "SELECT attempt FROM test_job_runs") == [(0,)]
    assert await fetch(vault.pool, "SELECT updated FROM test_job_effects") == [(items,)]
    assert await stored_statuses(vault, tenant_id) == ["expired"] * items
    assert await fetch(vault.pool, "SELECT count(*) FROM procrastinate_workers") == [(0,)]


async def test_the_janitor_recovers_every_stalled_job_even_when_the_next_tick_is_queued(
    isolated_settings: Settings, isolated_vault: Vault
) -> None:
    vault = isolated_vault
    app = build_app(isolated_settings)
    async with app.open_async():
        manager = app.job_manager
        dead_worker = await manager.register_worker()
        expire_id = await app.tasks[EXPIRE_TASK].defer_async(timestamp=1)
        orphan_id = await app.tasks[ORPHAN_TASK].defer_async(timestamp=1)
        for _ in range(2):
            assert await manager.fetch_job(queues=["ccv"], worker_id=dead_worker) is not None
        # The worker running both died an hour ago...
        async with vault.pool.connection() as conn:
            await conn.execute(
                "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
            )
        # ...and the next expiry tick is already queued, due in ten minutes.
        next_tick = app.tasks[EXPIRE_TASK].configure(schedule_in={"minutes": 10})
        next_id = await next_tick.defer_async(timestamp=2)
        janitor_id = await app.tasks[JANITOR_TASK].defer_async()
    assert await job_status(vault.pool, expire_id) == "doing"
    assert await job_status(vault.pool, orphan_id) == "doing"

    async def janitor_ran() -> bool:
        events = [kind for kind, _ in await job_events(vault.pool, janitor_id)]
        return "started" in events and await job_status(vault.pool, janitor_id) != "doing"

    async def orphan_job_done() -> bool:
        return await job_status(vault.pool, orphan_id) == "succeeded"

    rescuer_app = build_app(isolated_settings)
    # A job given back to the queue is not announced: poll often to pick it up at once.
    rescuer_app.worker_defaults["fetch_job_polling_interval"] = 0.2
    rescuer = start_worker(vault, "rescuer", app=rescuer_app)
    try:
        await wait_until(janitor_ran, 15, "the janitor to run")
        with contextlib.suppress(AssertionError):
            await wait_until(orphan_job_done, 5, "the stalled orphan job to run again")
    finally:
        await stop_worker(rescuer)

    statuses = {
        name: await job_status(vault.pool, job_id)
        for name, job_id in (
            ("janitor", janitor_id),
            ("stalled orphan sweep", orphan_id),
            ("stalled expiry sweep", expire_id),
            ("queued expiry tick", next_id),
        )
    }
    # Every stalled job leaves `doing`; the one whose tick is already queued need not run
    # twice, but it must not block the others nor fail the janitor.
    assert statuses["janitor"] == "succeeded", statuses
    assert statuses["stalled orphan sweep"] == "succeeded", statuses
    assert statuses["stalled expiry sweep"] != "doing", statuses
    assert statuses["queued expiry tick"] == "todo", statuses
