"""The job queue with real workers on PostgreSQL: periodic ticks run once across workers,
failing jobs are retried with growing delays, a stopped worker lets its job finish, and the
API serves (and says the jobs are degraded) while no worker runs.

Each test has a database of its own (see conftest.py), so its workers see only its jobs.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from jobs_support import (
    FINAL_STATES,
    NEVER,
    all_jobs,
    job_events,
    job_status,
    start_worker,
    stop_worker,
    wait_until,
)
from procrastinate import JobContext

from ccvault.api.app import create_app
from ccvault.config import Settings
from ccvault.jobs.queue import (
    EXPIRE_TASK,
    JANITOR_TASK,
    ORPHAN_TASK,
    ExponentialBackoff,
    build_app,
)
from ccvault.runtime import Vault, open_vault
from integration.helpers import fetch, new_field, stored_field

PAST = datetime(2020, 1, 1, tzinfo=UTC)
# procrastinate reads a sixth cron column as seconds: a tick every two seconds.
EVERY_TWO_SECONDS = "* * * * * */2"
ADMIN = {"Authorization": "Bearer test-admin-key"}


async def pending_jobs(vault: Vault) -> int:
    """Jobs waiting or running."""
    rows = await fetch(
        vault.pool, "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
    )
    return int(rows[0][0])


async def live_workers(vault: Vault) -> int:
    """Workers registered in procrastinate_workers."""
    return int((await fetch(vault.pool, "SELECT count(*) FROM procrastinate_workers"))[0][0])


def workers_registered(vault: Vault, n: int) -> Callable[[], Awaitable[bool]]:
    """A check: exactly `n` workers are registered."""

    async def check() -> bool:
        return await live_workers(vault) == n

    return check


async def queue_idle(vault: Vault) -> bool:
    """No job is waiting or running."""
    return await pending_jobs(vault) == 0


async def test_two_workers_run_each_periodic_tick_exactly_once(
    isolated_settings: Settings, isolated_vault: Vault
) -> None:
    vault = isolated_vault
    tenant_id = (await vault.tenants.create("ticks", "warn"))[0].tenant_id
    due = await vault.profiles.save_field(tenant_id, "c1", "otp", new_field("1", expires_at=PAST))
    source = await vault.profiles.save_field(tenant_id, "c1", "document_id", new_field("D"))
    derived = await vault.profiles.save_field(
        tenant_id,
        "c1",
        "birth_date",
        new_field("1990-01-01", source_item_id=str(source.id), source_item_type="profile_field"),
    )
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET deleted_at = now() WHERE id = %s", (source.id,)
        )
    ticking = isolated_settings.model_copy(
        update={"expire_cron": EVERY_TWO_SECONDS, "orphan_cron": EVERY_TWO_SECONDS}
    )
    worker_vaults = [await open_vault(ticking) for _ in range(2)]
    workers = [start_worker(v, name=f"ticker-{i}") for i, v in enumerate(worker_vaults)]
    transport = httpx.ASGITransport(app=create_app(vault=vault))
    async with httpx.AsyncClient(transport=transport, base_url="http://vault") as http:
        try:
            await wait_until(workers_registered(vault, 2), 10, "two live workers")
            running = (await http.get("/admin/jobs", headers=ADMIN)).json()
            await asyncio.sleep(10)
            # Stop between ticks, once the last deferred tick has run.
            await wait_until(lambda: queue_idle(vault), 5, "an idle queue")
        finally:
            await asyncio.gather(*(stop_worker(w) for w in workers))
            for v in worker_vaults:
                await v.close()
        after = (await http.get("/admin/jobs", headers=ADMIN)).json()

    jobs = await all_jobs(vault.pool)
    per_tick = Counter((job["task_name"], job["args"].get("timestamp")) for job in jobs)
    assert [key for key, n in per_tick.items() if n > 1] == [], "a tick ran more than once"
    ticks = {
        task: sorted(ts for name, ts in per_tick if name == task)
        for task in (EXPIRE_TASK, ORPHAN_TASK, JANITOR_TASK)
    }
    for task in (EXPIRE_TASK, ORPHAN_TASK):
        assert len(ticks[task]) >= 3, (task, ticks[task])
        assert all(ts % 2 == 0 for ts in ticks[task]), ticks[task]
    # A tick deferred while the workers were being stopped may still be waiting; no other.
    last_tick = {task: max(ts) for task, ts in ticks.items() if ts}

    def may_wait(job: dict[str, Any]) -> bool:
        return job["status"] == "todo" and job["args"]["timestamp"] == last_tick[job["task_name"]]

    unfinished = [job for job in jobs if job["status"] != "succeeded" and not may_wait(job)]
    assert unfinished == []
    assert (await stored_field(vault.pool, due.id))["status"] == "expired"
    assert (await stored_field(vault.pool, derived.id))["status"] == "orphaned"
    assert running["live_workers"] == 2
    assert after["live_workers"] == 0
    assert after["counts"]["succeeded"] == sum(job["status"] == "succeeded" for job in jobs)
    assert {item["task_name"] for item in after["items"]} >= {EXPIRE_TASK, ORPHAN_TASK}


async def test_a_failing_job_is_retried_with_growing_delays_and_given_up_after_its_attempts(
    isolated_vault: Vault,
) -> None:
    app = build_app(isolated_vault.settings)
    # Retries fall due 1 s and 2 s after a failure; the default 5 s poll would blur that.
    app.worker_defaults["fetch_job_polling_interval"] = 0.1
    calls: dict[str, list[tuple[float, int]]] = {"flaky": [], "hopeless": []}

    async def flaky(context: JobContext) -> str:
        calls["flaky"].append((time.monotonic(), context.job.attempts))
        if len(calls["flaky"]) < 3:
            raise RuntimeError("transient failure")
        return "done"

    async def hopeless(context: JobContext) -> None:
        calls["hopeless"].append((time.monotonic(), context.job.attempts))
        raise RuntimeError("permanent failure")

    retry = ExponentialBackoff(3, 1)
    flaky_task = app.task(name="test.flaky", pass_context=True, retry=retry, queue="ccv")(flaky)
    hopeless_task = app.task(name="test.hopeless", pass_context=True, retry=retry, queue="ccv")(
        hopeless
    )
    async with app.open_async():
        flaky_id = await flaky_task.defer_async()
        hopeless_id = await hopeless_task.defer_async()

    async def both_final() -> bool:
        statuses = [await job_status(isolated_vault.pool, j) for j in (flaky_id, hopeless_id)]
        return all(s in FINAL_STATES for s in statuses)

    worker = start_worker(isolated_vault, "retry-worker", app=app)
    try:
        await wait_until(both_final, 30, "both jobs to end")
    finally:
        await stop_worker(worker)

    assert await job_status(isolated_vault.pool, flaky_id) == "succeeded"
    assert await job_status(isolated_vault.pool, hopeless_id) == "failed"
    for job_id, end in ((flaky_id, "succeeded"), (hopeless_id, "failed")):
        events = await job_events(isolated_vault.pool, job_id)
        transitions = [kind for kind, _ in events if kind != "scheduled"]
        assert transitions == ["deferred", *["started", "deferred_for_retry"] * 2, "started", end]
        # Each retry was scheduled further ahead than the one before (1 s, then 2 s), and
        # no attempt started before its scheduled time.
        retried_at = [at for kind, at in events if kind == "deferred_for_retry"]
        scheduled_for = [at for kind, at in events if kind == "scheduled"]
        started_at = [at for kind, at in events if kind == "started"]
        delays = [
            (due - failed).total_seconds()
            for due, failed in zip(scheduled_for, retried_at, strict=True)
        ]
        assert len(delays) == 2
        assert delays[0] >= 0.9, delays
        assert delays[1] > delays[0], delays
        for due, started in zip(scheduled_for, started_at[1:], strict=True):
            assert started >= due
    for name in ("flaky", "hopeless"):
        (t0, a0), (t1, a1), (t2, a2) = calls[name]
        assert (a0, a1, a2) == (0, 1, 2)
        # Never before the backoff (1 s, then 2 s), and the second wait is the longer.
        assert t1 - t0 >= 0.9, calls[name]
        assert t2 - t1 >= 1.8, calls[name]
        assert t2 - t1 > t1 - t0, calls[name]


async def test_a_worker_stopped_mid_job_lets_the_job_finish(isolated_vault: Vault) -> None:
    app = build_app(isolated_vault.settings)
    progress: list[str] = []

    async def slow(context: JobContext) -> None:
        progress.append("started")
        await asyncio.sleep(1.5)
        progress.append("finished")

    task = app.task(name="test.slow", pass_context=True, queue="ccv")(slow)
    async with app.open_async():
        job_id = await task.defer_async()

    async def started() -> bool:
        return progress == ["started"]

    worker = start_worker(isolated_vault, "stopping-worker", app=app)
    try:
        await wait_until(started, 15, "the job to start")
        assert await job_status(isolated_vault.pool, job_id) == "doing"
    finally:
        await stop_worker(worker)

    assert worker.cancelled()
    assert progress == ["started", "finished"]
    assert await job_status(isolated_vault.pool, job_id) == "succeeded"
    assert await live_workers(isolated_vault) == 0


async def test_the_api_serves_without_a_worker_and_readyz_reports_jobs_degraded_until_one_runs(
    isolated_vault: Vault,
) -> None:
    _, key = await isolated_vault.tenants.create("no-worker", "warn")
    transport = httpx.ASGITransport(app=create_app(vault=isolated_vault))
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://vault", headers=headers
    ) as client:
        idle = await client.get("/readyz")
        body = {"value": "a@x.example", "source": "user_provided"}
        written = await client.put("/v1/profiles/c1/fields/email", json=body)
        read = await client.get("/v1/profiles/c1")

        worker = start_worker(isolated_vault, "ready-worker")
        try:
            await wait_until(workers_registered(isolated_vault, 1), 10, "the worker")
            working = await client.get("/readyz")
        finally:
            await stop_worker(worker)
        stopped = await client.get("/readyz")

    assert idle.status_code == 200, idle.text
    assert idle.json()["checks"] == {"database": "ok", "cache": "ok", "jobs": "degraded"}
    assert idle.json()["status"] == "degraded"
    assert "jobs" in idle.json()["details"]
    assert written.status_code == 201, written.text
    assert read.status_code == 200
    assert read.json()["fields"]["email"]["value"] == "a@x.example"
    assert working.status_code == 200
    assert working.json()["checks"]["jobs"] == "ok"
    assert working.json()["status"] == "ok"
    assert stopped.json()["checks"]["jobs"] == "degraded"


@pytest.mark.parametrize(("flag", "jobs_check"), [("1", "ok"), ("0", "degraded")])
async def test_an_api_process_runs_a_worker_of_its_own_unless_told_not_to(
    isolated_settings: Settings,
    isolated_vault: Vault,
    monkeypatch: pytest.MonkeyPatch,
    flag: str,
    jobs_check: str,
) -> None:
    # What `ccv serve` (flag "1") and `ccv serve --no-worker` (flag "0") hand to each API
    # process: the settings come from the environment.
    assert isolated_settings.database_url
    for name, value in {
        "CCV_DATABASE_URL": isolated_settings.database_url,
        "CCV_CACHE": "off",
        "CCV_EXPIRE_CRON": NEVER,
        "CCV_ORPHAN_CRON": NEVER,
        "CCV_IN_PROCESS_WORKER": flag,
    }.items():
        monkeypatch.setenv(name, value)
    app = create_app()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vault")

    async def jobs_reported() -> bool:
        ready = await client.get("/readyz")
        return bool(ready.json()["checks"]["jobs"] == jobs_check)

    async with app.router.lifespan_context(app), client:
        await wait_until(jobs_reported, 10, f"checks.jobs {jobs_check!r}")
        registered = await live_workers(isolated_vault)

    assert registered == (1 if flag == "1" else 0)
    assert await live_workers(isolated_vault) == 0
