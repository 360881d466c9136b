"""History retention (DESIGN §8 "Privacy"): a tenant's `history_retention_days`, and the
daily sweep that deletes superseded, deleted and expired versions older than that, except
one something non-deleted still derives from; set by POST/PATCH /admin/tenants, run on
demand by POST /admin/profiles/apply-retention (the job's own code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from api_support import ASSET, assert_problem
from ccvault.jobs.sweeps import apply_history_retention
from ccvault.runtime import Vault

OLD = timedelta(days=40)  # past the 30 days the tests' tenants keep


async def put(api: httpx.AsyncClient, cid: str, name: str, value: Any, **extra: Any) -> Any:
    body = {"value": value, "source": "user_provided", **extra}
    resp = await api.put(f"/v1/profiles/{cid}/fields/{name}", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def age(vault: Vault, tenant_id: UUID, ids: list[str], by: timedelta = OLD) -> None:
    """Move versions' collected_at (uploaded_at) back, behind the store's back."""
    async with vault.pool.connection() as conn:
        for table, at in (("profile_fields", "collected_at"), ("profile_assets", "uploaded_at")):
            await conn.execute(
                f"UPDATE {table} SET {at} = {at} - %s"  # noqa: S608 (constants only)
                " WHERE tenant_id = %s AND id = ANY(%s::uuid[])",
                (by, tenant_id, ids),
            )


async def retain(
    http: httpx.AsyncClient, admin: dict[str, str], tenant_id: UUID | None
) -> dict[str, int]:
    params = {"tenant_id": str(tenant_id)} if tenant_id else {}
    resp = await http.post("/admin/profiles/apply-retention", params=params, headers=admin)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def set_retention(
    http: httpx.AsyncClient, admin: dict[str, str], tenant_id: UUID, days: int | None
) -> dict[str, Any]:
    resp = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"history_retention_days": days}, headers=admin
    )
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def history(api: httpx.AsyncClient, cid: str, name: str) -> list[str]:
    resp = await api.get(f"/v1/profiles/{cid}/fields/{name}/history")
    if resp.status_code == 404:
        return []
    assert resp.status_code == 200, resp.text
    return [v["value"] for v in resp.json()["items"]]


async def test_tenants_take_a_retention_and_patch_it_back_to_forever(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await http.post(
        "/admin/tenants",
        json={"name": f"ret-{datetime.now(UTC).timestamp()}", "history_retention_days": 30},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["history_retention_days"] == 30
    tenant_id = UUID(created.json()["tenant_id"])
    listed = (await http.get("/admin/tenants", headers=admin_headers)).json()["items"]
    assert [t["history_retention_days"] for t in listed if t["tenant_id"] == str(tenant_id)] == [30]
    # Patching something else keeps it; an explicit null means forever.
    kept = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"require_purpose": True}, headers=admin_headers
    )
    assert kept.json()["history_retention_days"] == 30
    assert (await set_retention(http, admin_headers, tenant_id, 36500))[
        "history_retention_days"
    ] == 36500
    assert (await set_retention(http, admin_headers, tenant_id, None))[
        "history_retention_days"
    ] is None
    for bad in (0, 36501, -1, "30", 1.5, True):
        resp = await http.patch(
            f"/admin/tenants/{tenant_id}",
            json={"history_retention_days": bad},
            headers=admin_headers,
        )
        assert_problem(resp, 422)
        assert resp.json()["errors"][0]["loc"] == ["body", "history_retention_days"], bad
    bad_create = await http.post(
        "/admin/tenants",
        json={"name": "ret-bad", "history_retention_days": 0},
        headers=admin_headers,
    )
    assert_problem(bad_create, 422)
    unknown = await http.post(
        "/admin/profiles/apply-retention",
        params={"tenant_id": "00000000-0000-4000-8000-000000000000"},
        headers=admin_headers,
    )
    assert_problem(unknown, 404)


async def test_retention_deletes_old_history_and_keeps_what_is_current_recent_or_derived_from(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    vault: Vault,
    tenant_id: UUID,
    admin_headers: dict[str, str],
) -> None:
    await set_retention(http, admin_headers, tenant_id, 30)
    old: list[str] = []
    # email: two old superseded versions and an old current one (current stays).
    old += [(await put(api, "c1", "email", v))["id"] for v in ("e1@x.io", "e2@x.io", "e3@x.io")]
    # phone: an old superseded version something non-deleted derives from (stays), and
    # one only a deleted item derives from (goes).
    kept_source = await put(api, "c1", "phone", "+4930111111")
    gone_source = await put(api, "c1", "phone", "+4930222222")
    await put(api, "c1", "phone", "+4930333333")
    old += [kept_source["id"], gone_source["id"]]
    src = {"source_item_type": "profile_field"}
    await put(api, "c2", "score", "from-kept", source_item_id=kept_source["id"], **src)
    await put(api, "c2", "rank", "from-gone", source_item_id=gone_source["id"], **src)
    assert (await api.delete("/v1/profiles/c2/fields/rank")).status_code == 204
    # nickname: old and deleted (goes); otp: old and past its expires_at (goes).
    old.append((await put(api, "c1", "nickname", "Ada"))["id"])
    assert (await api.delete("/v1/profiles/c1/fields/nickname")).status_code == 204
    past = (datetime.now(UTC) - timedelta(days=35)).isoformat()
    old.append((await put(api, "c1", "otp", "123456", expires_at=past))["id"])
    # tier: an old superseded version and a recent superseded one (the recent one stays).
    old.append((await put(api, "c1", "tier", "bronze"))["id"])
    await put(api, "c1", "tier", "silver")
    await put(api, "c1", "tier", "gold")
    # An asset with an old superseded version.
    first = await api.post("/v1/profiles/c1/assets", json=ASSET | {"storage_path": "s3://a/1"})
    assert first.status_code == 201, first.text
    old.append(first.json()["id"])
    second = await api.post("/v1/profiles/c1/assets", json=ASSET | {"storage_path": "s3://a/2"})
    assert second.status_code == 201, second.text
    await age(vault, tenant_id, old)

    before = await api.get("/v1/profiles/c1")  # cached now
    assert before.json()["field_status_summary"]["superseded"] == 6

    counts = await retain(http, admin_headers, tenant_id)

    # email e1, e2; phone's second; nickname; otp; tier bronze = 6 fields; 1 asset.
    assert counts == {"updated": 7, "fields": 6, "assets": 1}
    assert await history(api, "c1", "email") == ["e3@x.io"]
    assert await history(api, "c1", "phone") == ["+4930333333", "+4930111111"]
    assert await history(api, "c1", "nickname") == []
    assert await history(api, "c1", "otp") == []
    assert await history(api, "c1", "tier") == ["gold", "silver"]
    assets = (await api.get("/v1/profiles/c1/assets", params={"include": "history"})).json()
    assert [a["storage_path"] for a in assets["items"]] == ["s3://a/2"]
    # The profile's ETag moved and its cached entry was dropped: the next read says so.
    after = await api.get("/v1/profiles/c1")
    assert after.headers["etag"] != before.headers["etag"]
    assert after.json()["field_status_summary"]["superseded"] == 2
    assert after.json()["fields"]["email"]["value"] == "e3@x.io"
    # The derived items keep their sources: lineage still walks up.
    lineage = await api.get(f"/v1/lineage/{kept_source['id']}", params={"direction": "descendants"})
    assert lineage.status_code == 200
    # Idempotent: a second run finds nothing.
    assert await retain(http, admin_headers, tenant_id) == {"updated": 0, "fields": 0, "assets": 0}


async def test_a_tenant_without_retention_keeps_everything_and_windows_change_nothing(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    vault: Vault,
    tenant_id: UUID,
    admin_headers: dict[str, str],
) -> None:
    ids = [(await put(api, "c1", "email", f"e{i}@x.io"))["id"] for i in range(7)]
    await age(vault, tenant_id, ids)
    assert (await retain(http, admin_headers, None))["updated"] >= 0  # every tenant
    assert len(await history(api, "c1", "email")) == 7  # no retention: forever

    await set_retention(http, admin_headers, tenant_id, 30)
    # Windows of two rows: the walk goes on past full windows and ends after the last.
    result = await apply_history_retention(vault.profiles, tenant_id, batch=2, pause=0)
    assert (result.fields, result.assets) == (6, 0)
    assert await history(api, "c1", "email") == ["e6@x.io"]


@pytest.mark.parametrize("days", [1, 30])
async def test_versions_younger_than_the_retention_stay(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    vault: Vault,
    tenant_id: UUID,
    admin_headers: dict[str, str],
    days: int,
) -> None:
    await set_retention(http, admin_headers, tenant_id, days)
    ids = [(await put(api, "c1", "email", f"e{i}@x.io"))["id"] for i in range(3)]
    await age(vault, tenant_id, ids, timedelta(days=days) - timedelta(hours=1))
    assert (await retain(http, admin_headers, tenant_id))["updated"] == 0
    await age(vault, tenant_id, ids, timedelta(hours=2))
    assert (await retain(http, admin_headers, tenant_id))["fields"] == 2


async def test_retention_leaves_one_entry_per_profile_and_kind_as_the_job(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    vault: Vault,
    tenant_id: UUID,
    admin_headers: dict[str, str],
) -> None:
    await set_retention(http, admin_headers, tenant_id, 30)
    old = [(await put(api, "c1", "email", f"e{i}@x.io"))["id"] for i in range(5)]
    old += [(await put(api, "c2", "phone", f"+49301{i}"))["id"] for i in range(2)]
    first = await api.post("/v1/profiles/c1/assets", json=ASSET | {"storage_path": "s3://a/1"})
    assert first.status_code == 201, first.text
    old.append(first.json()["id"])
    second = await api.post("/v1/profiles/c1/assets", json=ASSET | {"storage_path": "s3://a/2"})
    assert second.status_code == 201, second.text
    await age(vault, tenant_id, old)
    # Windows of two rows: c1's four old email versions span two windows, one entry.
    result = await apply_history_retention(vault.profiles, tenant_id, batch=2, pause=0)
    assert (result.fields, result.assets) == (5, 1)

    async def job_entries(cid: str) -> list[tuple[str, str, str]]:
        resp = await api.get(f"/v1/profiles/{cid}/audit")
        assert resp.status_code == 200, resp.text
        return sorted(
            (e["actor"], e["action"], e["target"])
            for e in resp.json()["items"]
            if e["actor"].startswith("job:")
        )

    assert await job_entries("c1") == [
        ("job:apply_history_retention", "asset.delete", "history"),
        ("job:apply_history_retention", "field.delete", "history"),
    ]
    assert await job_entries("c2") == [
        ("job:apply_history_retention", "field.delete", "history"),
    ]
    # A run that deletes nothing audits nothing.
    await apply_history_retention(vault.profiles, tenant_id, batch=2, pause=0)
    assert len(await job_entries("c1")) == 2
