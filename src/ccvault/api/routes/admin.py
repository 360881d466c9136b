"""Operator routes: tenants and their keys (admin key only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from ccvault.api.auth import AdminOnly
from ccvault.api.deps import ItemList, VaultDep, json_response
from ccvault.api.errors import responses
from ccvault.config import ValidationMode
from ccvault.domain.inputs import Input
from ccvault.domain.models import ApiKey, Tenant
from ccvault.domain.writes import KEY_LABEL_PATTERN
from ccvault.jobs.status import job_overview
from ccvault.jobs.sweeps import detect_orphaned_items, expire_stale_fields

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminOnly])
TenantName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")]
KeyLabel = Annotated[str, StringConstraints(pattern=KEY_LABEL_PATTERN)]


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
    key_id: UUID
    """The id of that key (to list or revoke it later)."""


class NewKey(Input):
    """POST /admin/tenants/{tenant_id}/keys body."""

    label: KeyLabel | None = None
    """A name for the key, to tell keys apart in lists (e.g. the service that uses it)."""


class CreatedKey(BaseModel):
    """A new key (shown this once; only its hash is stored)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    key_id: UUID
    """The key's id."""
    label: str | None
    """The label given at creation, if any."""
    api_key: str
    """The key itself: shown this once, only a hash is stored."""
    created_at: datetime
    """When the key was created."""


@router.post(
    "/tenants", status_code=201, response_model=CreatedTenant, responses=responses(403, 409, 422)
)
async def create_tenant(body: NewTenant, vault: VaultDep) -> Response:
    """Create a tenant and its first API key."""
    mode = body.validation_mode or vault.settings.validation_mode
    tenant, issued = await vault.tenants.create_with_key(body.name, mode.value)
    created = CreatedTenant(
        tenant_id=tenant.tenant_id,
        name=tenant.name,
        validation_mode=ValidationMode(tenant.validation_mode),
        api_key=issued.api_key,
        key_id=issued.key_id,
    )
    return json_response(created, 201)


@router.get("/tenants", response_model=ItemList[Tenant], responses=responses(403))
async def list_tenants(vault: VaultDep) -> Response:
    """Every tenant, oldest first."""
    return json_response(ItemList[Tenant](items=await vault.tenants.list_tenants()))


@router.post(
    "/tenants/{tenant_id}/keys",
    status_code=201,
    response_model=CreatedKey,
    responses=responses(403, 404, 422),
)
async def create_key(tenant_id: UUID, body: NewKey, vault: VaultDep) -> Response:
    """Issue another key for a tenant (rotation: issue, move callers over, revoke the old)."""
    issued = await vault.tenants.create_key(tenant_id, body.label)
    created = CreatedKey(
        key_id=issued.key_id,
        label=issued.label,
        api_key=issued.api_key,
        created_at=issued.created_at,
    )
    return json_response(created, 201)


@router.get(
    "/tenants/{tenant_id}/keys", response_model=ItemList[ApiKey], responses=responses(403, 404, 422)
)
async def list_keys(tenant_id: UUID, vault: VaultDep) -> Response:
    """A tenant's keys, revoked ones included (never the keys themselves)."""
    return json_response(ItemList[ApiKey](items=await vault.tenants.list_keys(tenant_id)))


@router.delete(
    "/tenants/{tenant_id}/keys/{key_id}", status_code=204, responses=responses(403, 404, 422)
)
async def revoke_key(tenant_id: UUID, key_id: UUID, vault: VaultDep) -> Response:
    """Revoke a key: refused here at once, on every process within
    CCV_API_KEY_CACHE_SECONDS. 404 when unknown or already revoked."""
    await vault.tenants.revoke_key(tenant_id, key_id)
    vault.keys.forget_key(key_id)
    return Response(status_code=204)


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
    pause = vault.settings.expire_pause
    return (await expire_stale_fields(vault.profiles, scope, pause=pause)).as_dict()


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
