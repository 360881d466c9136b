"""Export (DESIGN §8): everything held about a customer, every version, streamed."""

from __future__ import annotations

import json
import tracemalloc
import uuid
from typing import Any
from uuid import UUID

import httpx

from api_support import ASSET, assert_problem
from ccvault.domain.caller import Caller
from ccvault.domain.privacy import ProfileExport
from ccvault.runtime import Vault


async def put_field(api: httpx.AsyncClient, cid: str, name: str, value: Any) -> dict[str, Any]:
    resp = await api.put(
        f"/v1/profiles/{cid}/fields/{name}", json={"value": value, "source": "user_provided"}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_export_holds_every_version_identity_consent_and_asset(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post(
        "/v1/profiles",
        json={
            "customer_id": "c1",
            "channel_identities": [{"channel": "email", "channel_user_id": "a@example.com"}],
        },
    )
    assert created.status_code == 201
    for value in ("a@example.com", "b@example.com", "c@example.com"):
        await put_field(api, "c1", "email", value)
    await put_field(api, "c1", "nickname", "Ada")
    assert (await api.delete("/v1/profiles/c1/fields/nickname")).status_code == 204
    for path in ("v1.pdf", "v2.pdf"):
        resp = await api.post("/v1/profiles/c1/assets", json=ASSET | {"storage_path": path})
        assert resp.status_code == 201
    await api.put("/v1/profiles/c1/consents/marketing", json={"granted": True})
    await api.put("/v1/profiles/c1/consents/marketing", json={"granted": False})

    resp = await api.get("/v1/profiles/c1/export")

    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    ProfileExport.model_validate(body)  # the documented shape
    assert list(body) == [
        "customer_id",
        "exported_at",
        "profile",
        "assets",
        "consents",
        "channel_identities",
        "audit",
        "consent_history",
    ]
    assert body["customer_id"] == "c1"
    assert [a["granted"] for a in body["consent_history"]] == [True, False]
    history = (await api.get("/v1/profiles/c1?include=history")).json()
    assert body["profile"] == history  # the same versions, the same JSON, deleted included
    assert [f["value"] for f in body["profile"]["field_history"]["email"]] == [
        "c@example.com",
        "b@example.com",
        "a@example.com",
    ]
    assert body["profile"]["field_history"]["nickname"][0]["deleted_at"] is not None
    assets = (await api.get("/v1/profiles/c1/assets?include=history")).json()["items"]
    assert body["assets"] == assets
    assert [a["storage_path"] for a in body["assets"]] == ["v2.pdf", "v1.pdf"]
    assert body["consents"] == history["consents"]
    assert body["consents"][0]["granted"] is False
    assert body["channel_identities"] == history["channel_identities"]
    # The audit log's entries about the customer (tests/api/test_audit.py has the rest).
    assert body["audit"][-1]["action"] == "profile.export"


async def test_export_of_an_alias_is_the_targets_and_unknown_is_404(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    await put_field(api, "c1", "email", "a@example.com")
    await put_field(api, "dup", "phone", "+351912345678")
    merged = await api.post("/v1/profiles/c1/merge", json={"source_customer_id": "dup"})
    assert merged.status_code == 200

    body = (await api.get("/v1/profiles/dup/export")).json()

    assert body["customer_id"] == "c1"
    assert set(body["profile"]["field_history"]) == {"email", "phone"}
    assert_problem(await api.get("/v1/profiles/nobody/export"), 404)
    assert_problem(await other_api.get("/v1/profiles/c1/export"), 404)


async def test_an_empty_profile_exports_as_valid_json(api: httpx.AsyncClient) -> None:
    await api.post("/v1/profiles", json={"customer_id": "empty"})

    body = (await api.get("/v1/profiles/empty/export")).json()

    assert body["profile"]["field_history"] == {}
    assert body["assets"] == [] and body["consents"] == []
    assert [e["action"] for e in body["audit"]] == ["profile.create", "profile.export"]


async def _profile_with_versions(vault: Vault, tenant_id: UUID, cid: str, versions: int) -> None:
    """`versions` field versions over 10 names (one current each), written in one
    statement: building them through the API would take minutes."""
    async with vault.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO customer_profiles (id, tenant_id, customer_id) VALUES (%s, %s, %s)",
            (pid := uuid.uuid4(), tenant_id, cid),
        )
        await conn.execute(
            """
            INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type,
                                        status, source, collected_at, superseded_at)
            SELECT gen_random_uuid(), %(tenant)s, %(pid)s, 'field_' || (i %% 10),
                   to_jsonb('value number ' || i || ' ' || repeat('x', 200)), 'string',
                   CASE WHEN i >= %(n)s - 10 THEN 'active' ELSE 'superseded' END,
                   'user_provided', now() - make_interval(secs => %(n)s - i),
                   CASE WHEN i >= %(n)s - 10 THEN NULL ELSE now() END
              FROM generate_series(0, %(n)s - 1) AS i
            """,
            {"tenant": tenant_id, "pid": pid, "n": versions},
        )


async def _peak_while_streaming(vault: Vault, caller: Caller, cid: str) -> tuple[int, int]:
    """(peak traced bytes while the whole export is produced and dropped, bytes produced)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        produced = 0
        async for chunk in await vault.services.export.open(caller, cid):
            produced += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, produced


async def _peak_building_whole(vault: Vault, caller: Caller, cid: str) -> int:
    """Peak traced bytes of the non-streamed way: the profile with its history as one
    object, dumped as one JSON document."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        profile, _ = await vault.services.profiles.get(caller, cid, include_history=True)
        profile.model_dump_json()
        del profile
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


async def test_a_large_export_is_streamed_not_built_whole(
    vault: Vault, tenant_id: UUID, api: httpx.AsyncClient
) -> None:
    await _profile_with_versions(vault, tenant_id, "small", 100)
    await _profile_with_versions(vault, tenant_id, "large", 10_000)
    caller = Caller(tenant_id=tenant_id, name="t", validation_mode="warn", secret=b"s" * 32)
    await _peak_while_streaming(vault, caller, "small")  # warm imports and pools

    small_peak, small_bytes = await _peak_while_streaming(vault, caller, "small")
    large_peak, large_bytes = await _peak_while_streaming(vault, caller, "large")
    whole_peak = await _peak_building_whole(vault, caller, "large")

    print(
        f"\nexport: 100 versions {small_bytes:,} B, peak {small_peak:,} B traced; "
        f"10,000 versions {large_bytes:,} B, peak {large_peak:,} B traced; "
        f"the same history built whole (?include=history): peak {whole_peak:,} B"
    )
    assert large_bytes > 90 * small_bytes
    # Memory follows the page (500 rows), not the profile: a fraction of the document,
    # and a fraction of what building the same history whole costs.
    assert large_peak < large_bytes / 2
    assert large_peak < whole_peak / 4
    body = (await api.get("/v1/profiles/large/export")).json()
    history = body["profile"]["field_history"]
    assert sum(len(v) for v in history.values()) == 10_000
    assert all(len(v) == 1000 for v in history.values())
    stamps = [f["collected_at"] for f in history["field_3"]]
    assert stamps == sorted(stamps, reverse=True)
    assert json.loads(json.dumps(body)) == body
