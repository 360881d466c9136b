"""Job workers come back by themselves after PostgreSQL restarts (issue 11, point 4).

procrastinate stops a worker for good when its LISTEN connection or heartbeat loses the
database; run_worker (the in-process worker of `ccv serve` and `ccv worker`) starts it
again once the database answers, so a job deferred afterwards runs. Stopping still works
while it waits: a cancel or SIGTERM ends it promptly. The server restarted here is a
PostgreSQL of the module's own (pg_support.py); each test has a database of its own on it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from jobs_support import NEVER, start_worker, wait_until
from pydantic import SecretStr

from ccvault.api.app import create_app
from ccvault.config import Settings
from ccvault.extraction.models import SourceKind
from ccvault.runtime import Vault, open_vault
from ccvault.storage.scenarios import ScenarioStore
from integration.helpers import fetch
from pg_support import DedicatedPostgres, dedicated_postgres

CCV = Path(sys.executable).with_name("ccv")
AGENT = "agent-r"
# Long enough for every side task of the worker to see the server gone.
DOWN_SECONDS = 2.0
STOPPED_WARNING = "job worker stopped: restarting it when the database answers"
RESTARTING = "job worker restarting"
# "Promptly" for a stop while the worker waits for the database: the wait is a sleep of
# at most a second between probes, so this is a generous bound.
PROMPT_SECONDS = 5.0


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[DedicatedPostgres]:
    """A PostgreSQL this module may stop and start (started again before each test)."""
    async with dedicated_postgres() as pg:
        yield pg


@pytest.fixture
async def settings(server: DedicatedPostgres) -> Settings:
    """Settings on a fresh database of the test's own, sweeps parked, no cache."""
    if not server.running:
        await server.start()
    url = await asyncio.to_thread(server.database, f"ccv_w_{uuid.uuid4().hex[:10]}")
    return Settings(
        database_url=url,
        cache=False,
        admin_api_key=SecretStr("worker-admin-key"),
        expire_cron=NEVER,
        orphan_cron=NEVER,
        db_pool_min=1,
        db_pool_max=4,
        worker_concurrency=2,
    )


@pytest.fixture
async def vault(settings: Settings, server: DedicatedPostgres) -> AsyncIterator[Vault]:
    """The test's own vault, to defer jobs and look at the queue."""
    opened = await open_vault(settings)
    yield opened
    await opened.close()
    if not server.running:
        await server.start()


async def restart(server: DedicatedPostgres) -> None:
    """A PostgreSQL restart with a few seconds of downtime."""
    await server.stop()
    await asyncio.sleep(DOWN_SECONDS)
    await server.start()


async def registered_workers(vault: Vault) -> int:
    """Workers that sent a heartbeat in the last few seconds."""
    rows = await fetch(
        vault.pool,
        "SELECT count(*) FROM procrastinate_workers"
        " WHERE last_heartbeat > now() - interval '10 seconds'",
    )
    return int(rows[0][0])


def a_live_worker(vault: Vault) -> Callable[[], Awaitable[bool]]:
    """A check: some worker is registered and alive."""

    async def check() -> bool:
        return await registered_workers(vault) >= 1

    return check


async def defer_extraction(vault: Vault, tenant_id: UUID, scenario_id: str) -> None:
    """Store a scenario: its extraction job is deferred in the same transaction."""
    body = {"name": "Refund", "description": "To refund an order we need the order number."}
    await ScenarioStore(vault.pool).put_scenario(tenant_id, AGENT, scenario_id, body)


def extraction_done(
    vault: Vault, tenant_id: UUID, scenario_id: str
) -> Callable[[], Awaitable[bool]]:
    """A check: the scenario's extraction job ran."""

    async def check() -> bool:
        stored = await ScenarioStore(vault.pool).get(
            SourceKind.scenario, tenant_id, AGENT, scenario_id
        )
        return bool(stored["extraction"]["status"] == "done")

    return check


async def test_the_in_process_worker_runs_a_job_deferred_after_a_postgres_restart(
    server: DedicatedPostgres, settings: Settings, vault: Vault
) -> None:
    tenant_id = (await vault.tenants.create("in-process", "warn"))[0].tenant_id
    app = create_app(settings.model_copy(update={"in_process_worker": True}))

    async with app.router.lifespan_context(app):
        await wait_until(a_live_worker(vault), 20, "the in-process worker")
        await defer_extraction(vault, tenant_id, "before")
        await wait_until(extraction_done(vault, tenant_id, "before"), 20, "the first job")

        await restart(server)
        await defer_extraction(vault, tenant_id, "after")

        await wait_until(extraction_done(vault, tenant_id, "after"), 30, "the job deferred after")
        await wait_until(a_live_worker(vault), 20, "a registered worker again")


async def test_a_worker_task_survives_two_restarts_in_a_row(
    server: DedicatedPostgres, settings: Settings, vault: Vault
) -> None:
    """run_worker as a task, the way the in-process worker and `ccv worker` call it."""
    tenant_id = (await vault.tenants.create("twice", "warn"))[0].tenant_id
    worker = start_worker(vault, "twice-restarted")
    try:
        await wait_until(a_live_worker(vault), 20, "the worker")
        for round_ in range(2):
            await restart(server)
            await defer_extraction(vault, tenant_id, f"after-{round_}")
            done = extraction_done(vault, tenant_id, f"after-{round_}")
            await wait_until(done, 30, f"the job deferred after restart {round_ + 1}")
        assert not worker.done()
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_cancelling_a_worker_that_waits_for_the_database_ends_it_promptly(
    server: DedicatedPostgres, vault: Vault
) -> None:
    worker = start_worker(vault, "cancelled-while-waiting")
    await wait_until(a_live_worker(vault), 20, "the worker")
    await server.stop()
    await asyncio.sleep(DOWN_SECONDS)  # the worker has lost the database and waits for it
    assert not worker.done()

    started = time.monotonic()
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    took = time.monotonic() - started

    assert worker.cancelled()
    assert took < PROMPT_SECONDS


@asynccontextmanager
async def ccv_worker(settings: Settings, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`ccv worker` on the test's database, its output in `log`; killed if still running."""
    assert settings.database_url
    env = {
        **os.environ,
        "CCV_DATABASE_URL": settings.database_url,
        "CCV_CACHE": "off",
        "CCV_EXPIRE_CRON": NEVER,
        "CCV_ORPHAN_CRON": NEVER,
        "CCV_LOG_FORMAT": "json",
    }
    for name in ("CCV_CONFIG", "CCV_LLM_BASE_URL", "CCV_LLM_MODEL"):
        env.pop(name, None)
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(CCV), "worker", env=env, stdout=out, stderr=out
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def log_events(log: Path) -> list[dict[str, Any]]:
    """The JSON log lines a `ccv worker` wrote."""
    events = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def logged(log: Path, event: str) -> Callable[[], Awaitable[bool]]:
    """A check: the process logged `event`."""

    async def check() -> bool:
        return any(e.get("event") == event for e in log_events(log))

    return check


async def test_ccv_worker_comes_back_after_a_restart_logs_it_once_and_stops_on_sigterm(
    server: DedicatedPostgres, settings: Settings, vault: Vault, tmp_path: Path
) -> None:
    tenant_id = (await vault.tenants.create("ccv-worker", "warn"))[0].tenant_id
    log = tmp_path / "worker.log"
    async with ccv_worker(settings, log) as proc:
        await wait_until(a_live_worker(vault), 60, "`ccv worker` to register")

        await restart(server)
        await defer_extraction(vault, tenant_id, "after")
        await wait_until(extraction_done(vault, tenant_id, "after"), 30, "the job deferred after")

        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)

    events = [e for e in log_events(log) if e.get("logger") == "ccvault.jobs"]
    warnings = [e for e in events if e["event"] == STOPPED_WARNING]
    restarts = [e for e in events if e["event"] == RESTARTING]
    assert code == 0, log.read_text(errors="replace")[-3000:]
    assert len(warnings) == 1, events
    assert warnings[0]["level"] == "warning"
    assert len(restarts) == 1, events
    assert restarts[0]["level"] == "info"


async def test_sigterm_while_ccv_worker_waits_for_the_database_ends_it_promptly(
    server: DedicatedPostgres, settings: Settings, vault: Vault, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    async with ccv_worker(settings, log) as proc:
        await wait_until(a_live_worker(vault), 60, "`ccv worker` to register")
        await server.stop()
        await wait_until(logged(log, STOPPED_WARNING), 20, "the worker to notice the outage")

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
        took = time.monotonic() - started

    assert code == 0, log.read_text(errors="replace")[-3000:]
    assert took < PROMPT_SECONDS
