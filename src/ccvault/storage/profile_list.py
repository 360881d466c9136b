"""The operators' profile list: keyset pages of a tenant's live profiles, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ccvault.domain.models import ProfileSummary
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("profile_list.sql")
# The first page starts after everything (see list_profiles in profile_list.sql).
_START = ("infinity", "infinity", "")
_COLUMNS = ("customer_id", "created_at", "updated_at", "verification_level", "active_fields")


@dataclass(frozen=True)
class ListPosition:
    """Where a page ended: the last profile's sort key, which the next page starts after
    (list_minute is updated_at floored to the minute, as the database computed it)."""

    list_minute: datetime
    updated_at: datetime
    customer_id: str


def prefix_end(prefix: str) -> str:
    """The least string above every string starting with `prefix`, in byte order.

    Customer ids are ASCII (DESIGN §4), so the last character can always be raised.
    """
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


async def list_profiles(
    pool: Pool,
    tenant_id: UUID,
    *,
    prefix: str | None,
    limit: int,
    after: ListPosition | None,
) -> tuple[list[ProfileSummary], ListPosition | None]:
    """One page (at most `limit` profiles after `after`) and where the next page starts,
    None on the last page. One query: one row more than the page tells if there is more."""
    start = (
        _START
        if after is None
        else (after.list_minute.isoformat(), after.updated_at.isoformat(), after.customer_id)
    )
    params: dict[str, object] = {
        "tenant_id": tenant_id,
        "after_minute": start[0],
        "after_updated_at": start[1],
        "after_customer_id": start[2],
        "limit": limit + 1,
    }
    query = Q["list_profiles"]
    if prefix:
        query = Q["list_profiles_by_prefix"]
        params |= {"prefix": prefix, "prefix_end": prefix_end(prefix)}
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        rows = await cur.fetchall()
    items = [
        ProfileSummary.model_validate(dict(zip(_COLUMNS, row[:-1], strict=True))) for row in rows
    ]
    if len(items) <= limit:
        return items, None
    last = items[limit - 1]
    return items[:limit], ListPosition(rows[limit - 1][-1], last.updated_at, last.customer_id)
