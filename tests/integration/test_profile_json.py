"""The plain read's fast path (storage/profile_json.py) answers the very bytes the models
answer: compared byte for byte on profiles holding every kind of value, timestamp and
item the document can carry."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from psycopg.types.json import Jsonb

from ccvault.domain.models import Profile, Source
from ccvault.domain.writes import ConsentAnswer, NewIdentity
from ccvault.runtime import Vault
from ccvault.storage.profile_json import Unexpected, plain_read_json
from ccvault.storage.profiles import PLAIN_READ_EXCLUDES, ProfileStore

from .helpers import RAW_NUMBERS, VALUES, fetch, new_asset, new_field


async def _both(store: ProfileStore, pool: Any, tenant_id: UUID, customer: str) -> None:
    doc, *_ = await store._read_profile(tenant_id, customer)
    model = Profile.model_validate_json(doc).model_dump_json(exclude=PLAIN_READ_EXCLUDES)
    assert plain_read_json(doc) == model.encode()


async def test_every_kind_of_value_reads_as_the_models_write_it(
    vault: Vault, tenant_id: UUID
) -> None:
    store = ProfileStore(vault.pool)  # no cache: every read builds the document
    customer = "fast-1"
    await store.create_profile(
        tenant_id,
        customer,
        [
            NewIdentity(channel="whatsapp", channel_user_id="+351900000001", primary=True),
            NewIdentity(channel="email", channel_user_id="a@example.com", verified=True),
        ],
    )
    await store.put_consent(tenant_id, customer, "marketing", ConsentAnswer(granted=True))
    await store.put_consent(
        tenant_id, customer, "analytics", ConsentAnswer(granted=False, source_session_id="s1")
    )
    written = []
    for i, value in enumerate(VALUES):
        written.append(
            await store.save_field(
                tenant_id,
                customer,
                f"v_{i:02d}",
                new_field(
                    value,
                    confidence=[0.0, 1.0, 0.1, 1e-05, 0.999999][i % 5],
                    verified=i % 3 == 0,
                    source_metadata={"tool": "t", "n": i, "f": i / 7} if i % 2 else {},
                    expires_at="2099-01-01T00:00:00Z" if i % 4 == 0 else None,
                    source_session_id="sess" if i % 5 == 0 else None,
                ),
            )
        )
    # A second version (history counted as superseded) and an expired one.
    await store.save_field(tenant_id, customer, "v_00", new_field("again"))
    expired = await store.save_field(tenant_id, customer, "gone", new_field("soon"))
    passport = await store.save_asset(
        tenant_id, customer, new_asset("passport", expires_at="2098-05-06T07:08:09.5Z")
    )
    await store.save_asset(tenant_id, customer, new_asset("bill", derived_from=written[1]))
    await store.save_field(
        tenant_id, customer, "from_doc", new_field("extracted", derived_from=passport)
    )
    async with vault.pool.connection() as conn:
        for n, text in enumerate(RAW_NUMBERS):
            await conn.execute(
                "UPDATE profile_fields SET value = %s::jsonb, source_metadata = %s WHERE id = %s",
                (text, Jsonb({"raw": n}), written[n].id),
            )
        # Whole seconds, a fraction ending in zeros, the first and last instants allowed.
        await conn.execute(
            "UPDATE profile_fields SET verified_at = '0001-01-02 00:00:00+00',"
            " collected_at = '2030-01-01 00:00:00+00' WHERE id = %s",
            (written[3].id,),
        )
        await conn.execute(
            "UPDATE profile_fields SET verified_at = '2031-02-03 04:05:06.1+00',"
            " expires_at = '9999-12-30 23:59:59.999999+00' WHERE id = %s",
            (written[6].id,),
        )
        await conn.execute(
            "UPDATE profile_fields SET expires_at = now() - interval '1 second' WHERE id = %s",
            (expired.id,),
        )
        await conn.execute(
            "UPDATE profile_assets SET verified = true, verification_result = %s WHERE id = %s",
            (Jsonb({"score": 0.98, "checks": ["mrz", "photo"], "ok": True}), passport.id),
        )
    await _both(store, vault.pool, tenant_id, customer)
    # The cold read answers these bytes too (the route's bytes path).
    body, _ = await store.read_profile_json(tenant_id, customer)
    model = await store.get_profile(tenant_id, customer)
    assert body == model.model_dump_json(exclude=PLAIN_READ_EXCLUDES).encode()


async def test_an_empty_profile_and_an_orphaned_field(vault: Vault, tenant_id: UUID) -> None:
    store = ProfileStore(vault.pool)
    await store.create_profile(tenant_id, "fast-empty", [])
    await _both(store, vault.pool, tenant_id, "fast-empty")
    source = await store.save_field(tenant_id, "fast-2", "src", new_field("s"))
    await store.save_field(
        tenant_id,
        "fast-2",
        "derived",
        new_field("d", derived_from=source).model_copy(update={"source": Source.llm_extracted}),
    )
    await store.delete_field(tenant_id, "fast-2", "src")
    rows = await fetch(
        vault.pool,
        "SELECT count(*) FROM profile_fields WHERE tenant_id = %s AND status = 'orphaned'",
        (tenant_id,),
    )
    assert rows[0][0] == 1
    await _both(store, vault.pool, tenant_id, "fast-2")


def test_a_timestamp_not_in_utc_goes_through_the_models() -> None:
    doc = (
        '{"customer_id": "c", "created_at": "2026-01-01T00:00:00+02:00",'
        ' "updated_at": "2026-01-01T00:00:00+02:00"}'
    )
    with pytest.raises(Unexpected):
        plain_read_json(doc)
    with pytest.raises(Unexpected):
        plain_read_json('{"customer_id": "c"}')
