"""Export reads: every version of a profile's fields and assets, page by page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal
from uuid import UUID

from ccvault.domain.purposes import DefinitionUse
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("export.sql")
# Rows per round trip: large enough that the round trips cost little next to the rows,
# small enough that a page is a few hundred kilobytes however large the profile.
BATCH = 500


async def versions(
    pool: Pool,
    tenant_id: UUID,
    customer_id: str,
    kind: Literal["field_versions", "asset_versions"],
    batch: int = BATCH,
) -> AsyncIterator[list[tuple[str, str]]]:
    """Pages of (name, item document as JSON text), by name, newest first within a name.

    Each page is its own query on a connection taken for that page only: a slow client
    holds no connection and no open transaction (which the server would end after the
    statement timeout). A write between pages may show in the later pages only."""
    after: tuple[object, object, object] = (None, None, None)
    while True:
        async with pool.connection() as conn:
            cur = await conn.execute(
                Q[kind],
                {
                    "tenant_id": tenant_id,
                    "customer_id": customer_id,
                    "after_name": after[0],
                    "after_at": after[1],
                    "after_id": after[2],
                    "batch": batch,
                },
            )
            rows = await cur.fetchall()
        if not rows:
            return
        yield [(name, doc) for name, _, _, doc in rows]
        if len(rows) < batch:
            return
        after = rows[-1][:3]


async def definition_uses(pool: Pool, tenant_id: UUID, customer_id: str) -> list[DefinitionUse]:
    """Each (field name, definition) pair the profile's versions were written under."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q["definition_uses"], {"tenant_id": tenant_id, "customer_id": customer_id}
        )
        return [DefinitionUse(name, definition) for name, definition in await cur.fetchall()]


async def consent_history(pool: Pool, tenant_id: UUID, customer_id: str) -> str:
    """Every consent answer kept for the customer, oldest first, as JSON array text."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q["consent_history"], {"tenant_id": tenant_id, "customer_id": customer_id}
        )
        row = await cur.fetchone()
    return "[]" if row is None else str(row[0])
