"""Lineage traversal: one recursive query over fields and assets, depth-limited, cycle-safe."""

from __future__ import annotations

from uuid import UUID

from ccvault.domain.errors import NotFound
from ccvault.domain.models import Direction, Lineage
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

MAX_DEPTH = 10
# How a chain member `c` finds the next field `f` and asset `s`, per direction.
_STEPS = {
    Direction.ancestors: (
        "c.source_item_type = 'profile_field' AND f.id = c.source_uuid",
        "c.source_item_type = 'profile_asset' AND s.id = c.source_uuid",
    ),
    Direction.descendants: ("f.source_uuid = c.item_id", "s.source_uuid = c.item_id"),
}
_WALK = load("lineage.sql")["walk"]
Q = {
    d.value: _WALK.replace("{field_step}", field).replace("{asset_step}", asset)
    for d, (field, asset) in _STEPS.items()
}


async def lineage(
    pool: Pool, tenant_id: UUID, item_id: UUID, direction: Direction, max_depth: int = MAX_DEPTH
) -> Lineage:
    """The item and its chain (depth 0 = the item), never leaving the tenant."""
    found, _ = await lineage_owned(pool, tenant_id, item_id, direction, max_depth)
    return found


async def lineage_owned(
    pool: Pool, tenant_id: UUID, item_id: UUID, direction: Direction, max_depth: int = MAX_DEPTH
) -> tuple[Lineage, str | None]:
    """As `lineage`, with the id of the customer whose profile holds the item (read in
    the same statement, so in the same snapshot as the item)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q[direction.value], {"tenant_id": tenant_id, "id": item_id, "max_depth": max_depth}
        )
        row = await cur.fetchone()
    if row is None or not row[0]:
        raise NotFound(f"no item {item_id}")
    return Lineage.model_validate_json(row[1]), row[2]
