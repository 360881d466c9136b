"""Liveness, readiness and metrics: no key needed (bind them to an internal network)."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict

from ccvault.api.deps import VaultDep
from ccvault.api.observe import drain_observers
from ccvault.config import JobsBackend
from ccvault.jobs.status import job_overview
from ccvault.metrics import exposition

router = APIRouter(tags=["operations"])
CHECK_TIMEOUT = 1.0
State = Literal["ok", "degraded", "down"]


class Health(BaseModel):
    """The process answers."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    status: Literal["ok"]
    """Always `ok`: an answer at all is the news."""


class Checks(BaseModel):
    """The state of each dependency."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    database: State
    """PostgreSQL: `ok` or `down`."""
    cache: State
    """Redis: `degraded` while unreachable (reads fall back to PostgreSQL)."""
    jobs: State
    """The job queue: `degraded` when no worker has sent a heartbeat lately."""


class Readiness(BaseModel):
    """Whether the process can serve requests, and what is impaired."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "status": "degraded",
                    "checks": {"database": "ok", "cache": "degraded", "jobs": "ok"},
                    "details": {"cache": "cache unreachable: serving from PostgreSQL"},
                }
            ]
        },
    )

    status: State
    """`down` when the database is, `degraded` when another check is, else `ok`."""
    checks: Checks
    """Each check's state."""
    details: dict[str, str]
    """Why a check is not `ok`, by check name."""


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


async def _database(vault: VaultDep) -> tuple[str, str | None]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), vault.pool.connection() as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:
        return "down", f"{type(exc).__name__}: {exc}"[:200]
    return "ok", None


async def _cache(vault: VaultDep) -> tuple[str, str | None]:
    if vault.cache is None:
        return "ok", "cache disabled"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            answered = await vault.cache.ping()
    except TimeoutError:
        answered = False
    if not answered:
        return "degraded", "cache unreachable: serving from PostgreSQL"
    return "ok", None


async def _jobs(vault: VaultDep) -> tuple[str, str | None]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            overview = await job_overview(vault.pool, limit=0)
    except Exception as exc:
        return "down", f"{type(exc).__name__}: {exc}"[:200]
    settings = vault.settings
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


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"description": "The database is down.", "model": Readiness}},
)
async def readyz(vault: VaultDep) -> JSONResponse:
    """200 while the database answers (cache/jobs may be degraded); 503 when it does not."""
    (db, db_detail), (cache, cache_detail) = await asyncio.gather(_database(vault), _cache(vault))
    jobs, jobs_detail = await _jobs(vault) if db == "ok" else ("down", "database down")
    checks = {"database": db, "cache": cache, "jobs": jobs}
    details = {
        k: v
        for k, v in {"database": db_detail, "cache": cache_detail, "jobs": jobs_detail}.items()
        if v
    }
    if db == "down":
        status = "down"
    elif "degraded" in checks.values():
        status = "degraded"
    else:
        status = "ok"
    body = {"status": status, "checks": checks, "details": details}
    return JSONResponse(body, status_code=503 if db == "down" else 200)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(vault: VaultDep) -> Response:
    """Prometheus text exposition, the pool and the job queue read now."""
    drain_observers()  # requests answered earlier in this loop turn count too
    return Response(await exposition(vault.pool), media_type=CONTENT_TYPE_LATEST)
