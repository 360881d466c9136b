"""The lineage answer written without the models (storage/lineage.py's lineage_json, what
`GET /v1/lineage/{id}` answers) is the very bytes the models answer: compared byte for
byte on chains of fields and assets holding every kind of value, odd floats and every
kind of timestamp, walked both ways from every item at every depth; a document it does
not expect goes through the models."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import httpx
import pytest
from psycopg.types.json import Jsonb

from ccvault.domain.models import Direction, Lineage, ProfileAsset, ProfileField
from ccvault.runtime import Vault
from ccvault.storage import lineage as lineage_sql
from ccvault.storage.lineage import answer_json, lineage_json, lineage_json_owned
from ccvault.storage.model_json import Unexpected

from .helpers import RAW_NUMBERS, VALUES, Item, new_asset, new_field

CUSTOMER = "lineage-json"
# Confidences as SQL could store them: whole numbers (dumped as 1.0), the smallest
# denormal, sums that do not round-trip short.
CONFIDENCES = ["1", "0", "5e-324", "0.30000000000000004", "0.999999999999999", "1e-300"]


def _models(doc: str) -> bytes:
    return Lineage.model_validate_json(doc).model_dump_json().encode()


async def _doc(
    vault: Vault, tenant_id: UUID, item_id: UUID, direction: Direction, depth: int
) -> str:
    doc, _ = await lineage_sql._walk(vault.pool, tenant_id, item_id, direction, depth)
    return doc


async def _both(
    vault: Vault, tenant_id: UUID, item_id: UUID, direction: Direction, depth: int
) -> Lineage:
    doc = await _doc(vault, tenant_id, item_id, direction, depth)
    expected = _models(doc)
    assert lineage_json(doc) == expected, (item_id, direction, depth)
    body, _ = await lineage_json_owned(vault.pool, tenant_id, item_id, direction, depth)
    assert body == expected
    return Lineage.model_validate_json(doc)


async def _chain(vault: Vault, tenant_id: UUID) -> list[Item]:
    """One chain: an asset, then a field per value, an asset after every fourth field."""
    store = vault.profiles
    items: list[Item] = [
        await store.save_asset(
            tenant_id, CUSTOMER, new_asset("root", expires_at="2098-05-06T07:08:09.5Z")
        )
    ]
    for i, value in enumerate(VALUES):
        items.append(
            await store.save_field(
                tenant_id,
                CUSTOMER,
                f"v_{i:02d}",
                new_field(
                    value,
                    derived_from=items[-1],
                    confidence=[0.0, 1.0, 0.1, 1e-05, 0.999999][i % 5],
                    verified=i % 3 == 0,
                    source_metadata={"tool": "t", "n": i, "f": i / 7} if i % 2 else {},
                    expires_at="2099-01-01T00:00:00Z" if i % 4 == 0 else None,
                    source_session_id="sess" if i % 5 == 0 else None,
                ),
            )
        )
        if i % 4 == 3:
            items.append(
                await store.save_asset(
                    tenant_id, CUSTOMER, new_asset(f"doc_{i:02d}", derived_from=items[-1])
                )
            )
    return items


async def _odd_values(vault: Vault, items: list[Item]) -> None:
    """What only SQL could write: odd numbers, instants and statuses."""
    fields = [i.id for i in items if isinstance(i, ProfileField)]
    assets = [i.id for i in items if isinstance(i, ProfileAsset)]
    async with vault.pool.connection() as conn:
        for n, text in enumerate(RAW_NUMBERS):
            await conn.execute(
                "UPDATE profile_fields SET value = %s::jsonb, source_metadata = %s WHERE id = %s",
                (text, Jsonb({"raw": n, "f": [0.5, 1e300, -2.0]}), fields[n]),
            )
        for n, text in enumerate(CONFIDENCES):
            await conn.execute(
                "UPDATE profile_fields SET confidence = %s::float8 WHERE id = %s",
                (text, fields[n + 6]),
            )
        # Whole seconds, a fraction ending in zeros, the first and last instants allowed,
        # instants written with other offsets (stored, and read back, in UTC).
        await conn.execute(
            "UPDATE profile_fields SET verified_at = '0001-01-02 00:00:00+00',"
            " collected_at = '2030-01-01 00:00:00+00', deleted_at = '2031-01-01 00:00:00+00'"
            " WHERE id = %s",
            (fields[3],),
        )
        await conn.execute(
            "UPDATE profile_fields SET verified_at = '2031-02-03 04:05:06.1+00',"
            " expires_at = '9999-12-30 23:59:59.999999+00',"
            " deleted_at = '2032-03-04 05:06:07.000001+00' WHERE id = %s",
            (fields[6],),
        )
        await conn.execute(
            "UPDATE profile_fields SET verified_at = '2026-06-01 12:00:00.5+05:30',"
            " updated_at = '2026-01-01 00:00:00-09:30', status = 'superseded',"
            " superseded_at = now(), superseded_by_id = %s WHERE id = %s",
            (fields[0], fields[9]),
        )
        # Expired (an effective status of the read), orphaned, superseded.
        await conn.execute(
            "UPDATE profile_fields SET expires_at = now() - interval '1 second' WHERE id = %s",
            (fields[10],),
        )
        await conn.execute(
            "UPDATE profile_fields SET status = 'orphaned', is_orphaned = true WHERE id = %s",
            (fields[11],),
        )
        await conn.execute(
            "UPDATE profile_assets SET verified = true, verification_result = %s,"
            " size_bytes = 9007199254740993, uploaded_at = '2020-02-29 23:59:59+00',"
            " deleted_at = '2021-01-01 00:00:00.25+03' WHERE id = %s",
            (Jsonb({"score": 0.98, "checks": ["mrz", "photo"], "ok": True, "n": 1.0}), assets[1]),
        )
        await conn.execute(
            "UPDATE profile_assets SET status = 'superseded', superseded_at = now(),"
            " superseded_by_id = %s, expires_at = now() - interval '1 day' WHERE id = %s",
            (assets[0], assets[2]),
        )


async def test_every_item_both_ways_answers_the_models_bytes(
    vault: Vault, tenant_id: UUID, api: httpx.AsyncClient
) -> None:
    items = await _chain(vault, tenant_id)
    await _odd_values(vault, items)
    seen = {"truncated": False, "asset item": False, "field item": False}
    for item in items:
        for direction in Direction:
            for depth in (0, 3, lineage_sql.MAX_DEPTH):
                walked = await _both(vault, tenant_id, item.id, direction, depth)
                assert [e.depth for e in walked.chain][:1] == [0]
                seen["truncated"] |= walked.truncated
                seen["asset item" if isinstance(walked.item, ProfileAsset) else "field item"] = True
    assert all(seen.values()), seen
    # The route answers these bytes (the service's bytes path), as the models would.
    for item in (items[0], items[7], items[-1]):
        for direction in Direction:
            resp = await api.get(f"/v1/lineage/{item.id}", params={"direction": direction.value})
            assert resp.status_code == 200
            assert resp.headers["content-type"] == "application/json"
            expected = _models(await _doc(vault, tenant_id, item.id, direction, 10))
            assert resp.content == expected


async def test_a_cycle_answers_the_models_bytes(vault: Vault, tenant_id: UUID) -> None:
    root = await vault.profiles.save_field(tenant_id, CUSTOMER, "document_id", new_field("P-1"))
    middle = await vault.profiles.save_asset(
        tenant_id, CUSTOMER, new_asset("scan", derived_from=root)
    )
    leaf = await vault.profiles.save_field(
        tenant_id, CUSTOMER, "birth_date", new_field(1.0, derived_from=middle, confidence=1)
    )
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET source_item_id = %s, source_item_type = 'profile_field'"
            " WHERE id = %s",
            (str(leaf.id), root.id),
        )
    for start in (root, middle, leaf):
        for direction in Direction:
            walked = await _both(vault, tenant_id, start.id, direction, lineage_sql.MAX_DEPTH)
            assert walked.cycle_detected is True


def _reshaped(doc: str, change: Any) -> str:
    found = json.loads(doc)
    change(found)
    return json.dumps(found)


async def test_a_document_it_does_not_expect_goes_through_the_models(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_asset(tenant_id, CUSTOMER, new_asset("unexpected"))
    item = await vault.profiles.save_field(
        tenant_id, CUSTOMER, "from_doc", new_field("x", derived_from=source)
    )
    doc = await _doc(vault, tenant_id, item.id, Direction.ancestors, 10)
    assert lineage_json(doc) == _models(doc)

    def extra_key(found: dict[str, Any]) -> None:
        found["item"]["not_in_the_model"] = 1  # the models ignore it

    def reordered_entry(found: dict[str, Any]) -> None:
        found["chain"][1] = dict(reversed(found["chain"][1].items()))

    def reordered_item(found: dict[str, Any]) -> None:
        found["item"] = dict(reversed(found["item"].items()))

    def offset(found: dict[str, Any]) -> None:
        found["item"]["collected_at"] = "2026-01-01T00:00:00.5+02:00"
        found["chain"][0]["deleted_at"] = "2026-01-01T00:00:00-03:30"

    def defaulted(found: dict[str, Any]) -> None:
        del found["item"]["written_by"]  # the models fill in the default

    for change in (extra_key, reordered_entry, reordered_item, offset, defaulted):
        odd = _reshaped(doc, change)
        with pytest.raises(Unexpected):
            lineage_json(odd)
        assert answer_json(odd) == _models(odd), change.__name__

    def no_flags(found: dict[str, Any]) -> None:
        del found["cycle_detected"]

    def not_an_item(found: dict[str, Any]) -> None:
        found["item"] = None

    for change in (no_flags, not_an_item):
        with pytest.raises(Unexpected):
            lineage_json(_reshaped(doc, change))
    for odd in ("[]", "{}", '"x"'):
        with pytest.raises(Unexpected):
            lineage_json(odd)

    # A session not in UTC writes its offset: the models answer for it.
    async with vault.pool.connection() as conn:
        await conn.execute("SET TimeZone = 'Asia/Kolkata'")
        try:
            cur = await conn.execute(
                lineage_sql.Q["ancestors"], {"tenant_id": tenant_id, "id": item.id, "max_depth": 10}
            )
            row = await cur.fetchone()
        finally:
            await conn.execute("RESET TimeZone")
    assert row is not None and "+05:30" in row[1]
    with pytest.raises(Unexpected):
        lineage_json(row[1])
    assert answer_json(row[1]) == _models(row[1])
    assert Lineage.model_validate_json(row[1]) == Lineage.model_validate_json(doc)
