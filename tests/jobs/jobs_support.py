"""Helpers shared by the job tests: workers as asyncio tasks, polling, queue rows."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import procrastinate

from ccvault.jobs.queue import run_worker
from ccvault.runtime import Vault
from ccvault.storage.db import Pool
from integration.helpers import fetch

FINAL_STATES = ("succeeded", "failed", "cancelled", "aborted")
# A schedule whose last tick is months away: procrastinate's deferrer looks back ten
# minutes at start-up, so workers of these tests run no sweep unless a test asks for one.
NEVER = "0 0 1 1 *"


def start_worker(
    vault: Vault, name: str, app: procrastinate.App | None = None
) -> asyncio.Task[None]:
    """A worker running in this event loop until cancelled."""
    return asyncio.create_task(
        run_worker(vault, install_signal_handlers=False, name=name, app=app), name=name
    )


async def stop_worker(worker: asyncio.Task[None]) -> None:
    """Cancel a worker (procrastinate's graceful stop) and wait until it has stopped;
    a worker that died by itself re-raises its error here."""
    if worker.done():
        worker.result()
        return
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker


async def wait_until(
    check: Callable[[], Awaitable[bool]], within: float, what: str, poll: float = 0.1
) -> None:
    """Poll `check` until it holds; fails the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(poll)


async def job_status(pool: Pool, job_id: int) -> str:
    """The procrastinate status of one job."""
    rows = await fetch(pool, "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job_id,))
    assert rows, f"no job {job_id}"
    return str(rows[0][0])


async def job_events(pool: Pool, job_id: int) -> list[tuple[str, datetime]]:
    """The events of one job in the order they were recorded: (type, at). A `scheduled`
    event's `at` is the time the job was scheduled for, not when it was recorded."""
    rows = await fetch(
        pool,
        "SELECT type::text, at FROM procrastinate_events WHERE job_id = %s ORDER BY id",
        (job_id,),
    )
    return [(str(kind), at) for kind, at in rows]


async def all_jobs(pool: Pool) -> list[dict[str, Any]]:
    """Every job in the queue: id, task_name, status, attempts, args."""
    rows = await fetch(
        pool,
        "SELECT id, task_name, status::text, attempts, args FROM procrastinate_jobs ORDER BY id",
    )
    keys = ("id", "task_name", "status", "attempts", "args")
    return [dict(zip(keys, row, strict=True)) for row in rows]
