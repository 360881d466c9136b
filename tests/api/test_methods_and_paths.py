"""405 and OPTIONS name every method a path answers; paths are exact (no slash redirect)."""

from __future__ import annotations

import httpx
import pytest

from api_support import assert_problem

FIELD_PATH = "/v1/profiles/cust-1/fields/email"


def allowed(resp: httpx.Response) -> list[str]:
    """The methods of the Allow header, in the order sent."""
    return [m.strip() for m in resp.headers["allow"].split(",")]


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        (FIELD_PATH, ["GET", "PUT", "DELETE", "OPTIONS"]),
        ("/v1/profiles/cust-1", ["GET", "PATCH", "OPTIONS"]),
        ("/v1/profiles", ["GET", "POST", "OPTIONS"]),
        ("/v1/agents/a1/scenarios/s1", ["GET", "PUT", "DELETE", "OPTIONS"]),
        ("/admin/tenants/00000000-0000-0000-0000-000000000000", ["PATCH", "OPTIONS"]),
        ("/healthz", ["GET", "OPTIONS"]),
    ],
)
async def test_options_lists_every_method_of_the_path(
    http: httpx.AsyncClient, path: str, methods: list[str]
) -> None:
    resp = await http.options(path)
    assert resp.status_code == 204
    assert allowed(resp) == methods
    assert resp.content == b""


async def test_a_path_two_templates_match_allows_the_methods_of_both(
    http: httpx.AsyncClient,
) -> None:
    # by-channel/{channel}/{channel_user_id} (GET) and {customer_id}/fields/{name}
    # (GET, PUT, DELETE) both match: routing accepts all of them, so Allow says so.
    resp = await http.options("/v1/profiles/by-channel/fields/email")
    assert allowed(resp) == ["GET", "PUT", "DELETE", "OPTIONS"]


@pytest.mark.parametrize("method", ["PATCH", "POST"])
async def test_405_is_a_problem_listing_every_method_of_the_path(
    api: httpx.AsyncClient, method: str
) -> None:
    resp = await api.request(method, FIELD_PATH, json={"value": "x", "source": "user_provided"})
    body = assert_problem(resp, 405)
    assert allowed(resp) == ["GET", "PUT", "DELETE", "OPTIONS"]
    assert method in body["detail"]


async def test_405_comes_before_the_key_check(http: httpx.AsyncClient) -> None:
    resp = await http.delete("/v1/profiles/cust-1")
    assert_problem(resp, 405)
    assert allowed(resp) == ["GET", "PATCH", "OPTIONS"]


async def test_options_on_an_unknown_path_is_404(http: httpx.AsyncClient) -> None:
    assert_problem(await http.options("/v1/nothing-here"), 404)


@pytest.mark.parametrize(
    "path", ["/v1/profiles/", "/v1/profiles/cust-1/", f"{FIELD_PATH}/", "/healthz/", "/admin/jobs/"]
)
async def test_a_trailing_slash_is_404_and_never_a_redirect(
    http: httpx.AsyncClient, path: str
) -> None:
    resp = await http.get(path, headers={"Host": "attacker.example"})
    assert_problem(resp, 404)
    assert "location" not in resp.headers


async def test_a_trailing_slash_with_a_key_is_404_too(api: httpx.AsyncClient) -> None:
    await api.put(FIELD_PATH, json={"value": "a@b.c", "source": "user_provided"})
    assert_problem(await api.get(f"{FIELD_PATH}/"), 404)
    assert (await api.get(FIELD_PATH)).status_code == 200
