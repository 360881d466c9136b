"""Webhook endpoints and their delivery log on PostgreSQL (the deliveries themselves are
queued by the event sequencer, migration 0024)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from ccvault.domain.errors import Conflict, NotFound
from ccvault.domain.webhooks import MAX_WEBHOOKS, Delivery, NewWebhook, Webhook
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("webhooks.sql")
_WEBHOOK = ("id", "url", "types", "created_at")


@dataclass(frozen=True)
class PendingDelivery:
    """What one delivery attempt sends, and where."""

    url: str
    secret: str
    body: bytes


async def create(pool: Pool, tenant_id: UUID, webhook_id: UUID, new: NewWebhook) -> Webhook:
    """Register an endpoint; Conflict past MAX_WEBHOOKS per tenant."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q["create"],
            {
                "tenant_id": tenant_id,
                "id": webhook_id,
                "url": new.url,
                "types": new.types,
                "secret": new.secret,
                "max": MAX_WEBHOOKS,
            },
        )
        row = await cur.fetchone()
    if row is None:
        raise Conflict(f"a tenant has at most {MAX_WEBHOOKS} webhooks; delete one first")
    return Webhook.model_validate(dict(zip(_WEBHOOK, row, strict=True)))


async def list_all(pool: Pool, tenant_id: UUID) -> list[Webhook]:
    """The tenant's endpoints, oldest first."""
    async with pool.connection() as conn:
        cur = await conn.execute(Q["list"], {"tenant_id": tenant_id})
        rows = await cur.fetchall()
    return [Webhook.model_validate(dict(zip(_WEBHOOK, r, strict=True))) for r in rows]


async def delete(pool: Pool, tenant_id: UUID, webhook_id: UUID) -> None:
    """Remove an endpoint and its log; NotFound when it is not the tenant's."""
    async with pool.connection() as conn:
        cur = await conn.execute(Q["delete"], {"tenant_id": tenant_id, "id": webhook_id})
        if await cur.fetchone() is None:
            raise NotFound(f"no webhook {webhook_id}")


async def deliveries(pool: Pool, tenant_id: UUID, webhook_id: UUID, limit: int) -> list[Delivery]:
    """The endpoint's newest `limit` attempts; NotFound when it is not the tenant's."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q["deliveries"], {"tenant_id": tenant_id, "id": webhook_id, "limit": limit}
        )
        rows = await cur.fetchall()
    if not rows:
        raise NotFound(f"no webhook {webhook_id}")
    return [
        Delivery(event_id=e, attempt=a, at=at, status_code=s, error=err)
        for _, e, a, at, s, err in rows
        if e is not None
    ]


async def load_delivery(
    pool: Pool, tenant_id: UUID, webhook_id: UUID, event_id: UUID
) -> PendingDelivery | None:
    """The endpoint and the event's body; None when either is gone."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q["load_delivery"],
            {"tenant_id": tenant_id, "webhook_id": webhook_id, "event_id": event_id},
        )
        row = await cur.fetchone()
    if row is None:
        return None
    url, secret, body = row
    return PendingDelivery(url, secret, body.encode())


async def record_attempt(
    pool: Pool,
    tenant_id: UUID,
    webhook_id: UUID,
    event_id: UUID,
    attempt: int,
    status_code: int | None,
    error: str | None,
) -> None:
    """Log one attempt (nothing when the endpoint was deleted meanwhile)."""
    async with pool.connection() as conn:
        await conn.execute(
            Q["record_attempt"],
            {
                "tenant_id": tenant_id,
                "webhook_id": webhook_id,
                "event_id": event_id,
                "attempt": attempt,
                "status_code": status_code,
                "error": error,
            },
        )
