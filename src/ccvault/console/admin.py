"""The operator's pages (admin key): tenants, their keys, and the job queue."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Request, Response

from ccvault.console.web import AdminDep, form_of, redirect, render, text
from ccvault.console.web import state_of as console

router = APIRouter(prefix="/admin")
KeyId = Annotated[UUID, Path()]


@router.get("/tenants")
async def tenants(request: Request, who: AdminDep) -> Response:
    """Every tenant, oldest first."""
    listed = await console(request).services.tenants.list_all()
    return render(
        request, "admin_tenants.html", {"title": "Tenants", "active": "tenants", "tenants": listed}
    )


@router.get("/tenants/{tenant_id}")
async def tenant(request: Request, who: AdminDep, tenant_id: UUID) -> Response:
    """One tenant and its keys (never the keys themselves)."""
    services = console(request).services
    found = await services.tenants.get(tenant_id)
    keys = await services.tenants.list_keys(tenant_id)
    return render(
        request,
        "admin_tenant.html",
        {"title": f"Tenant {found.name}", "active": "tenants", "tenant": found, "keys": keys},
    )


@router.post("/tenants/{tenant_id}/keys")
async def create_key(request: Request, who: AdminDep, tenant_id: UUID) -> Response:
    """Issue a key; the page shows it this once."""
    form = await form_of(request)
    services = console(request).services
    created = await services.tenants.create_key(tenant_id, text(form, "label")[:100] or None)
    found = await services.tenants.get(tenant_id)
    keys = await services.tenants.list_keys(tenant_id)
    return render(
        request,
        "admin_tenant.html",
        {
            "title": f"Tenant {found.name}",
            "active": "tenants",
            "tenant": found,
            "keys": keys,
            "created": created,
        },
        status_code=201,
    )


@router.post("/tenants/{tenant_id}/keys/{key_id}/revoke")
async def revoke_key(request: Request, who: AdminDep, tenant_id: UUID, key_id: KeyId) -> Response:
    """Revoke a key (its console sessions end with it)."""
    await console(request).services.tenants.revoke_key(tenant_id, key_id)
    return redirect(request, f"/admin/tenants/{tenant_id}")


@router.get("/jobs")
async def jobs(request: Request, who: AdminDep) -> Response:
    """Counts per state, live workers, backlog and the most recent jobs."""
    overview = await console(request).services.operations.jobs()
    return render(request, "admin_jobs.html", {"title": "Jobs", "active": "jobs", "jobs": overview})
