"""Lineage traversal: one recursive query over fields and assets, depth-limited, cycle-safe."""

from __future__ import annotations

from uuid import UUID

from pydantic import TypeAdapter

from ccvault.domain.errors import NotFound
from ccvault.domain.models import Direction, Lineage, LineageEntry, ProfileAsset, ProfileField
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("lineage.sql")
MAX_DEPTH = 10
_ITEM: TypeAdapter[ProfileField | ProfileAsset] = TypeAdapter(ProfileField | ProfileAsset)


async def lineage(
    pool: Pool, tenant_id: UUID, item_id: UUID, direction: Direction, max_depth: int = MAX_DEPTH
) -> Lineage:
    """The item and its chain (depth 0 = the item), never leaving the tenant."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q[direction.value], {"tenant_id": tenant_id, "id": item_id, "max_depth": max_depth}
        )
        rows = await cur.fetchall()
    if not rows:
        raise NotFound(f"no item {item_id}")
    chain: list[LineageEntry] = []
    truncated = cycle = False
    for depth, iid, itype, name, status, deleted_at, source_item_id, is_cycle, _doc in rows:
        if is_cycle:
            cycle = True
        elif depth > max_depth:
            truncated = True
        else:
            chain.append(
                LineageEntry(
                    depth=depth,
                    item_id=iid,
                    item_type=itype,
                    name=name,
                    status=status,
                    deleted_at=deleted_at,
                    source_item_id=source_item_id,
                )
            )
    item = _ITEM.validate_python(rows[0][8])
    return Lineage(item=item, chain=chain, truncated=truncated, cycle_detected=cycle)
