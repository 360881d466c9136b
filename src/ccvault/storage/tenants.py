"""Tenants and their API keys. Keys are random and shown once; only their SHA-256 is kept."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.errors import ForeignKeyViolation, UniqueViolation

from ccvault.domain.admin import IssuedKey, RetentionChange
from ccvault.domain.caller import Caller
from ccvault.domain.errors import Conflict, NotFound
from ccvault.domain.models import ApiKey, Tenant
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("tenants.sql")
KEY_PREFIX = "ccv_"


def hash_key(api_key: str) -> bytes:
    """SHA-256 of a key: enough for 256-bit random keys, and cheap on every request."""
    return hashlib.sha256(api_key.encode()).digest()


def _tenant(row: Any) -> Tenant:
    return Tenant(
        tenant_id=row[0],
        name=row[1],
        validation_mode=row[2],
        created_at=row[3],
        require_purpose=row[4],
        history_retention_days=row[5],
    )


class TenantStore:
    """Creates tenants, issues and revokes keys, resolves a presented key to its tenant.

    The admin routes and the `ccv tenant` / `ccv key` commands call the same methods.
    """

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def create(self, name: str, validation_mode: str) -> tuple[Tenant, str]:
        """A new tenant and its first API key (the only time the key is known in clear)."""
        tenant, issued = await self.create_with_key(name, validation_mode)
        return tenant, issued.api_key

    async def create_with_key(
        self,
        name: str,
        validation_mode: str,
        label: str | None = None,
        *,
        require_purpose: bool = False,
        history_retention_days: int | None = None,
    ) -> tuple[Tenant, IssuedKey]:
        """A new tenant and its first key, with the key's id, in one transaction."""
        params = {
            "id": uuid.uuid4(),
            "name": name,
            "validation_mode": validation_mode,
            "require_purpose": require_purpose,
            "history_retention_days": history_retention_days,
        }
        async with self.pool.connection() as conn, conn.transaction():
            try:
                cur = await conn.execute(Q["insert_tenant"], params)
            except UniqueViolation:
                raise Conflict(f"tenant {name!r} already exists") from None
            tenant = _tenant(await cur.fetchone())
            issued = await self._issue(conn, tenant.tenant_id, label)
        return tenant, issued

    async def create_key(self, tenant_id: UUID, label: str | None = None) -> IssuedKey:
        """Another key for a tenant (rotation: issue, switch callers over, revoke the old).
        NotFound for an unknown tenant."""
        async with self.pool.connection() as conn:
            try:
                return await self._issue(conn, tenant_id, label)
            except ForeignKeyViolation:
                raise NotFound(f"no tenant {tenant_id}") from None

    async def _issue(
        self, conn: AsyncConnection[Any], tenant_id: UUID, label: str | None
    ) -> IssuedKey:
        api_key = KEY_PREFIX + secrets.token_urlsafe(32)
        cur = await conn.execute(
            Q["insert_api_key"],
            {
                "id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "key_hash": hash_key(api_key),
                "key_prefix": api_key[:8],
                "label": label,
            },
        )
        row = await cur.fetchone()
        assert row is not None
        return IssuedKey(key_id=row[0], label=row[1], api_key=api_key, created_at=row[2])

    async def list_tenants(self) -> list[Tenant]:
        """Every tenant, oldest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["list_tenants"])
            return [_tenant(row) for row in await cur.fetchall()]

    async def list_keys(self, tenant_id: UUID) -> list[ApiKey]:
        """A tenant's keys, revoked ones included, oldest first; NotFound for an unknown
        tenant."""
        await self.get(tenant_id)
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["list_api_keys"], {"tenant_id": tenant_id})
            rows = await cur.fetchall()
        names = ("key_id", "label", "created_at", "last_used_at", "revoked_at")
        return [ApiKey.model_validate(dict(zip(names, row, strict=True))) for row in rows]

    async def revoke_key(self, tenant_id: UUID, key_id: UUID) -> None:
        """Revoke a key for good. NotFound when the tenant has no such live key.

        Other processes stop accepting it when their memory of it lapses
        (CCV_API_KEY_CACHE_SECONDS); the caller drops it from its own KeyResolver.
        """
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["revoke_api_key"], {"tenant_id": tenant_id, "id": key_id})
            if await cur.fetchone() is None:
                raise NotFound(f"no live key {key_id} for tenant {tenant_id}")

    async def get_by_name(self, name: str) -> Tenant | None:
        """The tenant with that name, if any."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["get_tenant_by_name"], {"name": name})
            row = await cur.fetchone()
        return None if row is None else _tenant(row)

    async def get(self, tenant_id: UUID) -> Tenant:
        """The tenant with that id; NotFound otherwise."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["get_tenant"], {"id": tenant_id})
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no tenant {tenant_id}")
        return _tenant(row)

    async def set_validation_mode(self, tenant_id: UUID, mode: str) -> Tenant:
        """Change how strictly the tenant's field writes are validated."""
        return await self.patch(tenant_id, validation_mode=mode)

    async def patch(
        self,
        tenant_id: UUID,
        *,
        validation_mode: str | None = None,
        require_purpose: bool | None = None,
        history_retention: RetentionChange | None = None,
    ) -> Tenant:
        """Change the settings given (None keeps one); NotFound for an unknown tenant."""
        params = {
            "id": tenant_id,
            "validation_mode": validation_mode,
            "require_purpose": require_purpose,
            "set_retention": history_retention is not None,
            "history_retention_days": history_retention.days if history_retention else None,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["patch_tenant"], params)
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no tenant {tenant_id}")
        return _tenant(row)

    async def caller_for_key(self, api_key: str) -> Caller | None:
        """The tenant a presented key belongs to, or None for an unknown or revoked key."""
        digest = hash_key(api_key)
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["caller_for_key"], {"key_hash": digest})
            row = await cur.fetchone()
        # The lookup is by hash; the compare is constant-time anyway, as defence in depth.
        if row is None or not secrets.compare_digest(bytes(row[3]), digest):
            return None
        return Caller(
            tenant_id=row[0],
            name=row[1],
            validation_mode=row[2],
            key_id=row[4],
            secret=bytes(row[5]),
            require_purpose=row[6],
        )
