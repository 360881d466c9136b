"""Operators manage tenants' keys (DESIGN §8 "Keys"): list tenants, issue, list and revoke
keys; a revoked key is refused at once where it was revoked and on every other process
within CCV_API_KEY_CACHE_SECONDS."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from api_support import assert_problem
from ccvault.api.app import create_app
from ccvault.config import Settings
from ccvault.runtime import Vault, open_vault

KEY_KEYS = {"key_id", "label", "created_at", "last_used_at", "revoked_at"}
CREATED_KEY_KEYS = {"key_id", "label", "api_key", "created_at"}
TENANT_KEYS = {
    "tenant_id",
    "name",
    "validation_mode",
    "created_at",
    "require_purpose",
    "history_retention_days",
}


def client(http: httpx.AsyncClient, key: str | None) -> httpx.AsyncClient:
    """A client on the same in-process app presenting `key` (or nothing)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(transport=http._transport, base_url="http://vault", headers=headers)


@pytest.fixture
async def admin(http: httpx.AsyncClient, admin_headers: dict[str, str]) -> httpx.AsyncClient:
    """The in-process app as the operator."""
    return httpx.AsyncClient(
        transport=http._transport, base_url="http://vault", headers=admin_headers
    )


async def new_tenant(admin: httpx.AsyncClient) -> dict[str, Any]:
    """A tenant created through the admin API (with its first key)."""
    resp = await admin.post("/admin/tenants", json={"name": f"k-{uuid.uuid4().hex[:12]}"})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def keys_of(admin: httpx.AsyncClient, tenant_id: str) -> dict[str, dict[str, Any]]:
    """The tenant's keys by id."""
    resp = await admin.get(f"/admin/tenants/{tenant_id}/keys")
    assert resp.status_code == 200, resp.text
    assert resp.json().keys() == {"items"}
    return {k["key_id"]: k for k in resp.json()["items"]}


async def works(http: httpx.AsyncClient, key: str) -> bool:
    """Does the app accept `key` for a tenant route (200) or refuse it (401)?"""
    async with client(http, key) as c:
        resp = await c.get("/v1/profiles")
    assert resp.status_code in (200, 401), resp.text
    return resp.status_code == 200


async def test_tenants_are_listed_for_the_operator_only(
    http: httpx.AsyncClient, admin: httpx.AsyncClient, tenant: tuple[uuid.UUID, str]
) -> None:
    created = await new_tenant(admin)
    resp = await admin.get("/admin/tenants")
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert all(t.keys() == TENANT_KEYS for t in items)
    listed = {t["tenant_id"]: t for t in items}
    assert listed[created["tenant_id"]]["name"] == created["name"]
    assert listed[created["tenant_id"]]["validation_mode"] == created["validation_mode"]
    assert str(tenant[0]) in listed
    created_at = [t["created_at"] for t in items]
    assert created_at == sorted(created_at)

    async with client(http, tenant[1]) as as_tenant:
        assert_problem(await as_tenant.get("/admin/tenants"), 403)
    assert_problem(await http.get("/admin/tenants"), 401)


async def test_a_new_tenants_first_key_has_an_id_that_its_key_list_shows(
    admin: httpx.AsyncClient,
) -> None:
    created = await new_tenant(admin)
    keys = await keys_of(admin, created["tenant_id"])
    assert list(keys) == [created["key_id"]]
    first = keys[created["key_id"]]
    assert first.keys() == KEY_KEYS
    assert first["label"] is None and first["revoked_at"] is None


async def test_an_issued_key_is_shown_once_works_and_is_listed_without_the_key(
    http: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    created = await new_tenant(admin)
    resp = await admin.post(
        f"/admin/tenants/{created['tenant_id']}/keys", json={"label": "billing agent / v2"}
    )
    assert resp.status_code == 201, resp.text
    issued = resp.json()
    assert issued.keys() == CREATED_KEY_KEYS
    assert issued["label"] == "billing agent / v2"
    assert issued["api_key"].startswith("ccv_") and issued["api_key"] != created["api_key"]
    assert await works(http, issued["api_key"])
    assert await works(http, created["api_key"]), "issuing a key leaves the others alone"

    unlabelled = await admin.post(f"/admin/tenants/{created['tenant_id']}/keys", json={})
    assert unlabelled.status_code == 201, unlabelled.text
    keys = await keys_of(admin, created["tenant_id"])
    assert list(keys) == [created["key_id"], issued["key_id"], unlabelled.json()["key_id"]]
    assert keys[issued["key_id"]]["label"] == "billing agent / v2"
    assert keys[issued["key_id"]]["created_at"] == issued["created_at"]
    listed = (await admin.get(f"/admin/tenants/{created['tenant_id']}/keys")).text
    assert issued["api_key"] not in listed and created["api_key"] not in listed


@pytest.mark.parametrize(
    "body",
    [{"label": ""}, {"label": "x" * 101}, {"label": "tab\there"}, {"label": 7}, {"name": "x"}],
)
async def test_a_bad_label_is_refused(admin: httpx.AsyncClient, body: dict[str, Any]) -> None:
    created = await new_tenant(admin)
    resp = await admin.post(f"/admin/tenants/{created['tenant_id']}/keys", json=body)
    assert_problem(resp, 422)
    assert list(await keys_of(admin, created["tenant_id"])) == [created["key_id"]]


async def test_unknown_tenants_and_keys_answer_404(admin: httpx.AsyncClient) -> None:
    ghost = uuid.uuid4()
    assert_problem(await admin.get(f"/admin/tenants/{ghost}/keys"), 404)
    assert_problem(await admin.post(f"/admin/tenants/{ghost}/keys", json={}), 404)
    assert_problem(await admin.delete(f"/admin/tenants/{ghost}/keys/{uuid.uuid4()}"), 404)
    created = await new_tenant(admin)
    assert_problem(
        await admin.delete(f"/admin/tenants/{created['tenant_id']}/keys/{uuid.uuid4()}"), 404
    )
    assert_problem(await admin.delete(f"/admin/tenants/{created['tenant_id']}/keys/nope"), 422)


async def test_another_tenants_key_cannot_be_revoked_through_this_tenant(
    http: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    a, b = await new_tenant(admin), await new_tenant(admin)
    resp = await admin.delete(f"/admin/tenants/{a['tenant_id']}/keys/{b['key_id']}")
    assert_problem(resp, 404)
    assert await works(http, b["api_key"])
    assert (await keys_of(admin, b["tenant_id"]))[b["key_id"]]["revoked_at"] is None
    assert b["key_id"] not in await keys_of(admin, a["tenant_id"])


async def test_a_revoked_key_is_refused_at_once_and_listed_with_its_revocation(
    http: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    created = await new_tenant(admin)
    spare = (await admin.post(f"/admin/tenants/{created['tenant_id']}/keys", json={})).json()
    assert await works(http, created["api_key"])

    resp = await admin.delete(f"/admin/tenants/{created['tenant_id']}/keys/{created['key_id']}")

    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    assert not await works(http, created["api_key"])
    assert await works(http, spare["api_key"])
    keys = await keys_of(admin, created["tenant_id"])
    assert keys[created["key_id"]]["revoked_at"] is not None
    assert keys[spare["key_id"]]["revoked_at"] is None
    again = await admin.delete(f"/admin/tenants/{created['tenant_id']}/keys/{created['key_id']}")
    assert_problem(again, 404)


@pytest.fixture
async def two_processes(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """Two apps with vaults of their own, each remembering resolved keys for 0.5 s: two
    API processes of one deployment."""
    remembering = settings.model_copy(update={"api_key_cache_seconds": 0.5})
    vaults: list[Vault] = [await open_vault(remembering) for _ in range(2)]
    try:
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(vault=v)), base_url="http://vault"
            )
            for v in vaults
        ]
        yield tuple(clients)
        for c in clients:
            await c.aclose()
    finally:
        for v in vaults:
            await v.close()


async def test_a_key_revoked_on_one_process_is_refused_by_another_within_the_key_cache_time(
    two_processes: tuple[httpx.AsyncClient, httpx.AsyncClient], admin_headers: dict[str, str]
) -> None:
    first, second = two_processes
    created = (
        await first.post(
            "/admin/tenants", json={"name": f"r-{uuid.uuid4().hex[:12]}"}, headers=admin_headers
        )
    ).json()
    assert await works(first, created["api_key"])
    assert await works(second, created["api_key"])  # now remembered by the second process

    path = f"/admin/tenants/{created['tenant_id']}/keys/{created['key_id']}"
    assert (await first.delete(path, headers=admin_headers)).status_code == 204
    assert not await works(first, created["api_key"]), "refused at once where revoked"

    await asyncio.sleep(0.5)  # CCV_API_KEY_CACHE_SECONDS of the second process
    assert not await works(second, created["api_key"])


async def test_last_used_at_is_set_on_use_and_not_rewritten_within_a_minute(
    http: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    created = await new_tenant(admin)
    assert (await keys_of(admin, created["tenant_id"]))[created["key_id"]]["last_used_at"] is None

    assert await works(http, created["api_key"])  # the suite's processes remember no key
    key = (await keys_of(admin, created["tenant_id"]))[created["key_id"]]
    first_use = key["last_used_at"]
    assert first_use is not None
    assert datetime.fromisoformat(first_use) >= datetime.fromisoformat(key["created_at"])

    assert await works(http, created["api_key"])
    later = (await keys_of(admin, created["tenant_id"]))[created["key_id"]]["last_used_at"]
    assert later == first_use, "a key in use is written at most once a minute"


async def test_key_routes_need_the_admin_key(
    http: httpx.AsyncClient, tenant: tuple[uuid.UUID, str]
) -> None:
    path = f"/admin/tenants/{tenant[0]}/keys"
    async with client(http, tenant[1]) as as_tenant:
        assert_problem(await as_tenant.get(path), 403)
        assert_problem(await as_tenant.post(path, json={}), 403)
        assert_problem(await as_tenant.delete(f"{path}/{uuid.uuid4()}"), 403)
    assert_problem(await http.get(path), 401)
    assert await works(http, tenant[1])


async def test_the_openapi_document_declares_the_key_routes(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    expected = {
        ("get", "/admin/tenants"): {"200", "401", "403"},
        ("post", "/admin/tenants/{tenant_id}/keys"): {"201", "401", "403", "404", "422"},
        ("get", "/admin/tenants/{tenant_id}/keys"): {"200", "401", "403", "404", "422"},
        ("delete", "/admin/tenants/{tenant_id}/keys/{key_id}"): {"204", "401", "403", "404"},
    }
    for (method, path), statuses in expected.items():
        assert statuses <= set(paths[path][method]["responses"]), (method, path)
