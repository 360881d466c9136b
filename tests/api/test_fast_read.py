"""The pure-ASGI hot read (api/fast_read.py): GET /v1/profiles/{id} answered without
FastAPI's routing, with the route's exact bytes and headers, and every other request,
error included, answered by the route as before.

Equivalence is shown against the same app built without the middleware ("routed"): both
get the same request and must answer the same status, raw headers and body.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

from api_support import assert_problem
from ccvault.api.app import create_app
from ccvault.api.fast_read import FastProfileRead
from ccvault.api.routes import profiles as profile_routes
from ccvault.config import Settings
from ccvault.runtime import Vault, open_vault

Tenant = tuple[uuid.UUID, str]
Headers = list[tuple[str, str]]


def without_fast_path(vault: Vault) -> FastAPI:
    """The app as it was before the middleware: every read goes through the route."""
    app = create_app(vault=vault)
    app.fast_read = False
    return app


# Sent with every request, so that both apps echo the same X-Request-Id (a minted one
# would differ between two answers that are otherwise the same).
REQUEST_ID = "fast-read-test"


@asynccontextmanager
async def client_on(app: FastAPI, *, raise_errors: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client on `app`; its one default header is a fixed request id."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_errors)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://vault", headers={"X-Request-Id": REQUEST_ID}
    ) as client:
        yield client


def bearer(key: str) -> Headers:
    """The Authorization header for `key`."""
    return [("Authorization", f"Bearer {key}")]


def answer(resp: httpx.Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """What a client sees: status, raw headers in order, body."""
    return resp.status_code, resp.headers.raw, resp.content


@pytest.fixture
async def pair(vault: Vault) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(with the fast path, without it), over the session's vault."""
    async with (
        client_on(create_app(vault=vault)) as fast,
        client_on(without_fast_path(vault)) as routed,
    ):
        yield fast, routed


@pytest.fixture
def route_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Customer ids the FastAPI profile route answered (the fast path never adds one)."""
    calls: list[str] = []
    real = profile_routes._profile_response

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[2])
        return await real(*args, **kwargs)

    monkeypatch.setattr(profile_routes, "_profile_response", counted)
    return calls


async def put_field(client: httpx.AsyncClient, key: str, cid: str, name: str, value: Any) -> None:
    """Write a field version through the API."""
    resp = await client.put(
        f"/v1/profiles/{cid}/fields/{name}",
        json={"value": value, "source": "user_provided"},
        headers=bearer(key),
    )
    assert resp.status_code == 201, resp.text


async def same_answer(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
    path: str,
    headers: Headers,
    method: str = "GET",
    **kwargs: Any,
) -> httpx.Response:
    """Send the request to both apps; they must answer identically."""
    fast, routed = pair
    got = await fast.request(method, path, headers=headers, **kwargs)
    expected = await routed.request(method, path, headers=headers, **kwargs)
    assert answer(got) == answer(expected)
    return got


# -- the fast path serves the plain read, exactly as the route did ---------------------


def test_the_profile_route_is_the_only_get_route_the_fast_path_can_shadow(
    vault: Vault,
) -> None:
    """A new GET /v1/profiles/<literal> route would be hidden by the fast path: refuse it."""
    app = create_app(vault=vault)
    one_segment = [
        path
        for path, operations in app.openapi()["paths"].items()
        if "get" in operations and re.fullmatch(r"/v1/profiles/[^/]+", path)
    ]
    assert one_segment == ["/v1/profiles/{customer_id}"]
    stack = app.build_middleware_stack()
    assert isinstance(stack.app, FastProfileRead), "not right inside the request observer"


def test_openapi_is_unchanged_by_the_fast_path(vault: Vault) -> None:
    assert create_app(vault=vault).openapi() == without_fast_path(vault).openapi()


async def test_plain_read_skips_the_route_and_other_reads_go_through_it(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant, route_calls: list[str]
) -> None:
    fast, _ = pair
    await put_field(fast, tenant[1], "c1", "email", "a@b.c")
    plain = await fast.get("/v1/profiles/c1", headers=bearer(tenant[1]))
    assert plain.status_code == 200
    assert route_calls == []
    history = await fast.get("/v1/profiles/c1?include=history", headers=bearer(tenant[1]))
    assert history.status_code == 200
    assert route_calls == ["c1"]


async def test_fast_path_sends_the_routes_exact_asgi_messages(vault: Vault, tenant: Tenant) -> None:
    """Byte for byte, message for message, cold (first read fills the cache) and warm."""
    async with client_on(create_app(vault=vault)) as fast:
        await put_field(fast, tenant[1], "c1", "email", "a@b.c")

    async def messages(app: FastAPI) -> list[Message]:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/v1/profiles/c1",
            "raw_path": b"/v1/profiles/c1",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"vault"),
                (b"authorization", f"Bearer {tenant[1]}".encode()),
                (b"x-request-id", REQUEST_ID.encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("vault", 80),
            "state": {},
        }
        await app(scope, receive, send)
        return sent

    fast_app, routed_app = create_app(vault=vault), without_fast_path(vault)
    cold = await messages(fast_app)
    assert [m["type"] for m in cold] == ["http.response.start", "http.response.body"]
    assert cold[0]["status"] == 200
    for _ in range(2):
        assert await messages(fast_app) == cold
        assert await messages(routed_app) == cold


async def test_a_write_is_visible_to_the_next_fast_read(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant, route_calls: list[str]
) -> None:
    fast, _ = pair
    for value in ("silver", "gold", "platinum"):
        await put_field(fast, tenant[1], "c1", "tier", value)
        for _ in range(2):  # the first read may fill the cache, the second is a hit
            got = await fast.get("/v1/profiles/c1", headers=bearer(tenant[1]))
            assert got.json()["fields"]["tier"]["value"] == value
    assert route_calls == []


async def test_include_history_still_answers_the_history(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant
) -> None:
    fast, _ = pair
    await put_field(fast, tenant[1], "c1", "tier", "silver")
    await put_field(fast, tenant[1], "c1", "tier", "gold")
    got = await same_answer(pair, "/v1/profiles/c1?include=history", bearer(tenant[1]))
    assert got.status_code == 200
    assert [v["value"] for v in got.json()["field_history"]["tier"]] in (
        ["gold", "silver"],
        ["silver", "gold"],
    )
    plain = await fast.get("/v1/profiles/c1", headers=bearer(tenant[1]))
    assert "field_history" not in plain.json()


async def test_an_id_merged_away_reads_as_the_target_on_the_fast_path(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant, route_calls: list[str]
) -> None:
    fast, _ = pair
    await put_field(fast, tenant[1], "target", "email", "a@b.c")
    await put_field(fast, tenant[1], "source", "phone", "+33600000001")
    await fast.get("/v1/profiles/source", headers=bearer(tenant[1]))  # cached before the merge
    merged = await fast.post(
        "/v1/profiles/target/merge",
        json={"source_customer_id": "source"},
        headers=bearer(tenant[1]),
    )
    assert merged.status_code == 200, merged.text
    route_calls.clear()

    via_alias = await same_answer(pair, "/v1/profiles/source", bearer(tenant[1]))
    assert via_alias.json()["customer_id"] == "target"
    assert set(via_alias.json()["fields"]) == {"email", "phone"}
    target = await fast.get("/v1/profiles/target", headers=bearer(tenant[1]))
    assert via_alias.content == target.content
    assert route_calls == ["source"], "only the routed app's read went through the route"


async def test_fast_reads_work_with_the_cache_off(
    settings: Settings, tenant: Tenant, route_calls: list[str]
) -> None:
    vault = await open_vault(settings.model_copy(update={"cache": False}))
    try:
        assert vault.cache is None
        async with (
            client_on(create_app(vault=vault)) as fast,
            client_on(without_fast_path(vault)) as routed,
        ):
            for value in ("silver", "gold"):
                await put_field(fast, tenant[1], "c1", "tier", value)
                got = await same_answer((fast, routed), "/v1/profiles/c1", bearer(tenant[1]))
                assert got.json()["fields"]["tier"]["value"] == value
            missing = await same_answer((fast, routed), "/v1/profiles/ghost", bearer(tenant[1]))
            assert_problem(missing, 404)
    finally:
        await vault.close()
    # The routed app's two reads and 404, and the fast path's 404, which fell through.
    assert route_calls == ["c1", "c1", "ghost", "ghost"]


async def test_fast_path_finds_the_vault_the_lifespan_opens(
    settings: Settings, tenant: Tenant, route_calls: list[str]
) -> None:
    app = create_app(settings.model_copy(update={"in_process_worker": False}))
    async with app.router.lifespan_context(app), client_on(app) as client:
        await put_field(client, tenant[1], "c1", "email", "a@b.c")
        got = await client.get("/v1/profiles/c1", headers=bearer(tenant[1]))
    assert got.status_code == 200
    assert got.json()["fields"]["email"]["value"] == "a@b.c"
    assert route_calls == []


# -- everything else is the route's answer, unchanged -----------------------------------


async def test_missing_or_unknown_key_answers_the_routes_401(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant
) -> None:
    await put_field(pair[0], tenant[1], "c1", "email", "a@b.c")
    for headers in (
        [],
        bearer("not-a-key"),
        [("Authorization", f"Basic {tenant[1]}")],
        [("Authorization", "Bearer ")],
        [("Authorization", "Bearer not-a-key"), ("Authorization", f"Bearer {tenant[1]}")],
    ):
        resp = await same_answer(pair, "/v1/profiles/c1", headers)
        assert_problem(resp, 401)
        assert resp.headers["www-authenticate"] == "Bearer"


async def test_key_forms_the_route_accepts_are_served(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant, route_calls: list[str]
) -> None:
    await put_field(pair[0], tenant[1], "c1", "email", "a@b.c")
    for headers in (
        [("authorization", f"bearer {tenant[1]}")],
        [("Authorization", f"BEARER   {tenant[1]}  ")],
        [("Authorization", f"Bearer {tenant[1]}"), ("Authorization", "Bearer not-a-key")],
    ):
        route_calls.clear()
        resp = await same_answer(pair, "/v1/profiles/c1", headers)
        assert resp.status_code == 200
        assert route_calls == ["c1"], "the fast path did not serve it (or the route not)"


async def test_unknown_customer_answers_the_routes_404(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant
) -> None:
    assert_problem(await same_answer(pair, "/v1/profiles/ghost", bearer(tenant[1])), 404)


async def test_another_tenants_customer_answers_the_routes_404(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient],
    tenant: Tenant,
    other_api: httpx.AsyncClient,
) -> None:
    await put_field(pair[0], tenant[1], "c1", "email", "a@b.c")
    other_key = other_api.headers["authorization"].removeprefix("Bearer ")
    resp = await same_answer(pair, "/v1/profiles/c1", bearer(other_key))
    body = assert_problem(resp, 404)
    ghost = await same_answer(pair, "/v1/profiles/ghost", bearer(other_key))
    assert body["detail"] == assert_problem(ghost, 404)["detail"].replace("ghost", "c1")


@pytest.mark.parametrize(
    "customer_id",
    [
        "-starts-with-a-dash",
        "a" * 129,
        "a%20b",  # decoded to a space before routing
        "abc%0A",  # a trailing newline, which a bare `$` would accept
        "%C3%A9t%C3%A9",
        "a*b",
    ],
)
async def test_an_id_breaking_the_pattern_answers_the_routes_422(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant, customer_id: str
) -> None:
    assert_problem(await same_answer(pair, f"/v1/profiles/{customer_id}", bearer(tenant[1])), 422)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/profiles/a%2Fc1"),  # an encoded slash is a second segment
        ("GET", "/v1/profiles/c1/"),  # the route's trailing-slash redirect
        ("GET", "/v1/profiles/"),
        ("GET", "/v1/profiles/c1?include=bogus"),
        ("GET", "/v1/profiles/c1?"),
        ("HEAD", "/v1/profiles/c1"),
        ("DELETE", "/v1/profiles/c1"),
        ("GET", "/v1/profiles/%63%31"),  # "c1" percent-encoded: the route reads it as c1
        ("GET", "/v1/profiles/by-channel"),
    ],
)
async def test_unusual_requests_get_the_routes_answer(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant, method: str, path: str
) -> None:
    await put_field(pair[0], tenant[1], "c1", "email", "a@b.c")
    await same_answer(pair, path, bearer(tenant[1]), method)


async def test_a_declared_body_still_meets_the_body_limit(
    pair: tuple[httpx.AsyncClient, httpx.AsyncClient], tenant: Tenant, settings: Settings
) -> None:
    await put_field(pair[0], tenant[1], "c1", "email", "a@b.c")
    too_big = b"x" * (settings.max_body_bytes + 1)
    resp = await same_answer(pair, "/v1/profiles/c1", bearer(tenant[1]), content=too_big)
    assert_problem(resp, 413)
    small = await same_answer(pair, "/v1/profiles/c1", bearer(tenant[1]), content=b"{}")
    assert small.status_code == 200


@pytest.mark.parametrize("make_error", [lambda: RuntimeError("boom"), lambda: OSError("down")])
async def test_an_unexpected_store_error_answers_the_routes_500(
    vault: Vault,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    make_error: Callable[[], Exception],
) -> None:
    async def failing(*args: Any) -> tuple[bytes, int, str]:
        raise make_error()

    monkeypatch.setattr(vault.profiles, "read_profile_json_owned", failing)
    answers = []
    raised = []
    for app in (create_app(vault=vault), without_fast_path(vault)):
        async with client_on(app, raise_errors=False) as client:
            answers.append(answer(await client.get("/v1/profiles/c1", headers=bearer(tenant[1]))))
        async with client_on(app) as client:  # what the server sees (and logs)
            with pytest.raises(type(make_error())) as caught:
                await client.get("/v1/profiles/c1", headers=bearer(tenant[1]))
            raised.append(str(caught.value))
    assert answers[0] == answers[1]
    assert answers[0][0] == 500
    assert raised[0] == raised[1]
