"""The published OpenAPI document declares the error answers each route can give."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

PROBLEM_JSON = "application/problem+json"

# (method, path, status) for every error a route of the contract can answer.
DECLARED: list[tuple[str, str, int]] = [
    ("post", "/v1/profiles", 401),
    ("post", "/v1/profiles", 409),
    ("post", "/v1/profiles", 422),
    ("get", "/v1/profiles/{customer_id}", 401),
    ("get", "/v1/profiles/{customer_id}", 404),
    ("get", "/v1/profiles/{customer_id}", 422),
    ("get", "/v1/profiles/by-channel/{channel}/{channel_user_id}", 401),
    ("get", "/v1/profiles/by-channel/{channel}/{channel_user_id}", 404),
    ("get", "/v1/profiles/by-channel/{channel}/{channel_user_id}", 422),
    ("post", "/v1/profiles/{customer_id}/channel-identities", 401),
    ("post", "/v1/profiles/{customer_id}/channel-identities", 409),
    ("post", "/v1/profiles/{customer_id}/channel-identities", 422),
    ("put", "/v1/profiles/{customer_id}/consents/{consent_type}", 401),
    ("put", "/v1/profiles/{customer_id}/consents/{consent_type}", 422),
    ("post", "/v1/profiles/{customer_id}/merge", 401),
    ("post", "/v1/profiles/{customer_id}/merge", 404),
    ("post", "/v1/profiles/{customer_id}/merge", 422),
    ("put", "/v1/profiles/{customer_id}/fields/{name}", 401),
    ("put", "/v1/profiles/{customer_id}/fields/{name}", 422),
    ("get", "/v1/profiles/{customer_id}/fields/{name}", 401),
    ("get", "/v1/profiles/{customer_id}/fields/{name}", 404),
    ("get", "/v1/profiles/{customer_id}/fields/{name}", 422),
    ("delete", "/v1/profiles/{customer_id}/fields/{name}", 401),
    ("delete", "/v1/profiles/{customer_id}/fields/{name}", 404),
    ("get", "/v1/profiles/{customer_id}/fields/{name}/history", 401),
    ("get", "/v1/profiles/{customer_id}/fields/{name}/history", 404),
    ("post", "/v1/profiles/{customer_id}/assets", 401),
    ("post", "/v1/profiles/{customer_id}/assets", 422),
    ("get", "/v1/profiles/{customer_id}/assets", 401),
    ("get", "/v1/profiles/{customer_id}/assets", 404),
    ("get", "/v1/assets/{asset_id}", 401),
    ("get", "/v1/assets/{asset_id}", 404),
    ("delete", "/v1/assets/{asset_id}", 401),
    ("delete", "/v1/assets/{asset_id}", 404),
    ("get", "/v1/lineage/{item_id}", 401),
    ("get", "/v1/lineage/{item_id}", 404),
    ("get", "/v1/lineage/{item_id}", 422),
    ("post", "/admin/tenants", 401),
    ("post", "/admin/tenants", 403),
    ("post", "/admin/tenants", 409),
    ("post", "/admin/tenants", 422),
    ("patch", "/admin/tenants/{tenant_id}", 401),
    ("patch", "/admin/tenants/{tenant_id}", 403),
    ("patch", "/admin/tenants/{tenant_id}", 404),
    ("patch", "/admin/tenants/{tenant_id}", 422),
    ("get", "/readyz", 503),
]


@pytest.fixture(scope="module")
async def openapi(http: httpx.AsyncClient) -> dict[str, Any]:
    """The document the running app publishes (no key needed)."""
    resp = await http.get("/openapi.json")
    assert resp.status_code == 200
    document: dict[str, Any] = resp.json()
    return document


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """One operation of the document; fails clearly when the route is missing."""
    assert path in document["paths"], sorted(document["paths"])
    assert method in document["paths"][path], document["paths"][path].keys()
    op: dict[str, Any] = document["paths"][path][method]
    return op


async def test_openapi_json_is_published(http: httpx.AsyncClient) -> None:
    resp = await http.get("/openapi.json")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["openapi"].startswith("3.")
    assert resp.json()["info"]["title"]


async def test_docs_page_answers_200(http: httpx.AsyncClient) -> None:
    resp = await http.get("/docs")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "openapi.json" in resp.text


@pytest.mark.parametrize(
    ("method", "path", "status"), DECLARED, ids=[f"{m} {p} {s}" for m, p, s in DECLARED]
)
async def test_route_declares_the_error_it_can_answer(
    openapi: dict[str, Any], method: str, path: str, status: int
) -> None:
    responses = operation(openapi, method, path)["responses"]
    assert str(status) in responses, sorted(responses)


def error_responses(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """Every declared 4xx/5xx answer of the tenant and operator routes.

    (/readyz's 503 is its status document, not a problem, so operations routes are left out.)
    """
    found = []
    for path, ops in document["paths"].items():
        if not path.startswith(("/v1/", "/admin/")):
            continue
        for method, op in ops.items():
            for status, response in op.get("responses", {}).items():
                if status[0] in "45":
                    found.append((method, path, status, response))
    return found


async def test_every_declared_error_is_problem_json(openapi: dict[str, Any]) -> None:
    wrong = [
        f"{method.upper()} {path} {status}: {sorted(response.get('content', {}))}"
        for method, path, status, response in error_responses(openapi)
        if list(response.get("content", {})) != [PROBLEM_JSON]
    ]
    assert wrong == []


async def test_every_tenant_and_admin_route_declares_401(openapi: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, ops in openapi["paths"].items()
        if path.startswith(("/v1/", "/admin/"))
        for method, op in ops.items()
        if "401" not in op["responses"]
    ]
    assert missing == []


async def test_every_admin_route_declares_403(openapi: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, ops in openapi["paths"].items()
        if path.startswith("/admin/")
        for method, op in ops.items()
        if "403" not in op["responses"]
    ]
    assert missing == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_operations_routes_declare_no_auth_errors(openapi: dict[str, Any], path: str) -> None:
    responses = openapi["paths"].get(path, {}).get("get", {}).get("responses", {})
    assert "401" not in responses
    assert "403" not in responses


async def test_metrics_is_not_declared_as_json(openapi: dict[str, Any]) -> None:
    if "/metrics" not in openapi["paths"]:
        return  # left out of the schema altogether: nothing misleading published
    content = operation(openapi, "get", "/metrics")["responses"]["200"].get("content", {})
    assert list(content) == ["text/plain"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("post", "/v1/profiles", "201"),
        ("put", "/v1/profiles/{customer_id}/fields/{name}", "201"),
        ("post", "/v1/profiles/{customer_id}/assets", "201"),
        ("post", "/v1/profiles/{customer_id}/channel-identities", "201"),
        ("post", "/v1/profiles/{customer_id}/channel-identities", "200"),
        ("delete", "/v1/profiles/{customer_id}/fields/{name}", "204"),
        ("delete", "/v1/assets/{asset_id}", "204"),
        ("post", "/admin/tenants", "201"),
    ],
)
async def test_success_status_matches_the_contract(
    openapi: dict[str, Any], method: str, path: str, status: str
) -> None:
    assert status in operation(openapi, method, path)["responses"]
