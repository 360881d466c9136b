"""The sweeps' admin routes over HTTP: `{updated, fields, assets}`, one tenant or all of
them, 404 for an unknown tenant, admin key only; reads report expiry before any sweep."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from api_support import ASSET, assert_problem
from ccvault.api.app import create_app
from ccvault.runtime import Vault
from integration.helpers import fetch, stored_asset, stored_field

PAST = "2020-01-01T00:00:00Z"
ROUTES = ["/admin/profiles/expire-stale", "/admin/profiles/detect-orphans"]
# Every sweep's route, history retention's included (its effects: tests/api/test_retention.py).
EVERY_SWEEP = [*ROUTES, "/admin/profiles/apply-retention"]
ADMIN = {"Authorization": "Bearer test-admin-key"}


async def put_field(
    client: httpx.AsyncClient, customer_id: str, name: str, value: Any, **extra: Any
) -> dict[str, Any]:
    """Write a field over HTTP; the new Field."""
    body = {"value": value, "source": "user_provided", **extra}
    resp = await client.put(f"/v1/profiles/{customer_id}/fields/{name}", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


async def post_asset(
    client: httpx.AsyncClient, customer_id: str, name: str, **extra: Any
) -> dict[str, Any]:
    """Add an asset over HTTP; the new Asset."""
    resp = await client.post(
        f"/v1/profiles/{customer_id}/assets", json={**ASSET, "name": name, **extra}
    )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def derived_from(item: dict[str, Any], kind: str = "profile_field") -> dict[str, str]:
    """A source link naming a vault item."""
    return {"source_item_id": item["id"], "source_item_type": kind}


async def sweep(http: httpx.AsyncClient, route: str, tenant_id: uuid.UUID | None) -> dict[str, Any]:
    """Run one sweep through its admin route; its answer."""
    params = {"tenant_id": str(tenant_id)} if tenant_id else {}
    resp = await http.post(route, params=params, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def soft_delete_field(vault: Vault, field_id: str) -> None:
    """Soft-delete behind the API's back, so only the orphan sweep can orphan dependents."""
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET deleted_at = now() WHERE id = %s", (field_id,)
        )


async def test_expire_stale_answers_what_it_expired_per_kind_and_nothing_the_second_time(
    http: httpx.AsyncClient, api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    otp = await put_field(api, "c1", "otp", "123456", expires_at=PAST)
    await put_field(api, "c2", "otp", "654321", expires_at=PAST)
    await put_field(api, "c1", "email", "a@x.example")
    scan = await post_asset(api, "c1", "scan", expires_at=PAST)

    first = await sweep(http, ROUTES[0], tenant_id)
    second = await sweep(http, ROUTES[0], tenant_id)

    assert first == {"updated": 3, "fields": 2, "assets": 1}
    assert second == {"updated": 0, "fields": 0, "assets": 0}
    assert (await stored_field(vault.pool, uuid.UUID(otp["id"])))["status"] == "expired"
    assert (await stored_asset(vault.pool, uuid.UUID(scan["id"])))["status"] == "expired"
    profile = (await api.get("/v1/profiles/c1")).json()
    assert list(profile["fields"]) == ["email"]
    assert profile["field_status_summary"]["expired"] == 1


async def test_detect_orphans_answers_what_it_orphaned_per_kind_and_nothing_the_second_time(
    http: httpx.AsyncClient, api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    source = await put_field(api, "c1", "document_id", "D-1")
    birth = await put_field(api, "c1", "birth_date", "1990-01-01", **derived_from(source))
    copy = await post_asset(api, "c2", "copy", **derived_from(source))
    await put_field(api, "c1", "intent", "refund", source_item_id="s-1", source_item_type="session")
    await soft_delete_field(vault, source["id"])

    first = await sweep(http, ROUTES[1], tenant_id)
    second = await sweep(http, ROUTES[1], tenant_id)

    assert first == {"updated": 2, "fields": 1, "assets": 1}
    assert second == {"updated": 0, "fields": 0, "assets": 0}
    history = (await api.get("/v1/profiles/c1/fields/birth_date/history")).json()["items"]
    assert [(f["id"], f["status"], f["is_orphaned"]) for f in history] == [
        (birth["id"], "orphaned", True)
    ]
    asset = (await api.get(f"/v1/assets/{copy['id']}")).json()
    assert (asset["status"], asset["is_orphaned"]) == ("orphaned", True)
    assert (await api.get("/v1/profiles/c1/fields/intent")).status_code == 200


async def test_a_delete_through_the_api_orphans_dependents_itself_leaving_the_sweep_nothing(
    http: httpx.AsyncClient, api: httpx.AsyncClient, tenant_id: uuid.UUID
) -> None:
    source = await put_field(api, "c1", "document_id", "D-1")
    await put_field(api, "c1", "birth_date", "1990-01-01", **derived_from(source))
    assert (await api.delete("/v1/profiles/c1/fields/document_id")).status_code == 204

    assert await sweep(http, ROUTES[1], tenant_id) == {"updated": 0, "fields": 0, "assets": 0}
    summary = (await api.get("/v1/profiles/c1")).json()["field_status_summary"]
    assert summary["orphaned"] == 1


async def test_a_sweep_for_one_tenant_leaves_other_tenants_untouched(
    http: httpx.AsyncClient, api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    created = await http.post(
        "/admin/tenants", json={"name": f"other-{uuid.uuid4().hex}"}, headers=ADMIN
    )
    assert created.status_code == 201
    other_id = uuid.UUID(created.json()["tenant_id"])
    other = httpx.AsyncClient(
        transport=http._transport,
        base_url="http://vault",
        headers={"Authorization": f"Bearer {created.json()['api_key']}"},
    )
    await put_field(api, "c1", "otp", "1", expires_at=PAST)
    theirs = await put_field(other, "c1", "otp", "2", expires_at=PAST)
    their_source = await put_field(other, "c1", "document_id", "D")
    their_derived = await put_field(
        other, "c1", "birth_date", "1990-01-01", **derived_from(their_source)
    )
    await soft_delete_field(vault, their_source["id"])

    assert await sweep(http, ROUTES[0], tenant_id) == {"updated": 1, "fields": 1, "assets": 0}
    assert await sweep(http, ROUTES[1], tenant_id) == {"updated": 0, "fields": 0, "assets": 0}

    assert (await stored_field(vault.pool, uuid.UUID(theirs["id"])))["status"] == "active"
    assert (await stored_field(vault.pool, uuid.UUID(their_derived["id"])))["status"] == "active"
    assert await sweep(http, ROUTES[0], other_id) == {"updated": 1, "fields": 1, "assets": 0}
    assert await sweep(http, ROUTES[1], other_id) == {"updated": 1, "fields": 1, "assets": 0}


@pytest.mark.parametrize("route", EVERY_SWEEP)
async def test_a_sweep_route_answers_404_for_an_unknown_tenant_and_422_for_a_malformed_id(
    http: httpx.AsyncClient, route: str
) -> None:
    unknown = await http.post(route, params={"tenant_id": str(uuid.uuid4())}, headers=ADMIN)
    assert_problem(unknown, 404)
    malformed = await http.post(route, params={"tenant_id": "not-a-uuid"}, headers=ADMIN)
    assert_problem(malformed, 422)


@pytest.mark.parametrize("route", EVERY_SWEEP)
async def test_a_sweep_route_answers_403_to_a_tenant_key_and_401_without_a_key(
    http: httpx.AsyncClient, api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID, route: str
) -> None:
    otp = await put_field(api, "c1", "otp", "123456", expires_at=PAST)

    assert_problem(await api.post(route, params={"tenant_id": str(tenant_id)}), 403)
    assert_problem(await api.post(route), 403)
    assert_problem(await http.post(route), 401)
    assert (await stored_field(vault.pool, uuid.UUID(otp["id"])))["status"] == "active"


async def test_sweep_routes_without_a_tenant_process_every_tenant(
    isolated_vault: Vault,
) -> None:
    transport = httpx.ASGITransport(app=create_app(vault=isolated_vault))
    async with httpx.AsyncClient(transport=transport, base_url="http://vault") as http:
        keys = []
        for i in range(2):
            created = await http.post("/admin/tenants", json={"name": f"t{i}"}, headers=ADMIN)
            assert created.status_code == 201
            keys.append(created.json()["api_key"])
        for key in keys:
            client = httpx.AsyncClient(
                transport=transport,
                base_url="http://vault",
                headers={"Authorization": f"Bearer {key}"},
            )
            await put_field(client, "c1", "otp", "1", expires_at=PAST)
            await post_asset(client, "c1", "scan", expires_at=PAST)
            source = await put_field(client, "c1", "document_id", "D")
            await put_field(client, "c1", "birth_date", "1990-01-01", **derived_from(source))
            await soft_delete_field(isolated_vault, source["id"])

        assert await sweep(http, ROUTES[0], None) == {"updated": 4, "fields": 2, "assets": 2}
        assert await sweep(http, ROUTES[1], None) == {"updated": 2, "fields": 2, "assets": 0}
        assert await sweep(http, ROUTES[0], None) == {"updated": 0, "fields": 0, "assets": 0}
        assert await sweep(http, ROUTES[1], None) == {"updated": 0, "fields": 0, "assets": 0}


async def test_reads_report_expiry_before_the_sweep_while_the_stored_status_stays_active(
    http: httpx.AsyncClient, api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    await put_field(api, "c1", "email", "a@x.example")
    otp = await put_field(api, "c1", "otp", "123456", expires_at=PAST)
    scan = await post_asset(api, "c1", "scan", expires_at=PAST)
    assert otp["status"] == "expired"

    async def observed() -> dict[str, Any]:
        profile = (await api.get("/v1/profiles/c1")).json()
        history = (await api.get("/v1/profiles/c1/fields/otp/history")).json()["items"]
        return {
            "field": (await api.get("/v1/profiles/c1/fields/otp")).status_code,
            "fields": sorted(profile["fields"]),
            "assets": profile["assets"],
            "summary": profile["field_status_summary"],
            "history": [f["status"] for f in history],
            "asset": (await api.get(f"/v1/assets/{scan['id']}")).json()["status"],
            "asset_list": (await api.get("/v1/profiles/c1/assets")).json()["items"],
        }

    before = await observed()
    assert before == {
        "field": 404,
        "fields": ["email"],
        "assets": [],
        "summary": {"active": 1, "superseded": 0, "expired": 1, "orphaned": 0},
        "history": ["expired"],
        "asset": "expired",
        "asset_list": [],
    }
    stored = await fetch(
        vault.pool,
        "SELECT (SELECT status FROM profile_fields WHERE id = %(f)s),"
        " (SELECT status FROM profile_assets WHERE id = %(a)s)",
        {"f": otp["id"], "a": scan["id"]},
    )
    assert stored == [("active", "active")]

    assert await sweep(http, ROUTES[0], tenant_id) == {"updated": 2, "fields": 1, "assets": 1}

    assert await observed() == before
    assert (await stored_field(vault.pool, uuid.UUID(otp["id"])))["status"] == "expired"
    assert (await stored_asset(vault.pool, uuid.UUID(scan["id"])))["status"] == "expired"


async def test_admin_jobs_lists_counts_and_recent_jobs_for_the_admin_key_only(
    http: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    resp = await http.get("/admin/jobs", headers=ADMIN)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body.keys() == {"counts", "live_workers", "backlog", "items"}
    assert all(isinstance(n, int) for n in body["counts"].values())
    assert isinstance(body["items"], list)
    assert_problem(await api.get("/admin/jobs"), 403)
    assert_problem(await http.get("/admin/jobs"), 401)
