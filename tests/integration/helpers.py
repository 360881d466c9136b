"""Builders and raw-SQL helpers shared by the store-level integration tests."""

from __future__ import annotations

from typing import Any, LiteralString
from uuid import UUID

from ccvault.domain.models import ProfileAsset, ProfileField, Source
from ccvault.domain.writes import NewAsset, NewField
from ccvault.storage.db import Pool

Item = ProfileField | ProfileAsset

# Values as the API would store them, and some only SQL could (numbers whose text the
# driver would never write: the models' parse decides how they read back), for the tests
# comparing the JSON paths written without the models with the models' own.
VALUES: list[Any] = [
    "plain",
    "",
    'unicode: ção 日本 😀, quote " backslash \\ tab \t newline \n nul-ish \x01 \x1f \x7f',
    0,
    -7,
    1002,
    2**63 + 5,
    -(2**70),
    0.1,
    1.5,
    -0.0,
    1e-07,
    1.7976931348623157e308,
    123456.789,
    True,
    False,
    [],
    {},
    [1, "two", 3.0, None, {"four": [5]}],
    {"nested": {"deep": [1.25, "x", {"y": None}]}, "k w": "v : w", "": 1},
]
RAW_NUMBERS = ["1.50", "0.0000001", "1E+3", "12345678901234567890.5", "-0", "100.000"]


def source_link(item: Item) -> dict[str, str]:
    """The source_item_id/source_item_type pair naming a vault item as a source."""
    kind = "profile_field" if isinstance(item, ProfileField) else "profile_asset"
    return {"source_item_id": str(item.id), "source_item_type": kind}


def new_field(value: Any = "value", *, derived_from: Item | None = None, **extra: Any) -> NewField:
    """A field write from the user, optionally derived from another vault item."""
    link = source_link(derived_from) if derived_from is not None else {}
    return NewField.model_validate(
        {"value": value, "source": Source.user_provided, **link, **extra}
    )


def new_asset(
    name: str = "passport", *, derived_from: Item | None = None, **extra: Any
) -> NewAsset:
    """An asset write (a document reference), optionally derived from another vault item."""
    link = source_link(derived_from) if derived_from is not None else {}
    body = {
        "name": name,
        "asset_type": "document",
        "storage_provider": "s3",
        "storage_path": f"bucket/{name}.pdf",
        "mime_type": "application/pdf",
        "size_bytes": 1234,
        "checksum": "sha256:abc",
        **link,
        **extra,
    }
    return NewAsset.model_validate(body)


async def fetch(pool: Pool, query: LiteralString, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one raw query outside the store and return every row."""
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall()


async def profile_row_id(pool: Pool, tenant_id: UUID, customer_id: str) -> UUID | None:
    """The customer_profiles.id of a customer_id (no alias following), or None."""
    rows = await fetch(
        pool,
        "SELECT id FROM customer_profiles WHERE tenant_id = %s AND customer_id = %s",
        (tenant_id, customer_id),
    )
    return rows[0][0] if rows else None


async def stored_field(pool: Pool, field_id: UUID) -> dict[str, Any]:
    """The raw profile_fields row (stored status, not the effective one read APIs report)."""
    rows = await fetch(pool, "SELECT to_jsonb(f) FROM profile_fields f WHERE id = %s", (field_id,))
    assert rows, f"no profile_fields row {field_id}"
    doc: dict[str, Any] = rows[0][0]
    return doc


async def stored_asset(pool: Pool, asset_id: UUID) -> dict[str, Any]:
    """The raw profile_assets row."""
    rows = await fetch(pool, "SELECT to_jsonb(s) FROM profile_assets s WHERE id = %s", (asset_id,))
    assert rows, f"no profile_assets row {asset_id}"
    doc: dict[str, Any] = rows[0][0]
    return doc


async def count_fields(pool: Pool, tenant_id: UUID, name: str | None = None) -> int:
    """How many field rows (any status, deleted or not) a tenant has, optionally for one name."""
    rows = await fetch(
        pool,
        "SELECT count(*) FROM profile_fields"
        " WHERE tenant_id = %(t)s AND (%(n)s::text IS NULL OR name = %(n)s)",
        {"t": tenant_id, "n": name},
    )
    return int(rows[0][0])


async def bare_tenant(pool: Pool) -> UUID:
    """A tenant inserted with the first migration's columns only: usable on a database
    migrated to an old revision (TenantStore writes later columns)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO tenants (id, name, validation_mode)"
            " VALUES (gen_random_uuid(), 't', 'warn') RETURNING id"
        )
        row = await cur.fetchone()
    assert row is not None
    tenant_id: UUID = row[0]
    return tenant_id
