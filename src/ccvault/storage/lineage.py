"""Lineage traversal: one recursive query over fields and assets, depth-limited, cycle-safe."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic_core import from_json, to_json

from ccvault.domain.errors import NotFound
from ccvault.domain.models import Direction, Lineage, LineageEntry, ProfileAsset, ProfileField
from ccvault.storage.db import Pool
from ccvault.storage.model_json import SHAPE_ERRORS, Unexpected, fields_of, fix
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

# The answer's shape, for lineage_json: its keys, and for the item (a field or an asset,
# told apart by its keys) and each chain entry, what the models would rewrite.
_KEYS = tuple(Lineage.model_fields)
_ITEMS = {
    tuple(model.model_fields): (fields_of(model, datetime), fields_of(model, float))
    for model in (ProfileField, ProfileAsset)
}
_ENTRY_KEYS = tuple(LineageEntry.model_fields)
_ENTRY_TIMES = fields_of(LineageEntry, datetime)


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
    doc, owner = await _walk(pool, tenant_id, item_id, direction, max_depth)
    return Lineage.model_validate_json(doc), owner


async def lineage_json_owned(
    pool: Pool, tenant_id: UUID, item_id: UUID, direction: Direction, max_depth: int = MAX_DEPTH
) -> tuple[bytes, str | None]:
    """As `lineage_owned`, the answer as the API's JSON bytes (`answer_json`)."""
    doc, owner = await _walk(pool, tenant_id, item_id, direction, max_depth)
    return answer_json(doc), owner


async def _walk(
    pool: Pool, tenant_id: UUID, item_id: UUID, direction: Direction, max_depth: int
) -> tuple[str, str | None]:
    """The walk's JSON document and the item's owner; NotFound for an item not held."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q[direction.value], {"tenant_id": tenant_id, "id": item_id, "max_depth": max_depth}
        )
        row = await cur.fetchone()
    if row is None or not row[0]:
        raise NotFound(f"no item {item_id}")
    return row[1], row[2]


def answer_json(doc: str) -> bytes:
    """`Lineage.model_validate_json(doc).model_dump_json()`, what `GET /v1/lineage/{id}`
    answers: rewritten without the models (`lineage_json`), through them when it cannot."""
    try:
        return lineage_json(doc)
    except Unexpected:
        return Lineage.model_validate_json(doc).model_dump_json().encode()


def lineage_json(doc: str) -> bytes:
    """The models' JSON of the walk's document, without the models (model_json.py says
    how); `Unexpected` when the document is not in the shape the models would dump as
    it is (keys missing, extra or out of order, a timestamp not in UTC)."""
    try:
        found: dict[str, Any] = from_json(doc)
        if tuple(found) != _KEYS:
            raise Unexpected("not a lineage document")
        item = found["item"]
        times, floats = _ITEMS[tuple(item)]  # KeyError: neither a field's nor an asset's keys
        fix(item, times, floats)
        for entry in found["chain"]:
            if tuple(entry) != _ENTRY_KEYS:
                raise Unexpected("not a chain entry")
            fix(entry, _ENTRY_TIMES)
    except SHAPE_ERRORS as exc:
        raise Unexpected(str(exc)) from None
    return to_json(found)
