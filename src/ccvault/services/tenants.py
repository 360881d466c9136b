"""Operators' use cases: tenants and their API keys (the admin routes and the CLI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from ccvault.domain.admin import CreatedKey, CreatedTenant, IssuedKey, RetentionChange
from ccvault.domain.models import ApiKey, Tenant, ValidationMode
from ccvault.services.keys import KeyResolver
from ccvault.storage.db import open_pool
from ccvault.storage.tenants import TenantStore


class TenantService:
    """Create and list tenants, change their settings, issue, list and revoke keys.

    A change this process makes is seen by its own key resolver at once, and by every
    other process within CCV_API_KEY_CACHE_SECONDS."""

    def __init__(
        self,
        tenants: TenantStore,
        default_mode: ValidationMode,
        keys: KeyResolver | None = None,
    ) -> None:
        self._tenants = tenants
        self._default_mode = default_mode
        self._keys = keys

    async def create(
        self,
        name: str,
        mode: ValidationMode | None = None,
        *,
        require_purpose: bool = False,
        history_retention_days: int | None = None,
    ) -> CreatedTenant:
        """A tenant and its first key (the key is in the answer this once); the mode
        defaults to CCV_VALIDATION_MODE."""
        mode = mode or self._default_mode
        tenant, issued = await self._tenants.create_with_key(
            name,
            mode.value,
            require_purpose=require_purpose,
            history_retention_days=history_retention_days,
        )
        return CreatedTenant(
            tenant_id=tenant.tenant_id,
            name=tenant.name,
            validation_mode=ValidationMode(tenant.validation_mode),
            require_purpose=tenant.require_purpose,
            history_retention_days=tenant.history_retention_days,
            api_key=issued.api_key,
            key_id=issued.key_id,
        )

    async def ensure(self, name: str) -> str | None:
        """Create the tenant unless it exists; its new key, or None when it existed."""
        if await self._tenants.get_by_name(name) is not None:
            return None
        return (await self.create(name)).api_key

    async def list_all(self) -> list[Tenant]:
        """Every tenant, oldest first."""
        return await self._tenants.list_tenants()

    async def get(self, tenant_id: UUID) -> Tenant:
        """One tenant; NotFound otherwise."""
        return await self._tenants.get(tenant_id)

    async def named(self, name: str) -> Tenant | None:
        """The tenant of that name, if any."""
        return await self._tenants.get_by_name(name)

    async def patch(
        self,
        tenant_id: UUID,
        *,
        mode: ValidationMode | None = None,
        require_purpose: bool | None = None,
        history_retention: RetentionChange | None = None,
    ) -> Tenant:
        """Change how the tenant's field writes are validated, whether its reads must
        name a purpose, and how long its history is kept (None keeps a setting)."""
        tenant = await self._tenants.patch(
            tenant_id,
            validation_mode=mode.value if mode else None,
            require_purpose=require_purpose,
            history_retention=history_retention,
        )
        if self._keys is not None:
            self._keys.forget_tenant(tenant_id)
        return tenant

    async def create_key(self, tenant_id: UUID, label: str | None = None) -> CreatedKey:
        """Another key for the tenant (rotation: issue, move callers over, revoke the old)."""
        issued: IssuedKey = await self._tenants.create_key(tenant_id, label)
        return CreatedKey(
            key_id=issued.key_id,
            label=issued.label,
            api_key=issued.api_key,
            created_at=issued.created_at,
        )

    async def list_keys(self, tenant_id: UUID) -> list[ApiKey]:
        """The tenant's keys, revoked ones included (never the keys themselves)."""
        return await self._tenants.list_keys(tenant_id)

    async def revoke_key(self, tenant_id: UUID, key_id: UUID) -> None:
        """Revoke a live key; NotFound when unknown or already revoked."""
        await self._tenants.revoke_key(tenant_id, key_id)
        if self._keys is not None:
            self._keys.forget_key(key_id)


@asynccontextmanager
async def tenant_admin(
    database_url: str, default_mode: ValidationMode
) -> AsyncIterator[TenantService]:
    """Tenant administration on a database of its own one-connection pool (the CLI's way
    in: no cache, no key memory to keep in step)."""
    pool = await open_pool(database_url, min_size=1, max_size=1)
    try:
        yield TenantService(TenantStore(pool), default_mode)
    finally:
        await pool.close()
