"""Tenants and their API keys. Keys are random and shown once; only their SHA-256 is kept."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from uuid import UUID

from psycopg.errors import UniqueViolation

from ccvault.domain.errors import Conflict, NotFound
from ccvault.domain.models import Tenant
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("tenants.sql")
KEY_PREFIX = "ccv_"


def hash_key(api_key: str) -> bytes:
    """SHA-256 of a key: enough for 256-bit random keys, and cheap on every request."""
    return hashlib.sha256(api_key.encode()).digest()


@dataclass(frozen=True)
class Caller:
    """The tenant an API key belongs to, and which of its keys was presented."""

    tenant_id: UUID
    name: str
    validation_mode: str
    key_id: UUID | None = None
    # Signs cursors handed to this tenant; resolved with the key, so signing costs no query.
    secret: bytes = field(default=b"", repr=False)


class TenantStore:
    """Creates tenants, issues keys, resolves a presented key to its tenant."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def create(self, name: str, validation_mode: str) -> tuple[Tenant, str]:
        """A new tenant and its first API key (the only time the key is known in clear)."""
        api_key = KEY_PREFIX + secrets.token_urlsafe(32)
        async with self.pool.connection() as conn, conn.transaction():
            try:
                cur = await conn.execute(
                    Q["insert_tenant"],
                    {"id": uuid.uuid4(), "name": name, "validation_mode": validation_mode},
                )
            except UniqueViolation:
                raise Conflict(f"tenant {name!r} already exists") from None
            row = await cur.fetchone()
            assert row is not None
            tenant = Tenant(
                tenant_id=row[0], name=row[1], validation_mode=row[2], created_at=row[3]
            )
            await conn.execute(
                Q["insert_api_key"],
                {
                    "id": uuid.uuid4(),
                    "tenant_id": tenant.tenant_id,
                    "key_hash": hash_key(api_key),
                    "key_prefix": api_key[:8],
                },
            )
        return tenant, api_key

    async def get_by_name(self, name: str) -> Tenant | None:
        """The tenant with that name, if any."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["get_tenant_by_name"], {"name": name})
            row = await cur.fetchone()
        return (
            None
            if row is None
            else Tenant(tenant_id=row[0], name=row[1], validation_mode=row[2], created_at=row[3])
        )

    async def get(self, tenant_id: UUID) -> Tenant:
        """The tenant with that id; NotFound otherwise."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["get_tenant"], {"id": tenant_id})
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no tenant {tenant_id}")
        return Tenant(tenant_id=row[0], name=row[1], validation_mode=row[2], created_at=row[3])

    async def set_validation_mode(self, tenant_id: UUID, mode: str) -> Tenant:
        """Change how strictly the tenant's field writes are validated."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                Q["set_validation_mode"], {"id": tenant_id, "validation_mode": mode}
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no tenant {tenant_id}")
        return Tenant(tenant_id=row[0], name=row[1], validation_mode=row[2], created_at=row[3])

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
        )
