"""Liveness, readiness and metrics: no key needed (bind them to an internal network)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict

from ccvault.api.deps import ServicesDep
from ccvault.api.observe import drain_observers

router = APIRouter(tags=["operations"])
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


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"description": "The database is down.", "model": Readiness}},
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 while the database answers (cache/jobs may be degraded); 503 when it does not."""
    ready = await services.health.readiness()
    body = {"status": ready.status, "checks": ready.checks, "details": ready.details}
    return JSONResponse(body, status_code=503 if ready.status == "down" else 200)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus text exposition, the pool and the job queue read now."""
    drain_observers()  # requests answered earlier in this loop turn count too
    return Response(await services.health.metrics(), media_type=CONTENT_TYPE_LATEST)
