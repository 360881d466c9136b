"""Operator routes: tenants and their keys (admin key only)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import AdminOnly
from ccvault.api.deps import ServicesDep, json_response
from ccvault.api.errors import responses
from ccvault.domain.admin import (
    CreatedKey,
    CreatedTenant,
    JobsAnswer,
    NewKey,
    NewTenant,
    RetentionChange,
    SweepCounts,
    TenantPatch,
)
from ccvault.domain.answers import ItemList
from ccvault.domain.models import ApiKey, Tenant

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminOnly])


@router.post(
    "/tenants", status_code=201, response_model=CreatedTenant, responses=responses(403, 409, 422)
)
async def create_tenant(body: NewTenant, services: ServicesDep) -> Response:
    """Create a tenant and its first API key."""
    created = await services.tenants.create(
        body.name,
        body.validation_mode,
        require_purpose=body.require_purpose,
        history_retention_days=body.history_retention_days,
    )
    return json_response(created, 201)


@router.get("/tenants", response_model=ItemList[Tenant], responses=responses(403))
async def list_tenants(services: ServicesDep) -> Response:
    """Every tenant, oldest first."""
    return json_response(ItemList[Tenant](items=await services.tenants.list_all()))


@router.post(
    "/tenants/{tenant_id}/keys",
    status_code=201,
    response_model=CreatedKey,
    responses=responses(403, 404, 422),
)
async def create_key(tenant_id: UUID, body: NewKey, services: ServicesDep) -> Response:
    """Issue another key for a tenant (rotation: issue, move callers over, revoke the old)."""
    return json_response(await services.tenants.create_key(tenant_id, body.label), 201)


@router.get(
    "/tenants/{tenant_id}/keys", response_model=ItemList[ApiKey], responses=responses(403, 404, 422)
)
async def list_keys(tenant_id: UUID, services: ServicesDep) -> Response:
    """A tenant's keys, revoked ones included (never the keys themselves)."""
    return json_response(ItemList[ApiKey](items=await services.tenants.list_keys(tenant_id)))


@router.delete(
    "/tenants/{tenant_id}/keys/{key_id}", status_code=204, responses=responses(403, 404, 422)
)
async def revoke_key(tenant_id: UUID, key_id: UUID, services: ServicesDep) -> Response:
    """Revoke a key: refused here at once, on every process within
    CCV_API_KEY_CACHE_SECONDS. 404 when unknown or already revoked."""
    await services.tenants.revoke_key(tenant_id, key_id)
    return Response(status_code=204)


@router.patch("/tenants/{tenant_id}", response_model=Tenant, responses=responses(403, 404, 422))
async def patch_tenant(tenant_id: UUID, body: TenantPatch, services: ServicesDep) -> Response:
    """Change a tenant's validation mode and whether its reads must name a purpose."""
    retention = (
        RetentionChange(body.history_retention_days)
        if "history_retention_days" in body.model_fields_set
        else None
    )
    tenant = await services.tenants.patch(
        tenant_id,
        mode=body.validation_mode,
        require_purpose=body.require_purpose,
        history_retention=retention,
    )
    return json_response(tenant)


@router.post(
    "/profiles/expire-stale", response_model=SweepCounts, responses=responses(403, 404, 422)
)
async def expire_stale(services: ServicesDep, tenant_id: UUID | None = None) -> Response:
    """Run the expiry sweep now (the same code as the periodic job)."""
    return json_response(await services.operations.expire_stale(tenant_id))


@router.post(
    "/profiles/detect-orphans", response_model=SweepCounts, responses=responses(403, 404, 422)
)
async def detect_orphans(services: ServicesDep, tenant_id: UUID | None = None) -> Response:
    """Run orphan detection now (the same code as the periodic job)."""
    return json_response(await services.operations.detect_orphans(tenant_id))


@router.post(
    "/profiles/apply-retention", response_model=SweepCounts, responses=responses(403, 404, 422)
)
async def apply_retention(services: ServicesDep, tenant_id: UUID | None = None) -> Response:
    """Run the history retention sweep now (the same code as the daily job): `updated`
    counts the versions deleted."""
    return json_response(await services.operations.apply_retention(tenant_id))


@router.get("/jobs", response_model=JobsAnswer, responses=responses(403, 422))
async def list_jobs(
    services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> Response:
    """Recent jobs (newest first) and how many are in each state."""
    return json_response(await services.operations.jobs(limit))
