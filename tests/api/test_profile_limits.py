"""A profile has a size bound: its current fields, their bytes and its current assets. A write
past a limit answers 422 and stores nothing, also under concurrent writers and in a merge."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from api_support import ASSET, assert_problem
from ccvault.domain.bounds import (
    MAX_PROFILE_ASSETS,
    MAX_PROFILE_FIELDS,
    MAX_PROFILE_VALUE_BYTES,
    MAX_VALUE_BYTES,
)
from ccvault.domain.writes import NewAsset, NewField
from ccvault.runtime import Vault

BIG = "x" * (MAX_VALUE_BYTES - 2)  # 64 KiB as JSON


async def fill_fields(
    vault: Vault, tenant_id: uuid.UUID, cid: str, count: int, value: Any = "v"
) -> None:
    """`count` current fields f0..f{count-1}, through the store (the same write function)."""
    for i in range(count):
        new = NewField.model_validate({"value": value, "source": "user_provided"})
        await vault.profiles.save_field(tenant_id, cid, f"f{i}", new)


def assert_profile_limit(resp: httpx.Response) -> None:
    """A 422 naming the profile limit."""
    body = assert_problem(resp, 422)
    assert [e["code"] for e in body["errors"]] == ["profile_limit"], body


async def current_names(api: httpx.AsyncClient, cid: str) -> set[str]:
    """Names of the profile's active fields (the profile read answers 200)."""
    resp = await api.get(f"/v1/profiles/{cid}")
    assert resp.status_code == 200, resp.text
    return set(resp.json()["fields"])


async def test_a_new_name_past_the_field_limit_is_refused_and_stores_nothing(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    await fill_fields(vault, tenant_id, "c1", MAX_PROFILE_FIELDS)
    full = await current_names(api, "c1")
    assert len(full) == MAX_PROFILE_FIELDS
    body = {"value": "one too many", "source": "user_provided"}
    assert_profile_limit(await api.put("/v1/profiles/c1/fields/extra", json=body))
    assert await current_names(api, "c1") == full
    history = await api.get("/v1/profiles/c1/fields/extra/history")
    assert history.json()["items"] == []
    # A full profile still takes new versions of its names, and a delete makes room.
    assert (await api.put("/v1/profiles/c1/fields/f0", json=body)).status_code == 201
    assert (await api.delete("/v1/profiles/c1/fields/f1")).status_code == 204
    assert (await api.put("/v1/profiles/c1/fields/extra", json=body)).status_code == 201


async def test_values_past_the_profile_byte_limit_are_refused(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    fitting = MAX_PROFILE_VALUE_BYTES // (MAX_VALUE_BYTES + len("{}"))
    await fill_fields(vault, tenant_id, "c1", fitting, BIG)
    body = {"value": BIG, "source": "user_provided"}
    assert_profile_limit(await api.put("/v1/profiles/c1/fields/one_more", json=body))
    assert len(await current_names(api, "c1")) == fitting
    # Replacing a large value with a small one frees its bytes.
    small = {"value": "small", "source": "user_provided"}
    assert (await api.put("/v1/profiles/c1/fields/f0", json=small)).status_code == 201
    assert (await api.put("/v1/profiles/c1/fields/one_more", json=body)).status_code == 201


async def test_the_byte_limit_measures_values_as_reads_render_them(
    api: httpx.AsyncClient,
) -> None:
    # 7 bytes each as sent, 309 digits each as PostgreSQL renders 1e308 in every read.
    amplified = [1e308] * 9000
    body = {"value": amplified, "value_type": "json", "source": "user_provided"}
    assert_profile_limit(await api.put("/v1/profiles/c1/fields/numbers", json=body))
    assert (await api.get("/v1/profiles/c1")).status_code == 404


async def test_an_asset_past_the_asset_limit_is_refused(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    for i in range(MAX_PROFILE_ASSETS):
        await vault.profiles.save_asset(
            tenant_id, "c1", NewAsset.model_validate({**ASSET, "name": f"doc-{i}"})
        )
    resp = await api.post("/v1/profiles/c1/assets", json={**ASSET, "name": "extra"})
    assert_profile_limit(resp)
    listed = await api.get("/v1/profiles/c1/assets")
    assert len(listed.json()["items"]) == MAX_PROFILE_ASSETS
    assert "extra" not in {a["name"] for a in listed.json()["items"]}
    # Same name: a new version, not one more asset.
    assert (await api.post("/v1/profiles/c1/assets", json={**ASSET, "name": "doc-0"})).is_success


async def test_concurrent_writers_never_push_a_profile_past_its_limit(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    room = 5
    await fill_fields(vault, tenant_id, "c1", MAX_PROFILE_FIELDS - room)
    body = {"value": "racing", "source": "user_provided"}
    answers = await asyncio.gather(
        *(api.put(f"/v1/profiles/c1/fields/new_{i}", json=body) for i in range(4 * room))
    )
    statuses = sorted(resp.status_code for resp in answers)
    assert statuses == [201] * room + [422] * (3 * room)
    assert len(await current_names(api, "c1")) == MAX_PROFILE_FIELDS


async def test_a_merge_past_the_field_limit_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    half = MAX_PROFILE_FIELDS // 2 + 1
    await fill_fields(vault, tenant_id, "c1", half)
    for i in range(half):
        new = NewField.model_validate({"value": "b", "source": "user_provided"})
        await vault.profiles.save_field(tenant_id, "c2", f"g{i}", new)
    before = [(await api.get(f"/v1/profiles/{c}")).json() for c in ("c1", "c2")]
    resp = await api.post("/v1/profiles/c1/merge", json={"source_customer_id": "c2"})
    assert_profile_limit(resp)
    after = [(await api.get(f"/v1/profiles/{c}")).json() for c in ("c1", "c2")]
    assert after == before
    assert after[1]["customer_id"] == "c2"  # not an alias of c1


async def test_a_merge_within_the_limit_still_merges(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    await fill_fields(vault, tenant_id, "c1", MAX_PROFILE_FIELDS - 1)
    new = NewField.model_validate({"value": "b", "source": "user_provided"})
    await vault.profiles.save_field(tenant_id, "c2", "f0", new)  # a name c1 has too
    await vault.profiles.save_field(tenant_id, "c2", "other", new)
    resp = await api.post("/v1/profiles/c1/merge", json={"source_customer_id": "c2"})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["fields"]) == MAX_PROFILE_FIELDS
