"""Operator routes: tenants and their keys (admin key only)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from ccvault.api.auth import AdminOnly
from ccvault.api.deps import VaultDep, json_response
from ccvault.api.errors import responses
from ccvault.config import ValidationMode
from ccvault.domain.inputs import Input
from ccvault.domain.models import Tenant
from ccvault.jobs.status import job_overview
from ccvault.jobs.sweeps import detect_orphaned_items, expire_stale_fields

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminOnly])
TenantName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")]


class NewTenant(Input):
    """POST /admin/tenants body."""

    name: TenantName
    """The tenant's name (letters, digits, `._ -`; up to 100 characters)."""
    validation_mode: ValidationMode | None = None
    """How its field writes are validated (default `CCV_VALIDATION_MODE`)."""


class TenantPatch(Input):
    """PATCH /admin/tenants/{tenant_id} body."""

    validation_mode: ValidationMode
    """The new validation mode."""


class CreatedTenant(BaseModel):
    """The new tenant with its API key (shown this once; only its hash is stored)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    tenant_id: UUID
    """The new tenant's id."""
    name: str
    """Its name."""
    validation_mode: ValidationMode
    """Its validation mode."""
    api_key: str
    """Its first API key: shown this once, only a hash is stored."""


@router.post(
    "/tenants", status_code=201, response_model=CreatedTenant, responses=responses(403, 409, 422)
)
async def create_tenant(body: NewTenant, vault: VaultDep) -> Response:
    """Create a tenant and its first API key."""
    mode = body.validation_mode or vault.settings.validation_mode
    tenant, key = await vault.tenants.create(body.name, mode.value)
    created = CreatedTenant(
        tenant_id=tenant.tenant_id,
        name=tenant.name,
        validation_mode=ValidationMode(tenant.validation_mode),
        api_key=key,
    )
    return json_response(created, 201)


@router.patch("/tenants/{tenant_id}", response_model=Tenant, responses=responses(403, 404, 422))
async def patch_tenant(tenant_id: UUID, body: TenantPatch, vault: VaultDep) -> Response:
    """Change a tenant's validation mode."""
    tenant = await vault.tenants.set_validation_mode(tenant_id, body.validation_mode.value)
    vault.keys.forget_tenant(tenant_id)
    return json_response(tenant)


class SweepCounts(BaseModel):
    """What a sweep changed: updated = fields + assets."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    updated: int
    """Items changed: `fields + assets`."""
    fields: int
    """Field versions changed."""
    assets: int
    """Asset versions changed."""


async def _sweep_scope(vault: VaultDep, tenant_id: UUID | None) -> UUID | None:
    if tenant_id is not None:
        await vault.tenants.get(tenant_id)  # 404 for an unknown tenant
    return tenant_id


@router.post(
    "/profiles/expire-stale", response_model=SweepCounts, responses=responses(403, 404, 422)
)
async def expire_stale(vault: VaultDep, tenant_id: UUID | None = None) -> dict[str, int]:
    """Run the expiry sweep now (the same code as the periodic job)."""
    scope = await _sweep_scope(vault, tenant_id)
    return (await expire_stale_fields(vault.profiles, scope)).as_dict()


@router.post(
    "/profiles/detect-orphans", response_model=SweepCounts, responses=responses(403, 404, 422)
)
async def detect_orphans(vault: VaultDep, tenant_id: UUID | None = None) -> dict[str, int]:
    """Run orphan detection now (the same code as the periodic job)."""
    scope = await _sweep_scope(vault, tenant_id)
    pause = vault.settings.orphan_pause
    return (await detect_orphaned_items(vault.profiles, scope, pause=pause)).as_dict()


class JobsAnswer(BaseModel):
    """GET /admin/jobs: counts per state and the most recent jobs."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    counts: dict[str, int]
    """How many jobs are in each state."""
    live_workers: int
    """Workers that sent a heartbeat recently."""
    backlog: int
    """Jobs due and not yet started."""
    items: list[dict[str, Any]]
    """The most recent jobs, newest first."""


@router.get("/jobs", response_model=JobsAnswer, responses=responses(403, 422))
async def list_jobs(vault: VaultDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> JobsAnswer:
    """Recent jobs (newest first) and how many are in each state."""
    overview = await job_overview(vault.pool, limit)
    return JobsAnswer(
        counts=overview.counts,
        live_workers=overview.live_workers,
        backlog=overview.backlog,
        items=overview.recent,
    )
