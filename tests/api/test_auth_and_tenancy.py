"""Keys and tenants: 401 without a valid key, 404 across tenants, admin-only operator routes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api_support import ASSET, assert_problem

FIELD = {"value": "a@example.com", "source": "user_provided"}
TENANT_KEYS = {
    "tenant_id",
    "name",
    "validation_mode",
    "require_purpose",
    "history_retention_days",
    "api_key",
    "key_id",
}
PATCHED_KEYS = {
    "tenant_id",
    "name",
    "validation_mode",
    "created_at",
    "require_purpose",
    "history_retention_days",
}

# Every tenant route, with a body where it takes one ({cid} is a customer of tenant A).
TENANT_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/profiles", {"customer_id": "x"}),
    ("GET", "/v1/profiles/{cid}", None),
    ("GET", "/v1/profiles/by-channel/sms/+1", None),
    ("POST", "/v1/profiles/{cid}/channel-identities", {"channel": "sms", "channel_user_id": "+2"}),
    ("PUT", "/v1/profiles/{cid}/consents/marketing", {"granted": True}),
    ("POST", "/v1/profiles/{cid}/merge", {"source_customer_id": "y"}),
    ("PUT", "/v1/profiles/{cid}/fields/email", FIELD),
    ("GET", "/v1/profiles/{cid}/fields/email", None),
    ("GET", "/v1/profiles/{cid}/fields/email/history", None),
    ("DELETE", "/v1/profiles/{cid}/fields/email", None),
    ("POST", "/v1/profiles/{cid}/assets", ASSET),
    ("GET", "/v1/profiles/{cid}/assets", None),
    ("GET", "/v1/assets/{asset_id}", None),
    ("DELETE", "/v1/assets/{asset_id}", None),
    ("GET", "/v1/lineage/{field_id}", None),
]
ROUTE_IDS = [f"{m} {p}" for m, p, _ in TENANT_ROUTES]


def client(http: httpx.AsyncClient, key: str | None) -> httpx.AsyncClient:
    """A client on the same in-process app, presenting `key` (or nothing)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(transport=http._transport, base_url="http://vault", headers=headers)


@pytest.fixture
async def data_a(api: httpx.AsyncClient) -> dict[str, Any]:
    """Tenant A's customer: a field with a derived field, an asset, an identity, a consent."""
    field = await api.put("/v1/profiles/alice/fields/email", json=FIELD)
    assert field.status_code == 201
    derived = await api.put(
        "/v1/profiles/alice/fields/email_domain",
        json={
            "value": "example.com",
            "source": "system_inferred",
            "source_item_id": field.json()["id"],
            "source_item_type": "profile_field",
        },
    )
    assert derived.status_code == 201
    asset = await api.post("/v1/profiles/alice/assets", json=ASSET)
    assert asset.status_code == 201
    link = await api.post(
        "/v1/profiles/alice/channel-identities",
        json={"channel": "sms", "channel_user_id": "+1"},
    )
    assert link.status_code == 201
    assert (
        await api.put("/v1/profiles/alice/consents/marketing", json={"granted": True})
    ).is_success
    await api.put("/v1/profiles/bob/fields/phone", json={**FIELD, "value": "+33600000001"})
    return {
        "cid": "alice",
        "field_id": field.json()["id"],
        "derived_id": derived.json()["id"],
        "asset_id": asset.json()["id"],
    }


async def state_of_a(api: httpx.AsyncClient, data: dict[str, Any]) -> dict[str, Any]:
    """Everything of tenant A that tenant B might reach, read as tenant A."""
    return {
        "alice": (await api.get("/v1/profiles/alice", params={"include": "history"})).json(),
        "bob": (await api.get("/v1/profiles/bob", params={"include": "history"})).json(),
        "assets": (
            await api.get("/v1/profiles/alice/assets", params={"include": "history"})
        ).json(),
        "asset": (await api.get(f"/v1/assets/{data['asset_id']}")).json(),
        "lineage": (
            await api.get(f"/v1/lineage/{data['field_id']}", params={"direction": "descendants"})
        ).json(),
        "by_channel": (await api.get("/v1/profiles/by-channel/sms/+1")).json()["customer_id"],
    }


@pytest.fixture
async def tenant_b(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """A second tenant's client, created through the admin API."""
    resp = await http.post(
        "/admin/tenants", json={"name": f"b-{uuid.uuid4().hex}"}, headers=admin_headers
    )
    assert resp.status_code == 201, resp.text
    async with client(http, resp.json()["api_key"]) as other:
        yield other


# -- 401 --------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), TENANT_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ccv_not-a-real-key", "Bearer ", "Basic dXNlcjpwYXNz", "ccv_bare-key"],
    ids=["none", "wrong", "empty", "basic", "no-scheme"],
)
async def test_tenant_routes_answer_401_without_a_valid_key(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    data_a: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    authorization: str | None,
) -> None:
    before = await state_of_a(api, data_a)
    headers = {"Authorization": authorization} if authorization else {}
    url = path.format(**data_a)
    resp = await http.request(method, url, json=body, headers=headers)
    assert_problem(resp, 401)
    assert resp.headers["www-authenticate"].lower().startswith("bearer")
    assert await state_of_a(api, data_a) == before


async def test_admin_key_is_not_a_tenant_key(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    resp = await http.get("/v1/profiles/alice", headers=admin_headers)
    assert_problem(resp, 401)


async def test_a_tenant_key_works_with_a_lowercase_scheme(
    http: httpx.AsyncClient, tenant: tuple[uuid.UUID, str], data_a: dict[str, Any]
) -> None:
    resp = await http.get("/v1/profiles/alice", headers={"Authorization": f"bearer {tenant[1]}"})
    assert resp.status_code == 200


# -- tenant isolation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/profiles/{cid}", None),
        ("GET", "/v1/profiles/{cid}?include=history", None),
        ("GET", "/v1/profiles/{cid}/fields/email", None),
        ("GET", "/v1/profiles/{cid}/fields/email/history", None),
        ("DELETE", "/v1/profiles/{cid}/fields/email", None),
        ("GET", "/v1/profiles/{cid}/assets", None),
        ("GET", "/v1/assets/{asset_id}", None),
        ("DELETE", "/v1/assets/{asset_id}", None),
        ("GET", "/v1/lineage/{field_id}", None),
        ("GET", "/v1/lineage/{field_id}?direction=descendants", None),
        ("GET", "/v1/lineage/{derived_id}", None),
        ("GET", "/v1/lineage/{asset_id}", None),
        ("GET", "/v1/profiles/by-channel/sms/+1", None),
        ("POST", "/v1/profiles/{cid}/merge", {"source_customer_id": "bob"}),
    ],
)
async def test_another_tenants_items_answer_404_and_stay_unchanged(
    api: httpx.AsyncClient,
    tenant_b: httpx.AsyncClient,
    data_a: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    before = await state_of_a(api, data_a)
    resp = await tenant_b.request(method, path.format(**data_a), json=body)
    assert_problem(resp, 404)
    assert await state_of_a(api, data_a) == before


async def test_merging_another_tenants_profile_into_ones_own_answers_404(
    api: httpx.AsyncClient, tenant_b: httpx.AsyncClient, data_a: dict[str, Any]
) -> None:
    own = await tenant_b.put("/v1/profiles/carol/fields/email", json=FIELD)
    assert own.status_code == 201
    before = await state_of_a(api, data_a)
    own_before = (await tenant_b.get("/v1/profiles/carol", params={"include": "history"})).json()
    resp = await tenant_b.post("/v1/profiles/carol/merge", json={"source_customer_id": "alice"})
    assert_problem(resp, 404)
    assert await state_of_a(api, data_a) == before
    own_after = (await tenant_b.get("/v1/profiles/carol", params={"include": "history"})).json()
    assert own_after == own_before


async def test_another_tenants_item_cannot_be_a_source(
    api: httpx.AsyncClient, tenant_b: httpx.AsyncClient, data_a: dict[str, Any]
) -> None:
    before = await state_of_a(api, data_a)
    for kind, item in (("profile_field", "field_id"), ("profile_asset", "asset_id")):
        field = {**FIELD, "source_item_id": data_a[item], "source_item_type": kind}
        resp = await tenant_b.put("/v1/profiles/carol/fields/email", json=field)
        assert_problem(resp, 422)
        asset = {**ASSET, "source_item_id": data_a[item], "source_item_type": kind}
        assert_problem(await tenant_b.post("/v1/profiles/carol/assets", json=asset), 422)
    assert_problem(await tenant_b.get("/v1/profiles/carol"), 404)
    assert await state_of_a(api, data_a) == before


async def test_same_customer_id_in_two_tenants_are_two_profiles(
    api: httpx.AsyncClient, tenant_b: httpx.AsyncClient, data_a: dict[str, Any]
) -> None:
    before = await state_of_a(api, data_a)
    written = await tenant_b.put(
        "/v1/profiles/alice/fields/email", json={**FIELD, "value": "b@example.com"}
    )
    assert written.status_code == 201
    linked = await tenant_b.post(
        "/v1/profiles/alice/channel-identities", json={"channel": "sms", "channel_user_id": "+1"}
    )
    assert linked.status_code == 201
    b_profile = (await tenant_b.get("/v1/profiles/alice")).json()
    assert b_profile["fields"].keys() == {"email"}
    assert b_profile["fields"]["email"]["value"] == "b@example.com"
    assert b_profile["assets"] == []
    assert b_profile["consents"] == []
    assert (await tenant_b.delete("/v1/profiles/alice/fields/email")).status_code == 204
    assert await state_of_a(api, data_a) == before


# -- /admin -----------------------------------------------------------------------------

ADMIN_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/admin/tenants", {"name": "someone"}),
    ("PATCH", "/admin/tenants/{tenant_id}", {"validation_mode": "strict"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_admin_routes_answer_401_without_a_key(
    http: httpx.AsyncClient,
    tenant_id: uuid.UUID,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    for headers in ({}, {"Authorization": "Bearer not-the-admin-key"}):
        resp = await http.request(
            method, path.format(tenant_id=tenant_id), json=body, headers=headers
        )
        assert_problem(resp, 401)
        assert resp.headers["www-authenticate"].lower().startswith("bearer")


async def test_admin_routes_answer_403_to_a_tenant_key_and_change_nothing(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
) -> None:
    name = f"forbidden-{uuid.uuid4().hex}"
    assert_problem(await api.post("/admin/tenants", json={"name": name}), 403)
    patch = {"validation_mode": "strict"}
    assert_problem(await api.patch(f"/admin/tenants/{tenant_id}", json=patch), 403)
    created = await http.post("/admin/tenants", json={"name": name}, headers=admin_headers)
    assert created.status_code == 201
    # The refused PATCH left the tenant's mode alone (strict would refuse this value).
    bad = {"value": "not an email", "value_type": "email", "source": "user_provided"}
    assert (await api.put("/v1/profiles/c1/fields/email", json=bad)).status_code == 201


async def test_refused_tenant_creation_creates_nothing(
    api: httpx.AsyncClient, http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    name = f"refused-{uuid.uuid4().hex}"
    assert_problem(await http.post("/admin/tenants", json={"name": name}), 401)
    assert_problem(await api.post("/admin/tenants", json={"name": name}), 403)
    created = await http.post("/admin/tenants", json={"name": name}, headers=admin_headers)
    assert created.status_code == 201


async def test_admin_creates_a_tenant_whose_key_works(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    name = f"acme-{uuid.uuid4().hex[:8]}"
    resp = await http.post(
        "/admin/tenants", json={"name": name, "validation_mode": "strict"}, headers=admin_headers
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body.keys() == TENANT_KEYS
    uuid.UUID(body["tenant_id"])
    assert body["name"] == name
    assert body["validation_mode"] == "strict"
    assert isinstance(body["api_key"], str)
    assert len(body["api_key"]) >= 32
    async with client(http, body["api_key"]) as new:
        assert (await new.put("/v1/profiles/c1/fields/email", json=FIELD)).status_code == 201
        assert (await new.get("/v1/profiles/c1")).status_code == 200


async def test_new_tenant_defaults_to_the_configured_validation_mode(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    resp = await http.post(
        "/admin/tenants", json={"name": f"d-{uuid.uuid4().hex}"}, headers=admin_headers
    )
    assert resp.status_code == 201
    assert resp.json()["validation_mode"] == "warn"


async def test_two_tenants_get_different_keys(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    keys = set()
    for _ in range(2):
        resp = await http.post(
            "/admin/tenants", json={"name": f"k-{uuid.uuid4().hex}"}, headers=admin_headers
        )
        keys.add(resp.json()["api_key"])
    assert len(keys) == 2


async def test_duplicate_tenant_name_answers_409(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    name = f"dup-{uuid.uuid4().hex}"
    first = await http.post("/admin/tenants", json={"name": name}, headers=admin_headers)
    assert first.status_code == 201
    second = await http.post(
        "/admin/tenants", json={"name": name, "validation_mode": "strict"}, headers=admin_headers
    )
    assert_problem(second, 409)
    async with client(http, first.json()["api_key"]) as original:
        assert (await original.post("/v1/profiles", json={})).status_code == 201
    patched = await http.patch(
        f"/admin/tenants/{first.json()['tenant_id']}",
        json={"validation_mode": "warn"},
        headers=admin_headers,
    )
    assert patched.json()["validation_mode"] == "warn"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": " leading-space"},
        {"name": "x" * 101},
        {"name": "ok", "validation_mode": "lenient"},
        {"name": "ok", "colour": "red"},
        {"name": 5},
    ],
)
async def test_bad_tenant_body_answers_422(
    http: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, Any]
) -> None:
    resp = await http.post("/admin/tenants", json=body, headers=admin_headers)
    problem = assert_problem(resp, 422)
    assert problem["errors"]


async def test_patch_tenant_answers_200_with_the_tenant(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    name = f"p-{uuid.uuid4().hex}"
    created = (await http.post("/admin/tenants", json={"name": name}, headers=admin_headers)).json()
    for mode in ("strict", "disabled", "warn"):
        resp = await http.patch(
            f"/admin/tenants/{created['tenant_id']}",
            json={"validation_mode": mode},
            headers=admin_headers,
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body.keys() == PATCHED_KEYS
        assert body["tenant_id"] == created["tenant_id"]
        assert body["name"] == name
        assert body["validation_mode"] == mode
        assert body["created_at"] is not None


async def test_patch_tenant_mode_takes_effect_on_writes(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
) -> None:
    bad = {"value": "not an email", "value_type": "email", "source": "user_provided"}
    assert (await api.put("/v1/profiles/c1/fields/email", json=bad)).status_code == 201
    patched = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"validation_mode": "strict"}, headers=admin_headers
    )
    assert patched.status_code == 200
    assert_problem(await api.put("/v1/profiles/c1/fields/email", json=bad), 422)


async def test_patch_unknown_tenant_answers_404(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    resp = await http.patch(
        f"/admin/tenants/{uuid.uuid4()}", json={"validation_mode": "strict"}, headers=admin_headers
    )
    assert_problem(resp, 404)


@pytest.mark.parametrize(
    ("which", "body"),
    [
        ("known", {"validation_mode": "lenient"}),
        ("known", {}),
        ("known", {"validation_mode": "strict", "name": "renamed"}),
        ("not-a-uuid", {"validation_mode": "strict"}),
    ],
)
async def test_bad_patch_answers_422_and_changes_nothing(
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
    which: str,
    body: dict[str, Any],
) -> None:
    target = tenant_id if which == "known" else which
    resp = await http.patch(f"/admin/tenants/{target}", json=body, headers=admin_headers)
    assert_problem(resp, 422)
    check = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"validation_mode": "warn"}, headers=admin_headers
    )
    assert check.json()["validation_mode"] == "warn"
    assert check.json()["name"] != "renamed"


# -- operations -------------------------------------------------------------------------


async def test_healthz_needs_no_key(http: httpx.AsyncClient) -> None:
    resp = await http.get("/healthz")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"


async def test_readyz_needs_no_key_and_reports_each_check(http: httpx.AsyncClient) -> None:
    resp = await http.get("/readyz")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {"status", "checks"} <= body.keys()
    assert body.keys() <= {"status", "checks", "details"}
    assert body["status"] in ("ok", "degraded")
    assert body["checks"].keys() == {"database", "cache", "jobs"}
    assert body["checks"]["database"] == "ok"
    assert all(v in ("ok", "degraded", "down") for v in body["checks"].values())
    if "details" in body:
        assert body["details"].keys() <= {"database", "cache", "jobs"}


async def test_metrics_needs_no_key_and_speaks_prometheus_text(http: httpx.AsyncClient) -> None:
    resp = await http.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert "# HELP" in resp.text
    assert "# TYPE" in resp.text


async def test_metrics_expose_the_cache_counters_without_tenant_labels(
    http: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    await api.put("/v1/profiles/c1/fields/email", json=FIELD)
    await api.get("/v1/profiles/c1")
    await api.get("/v1/profiles/c1")
    text = (await http.get("/metrics")).text
    for name in (
        "ccv_cache_hits_total",
        "ccv_cache_misses_total",
        "ccv_cache_errors_total",
        "ccv_cache_invalidations_total",
    ):
        samples = [line for line in text.splitlines() if line.startswith(name)]
        assert samples, name
        assert not any("tenant" in line for line in samples), samples


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_operations_ignore_a_bad_key(http: httpx.AsyncClient, path: str) -> None:
    resp = await http.get(path, headers={"Authorization": "Bearer nonsense"})
    assert resp.status_code == 200
