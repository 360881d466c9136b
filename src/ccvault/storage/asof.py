"""Reads as of an instant (DESIGN §8 "Time"): a profile as it stood at T, in one query
(asof.sql), from the versions, orphaning times, merges and consent history the vault keeps
(migration 0019). Never cached: the answer for a past instant is read where it is kept."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ccvault.domain.errors import NotFound
from ccvault.domain.models import Profile
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("asof.sql")


async def profile_as_of(
    pool: Pool,
    tenant_id: UUID,
    customer_id: str,
    as_of: datetime,
    *,
    include_history: bool = False,
) -> Profile:
    """The profile `customer_id` named at `as_of`, as a read then would have shown it
    (with each field's versions at that instant when `include_history`); NotFound when
    the id named no profile then."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q["profile_as_of"],
            {
                "tenant_id": tenant_id,
                "customer_id": customer_id,
                "as_of": as_of,
                "history": include_history,
            },
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no profile {customer_id!r} at {as_of.isoformat()}")
    return Profile.model_validate_json(row[0])
