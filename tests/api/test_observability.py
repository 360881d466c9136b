"""Request ids, the access log and the HTTP, pool and job metrics (api/observe.py,
metrics.py): what an operator sees of each request, and that it never holds a value."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from api_support import assert_problem
from ccvault.api.app import create_app
from ccvault.api.observe import HttpMetrics, drain_observers, route_templates
from ccvault.api.routes import profiles as profile_routes
from ccvault.config import Settings
from ccvault.runtime import Vault
from log_support import access_lines, captured_logs, json_lines

Tenant = tuple[uuid.UUID, str]
PROFILE_ROUTE = "/v1/profiles/{customer_id}"
# Values a request carries that must never reach a log line or a metric label.
CUSTOMER = "cust-7f3a9-secret-id"
VALUE = "ada.lovelace@secret.example"
QUERY_VALUE = "query-secret-91"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """JSON log lines at INFO, as `ccv serve` writes them to a file."""
    with captured_logs() as stream:
        yield stream


async def client_for(vault: Vault, settings: Settings | None = None) -> httpx.AsyncClient:
    """A client on a new app (built now, so its access log writes to the current set-up)."""
    app = create_app(settings or vault.settings, vault=vault)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://vault")


@pytest.fixture
async def client(vault: Vault, logs: io.StringIO) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app whose logs are captured."""
    async with await client_for(vault) as opened:
        yield opened


def bearer(key: str) -> dict[str, str]:
    """The Authorization header for `key`."""
    return {"Authorization": f"Bearer {key}"}


def requests_total(method: str, route: str, status: int) -> float:
    """ccv_http_requests_total for one series (0 before its first request)."""
    drain_observers()  # requests are counted when the event loop's turn ends
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("ccv_http_requests_total", labels) or 0.0


def duration_count(method: str, route: str) -> float:
    """How many requests the latency histogram holds for one series."""
    drain_observers()
    labels = {"method": method, "route": route}
    return REGISTRY.get_sample_value("ccv_http_request_duration_seconds_count", labels) or 0.0


async def write_value(client: httpx.AsyncClient, key: str) -> None:
    """A field write carrying the values the log must not show."""
    resp = await client.put(
        f"/v1/profiles/{CUSTOMER}/fields/email",
        json={"value": VALUE, "source": "user_provided"},
        headers=bearer(key),
    )
    assert resp.status_code == 201, resp.text


# -- the access log -----------------------------------------------------------------------


async def test_each_request_logs_one_line_with_route_template_status_and_caller(
    client: httpx.AsyncClient, tenant: Tenant, logs: io.StringIO
) -> None:
    await write_value(client, tenant[1])
    history = await client.get(
        f"/v1/profiles/{CUSTOMER}/fields/email/history",
        params={"unused": QUERY_VALUE},
        headers=bearer(tenant[1]),
    )
    assert history.status_code == 200
    lines = access_lines(logs)
    assert len(lines) == 2
    write, read = lines
    assert write["method"] == "PUT"
    assert write["route"] == "/v1/profiles/{customer_id}/fields/{name}"
    assert write["status"] == 201
    assert read["route"] == "/v1/profiles/{customer_id}/fields/{name}/history"
    assert read["status"] == 200
    for line in lines:
        assert line["event"] == "request"
        assert line["level"] == "info"
        assert line["tenant"] == str(tenant[0])
        assert "key_id" in line  # null until keys have ids of their own
        assert isinstance(line["duration_ms"], float)
        assert line["duration_ms"] >= 0
        assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
        assert line["timestamp"].endswith("Z")
    assert write["request_id"] != read["request_id"]


async def test_the_log_holds_no_customer_id_value_query_or_body(
    client: httpx.AsyncClient, tenant: Tenant, logs: io.StringIO
) -> None:
    await write_value(client, tenant[1])
    for _ in range(2):  # cold, then warm: the fast path
        await client.get(f"/v1/profiles/{CUSTOMER}", headers=bearer(tenant[1]))
    await client.get(f"/v1/profiles/{CUSTOMER}?include={QUERY_VALUE}", headers=bearer(tenant[1]))
    await client.get(f"/v1/profiles/{CUSTOMER}/nothing-here/{VALUE}", headers=bearer(tenant[1]))
    await client.post("/v1/profiles", content=f'{{"customer_id": "{VALUE}"', headers=bearer("x"))
    # Everything the server logged (httpx's lines are the test client's own).
    text = "\n".join(json.dumps(line) for line in json_lines(logs) if line["logger"] != "httpx")
    assert len(access_lines(logs)) == 6
    for secret in (CUSTOMER, VALUE, QUERY_VALUE, tenant[1]):
        assert secret not in text


async def test_warm_fast_reads_are_logged_with_the_routes_template(
    client: httpx.AsyncClient, tenant: Tenant, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    await write_value(client, tenant[1])
    await client.get(f"/v1/profiles/{CUSTOMER}", headers=bearer(tenant[1]))  # fills the cache
    routed: list[str] = []
    real = profile_routes._profile_response

    async def counted(*args: Any, **kwargs: Any) -> Any:
        routed.append(args[2])
        return await real(*args, **kwargs)

    monkeypatch.setattr(profile_routes, "_profile_response", counted)
    before = requests_total("GET", PROFILE_ROUTE, 200)
    warm = await client.get(f"/v1/profiles/{CUSTOMER}", headers=bearer(tenant[1]))
    assert warm.status_code == 200
    assert routed == [], "the read did not take the fast path"
    last = access_lines(logs)[-1]
    assert (last["method"], last["route"], last["status"]) == ("GET", PROFILE_ROUTE, 200)
    assert last["tenant"] == str(tenant[0])
    assert last["request_id"] == warm.headers["x-request-id"]
    assert requests_total("GET", PROFILE_ROUTE, 200) == before + 1


async def test_errors_are_logged_with_their_status(
    client: httpx.AsyncClient, tenant: Tenant, logs: io.StringIO, settings: Settings
) -> None:
    await client.get("/v1/profiles/ghost", headers=bearer(tenant[1]))
    await client.get("/no/such/path")
    await client.get("/v1/profiles/c1")
    await client.put(
        "/v1/profiles/c1/fields/email",
        content=b"x" * (settings.max_body_bytes + 1),
        headers=bearer(tenant[1]),
    )
    got = [(line["route"], line["status"]) for line in access_lines(logs)]
    assert got == [
        (PROFILE_ROUTE, 404),
        ("unmatched", 404),
        (PROFILE_ROUTE, 401),
        ("/v1/profiles/{customer_id}/fields/{name}", 413),
    ]
    assert [line["tenant"] for line in access_lines(logs)] == [str(tenant[0]), None, None, None]


async def test_probes_are_logged_only_at_debug(vault: Vault) -> None:
    with captured_logs("INFO") as info:
        async with await client_for(vault) as client:
            for path in ("/healthz", "/metrics"):
                assert (await client.get(path)).status_code == 200
    assert access_lines(info) == []
    with captured_logs("DEBUG") as debug:
        async with await client_for(vault) as client:
            await client.get("/healthz")
    assert [(line["route"], line["level"]) for line in access_lines(debug)] == [
        ("/healthz", "debug")
    ]


async def test_access_log_and_http_metrics_can_be_switched_off(
    vault: Vault, tenant: Tenant, logs: io.StringIO
) -> None:
    quiet = vault.settings.model_copy(update={"access_log": False, "http_metrics": False})
    before = requests_total("GET", PROFILE_ROUTE, 404)
    async with await client_for(vault, quiet) as client:
        resp = await client.get("/v1/profiles/ghost", headers=bearer(tenant[1]))
    assert resp.status_code == 404
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-request-id"]), "ids stay on"
    assert access_lines(logs) == []
    assert requests_total("GET", PROFILE_ROUTE, 404) == before


# -- request ids --------------------------------------------------------------------------


async def test_a_sane_request_id_is_echoed_and_logged(
    client: httpx.AsyncClient, tenant: Tenant, logs: io.StringIO
) -> None:
    sane = ("abc-123", "3f2a9c1e-8d7b-4e6f-a5c4-1b2d3e4f5a6b", "svc:checkout/42+x=y@z_.", "x" * 128)
    for sent in sane:
        headers = {"X-Request-Id": sent, **bearer(tenant[1])}
        resp = await client.get("/v1/profiles/ghost", headers=headers)
        assert resp.headers["x-request-id"] == sent
        assert access_lines(logs)[-1]["request_id"] == sent


@pytest.mark.parametrize(
    "sent",
    ["", "x" * 129, "has space", 'quo"te', "tab\tbed", "caf\u00e9", "a;b", "<script>"],
)
async def test_an_insane_request_id_is_replaced_by_a_minted_one(
    client: httpx.AsyncClient, sent: str, logs: io.StringIO
) -> None:
    resp = await client.get("/nowhere", headers={"X-Request-Id": sent.encode("utf-8")})
    assert resp.status_code == 404
    minted = resp.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", minted)
    assert access_lines(logs)[-1]["request_id"] == minted


async def test_every_answer_carries_a_request_id(
    client: httpx.AsyncClient,
    tenant: Tenant,
    settings: Settings,
    vault: Vault,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = bearer(tenant[1])
    json_key = {**key, "Content-Type": "application/json"}
    too_big = b"x" * (settings.max_body_bytes + 1)
    await write_value(client, tenant[1])
    answers = [
        await client.get(f"/v1/profiles/{CUSTOMER}", headers=key),  # cold, routed
        await client.get(f"/v1/profiles/{CUSTOMER}", headers=key),  # warm, fast path
        await client.get("/v1/profiles/ghost", headers=key),
        await client.get("/nowhere"),
        await client.delete("/healthz"),
        await client.get("/v1/profiles/c1"),
        await client.put("/v1/profiles/c1/fields/x", content=too_big, headers=key),
        await client.post("/v1/profiles", content=b"{not json", headers=json_key),
        await client.get("/docs"),
    ]

    async def failing(*args: Any) -> tuple[bytes, int, str]:
        raise RuntimeError("boom")

    monkeypatch.setattr(vault.profiles, "read_profile_json_owned", failing)
    answers.append(await client.get("/v1/profiles/c1", headers=key))
    statuses = [a.status_code for a in answers]
    assert statuses == [200, 200, 404, 404, 405, 401, 413, 400, 200, 500]
    ids = [a.headers.get("x-request-id", "") for a in answers]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert len(set(ids)) == len(ids)


async def test_log_lines_written_during_a_request_carry_its_id(
    client: httpx.AsyncClient,
    tenant: Tenant,
    vault: Vault,
    logs: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def failing(*args: Any) -> tuple[bytes, int, str]:
        raise RuntimeError(f"boom for {CUSTOMER}")

    monkeypatch.setattr(vault.profiles, "read_profile_json_owned", failing)
    resp = await client.get(
        f"/v1/profiles/{CUSTOMER}", headers={"X-Request-Id": "req-500", **bearer(tenant[1])}
    )
    assert_problem(resp, 500)
    assert resp.headers["x-request-id"] == "req-500"
    lines = [line for line in json_lines(logs) if line.get("request_id") == "req-500"]
    assert [line["event"] for line in lines] == ["unhandled error", "request"]
    error, access = lines
    assert error["route"] == PROFILE_ROUTE, "the error line names the route, not the path"
    assert "RuntimeError" in error["exception"]
    assert "read_profile_json" in error["exception"] or "failing" in error["exception"]
    assert CUSTOMER not in json.dumps(error), "an exception's message may quote values"
    assert access["status"] == 500


# -- metrics ------------------------------------------------------------------------------


async def test_http_metrics_count_by_method_route_template_and_status(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    route = "/v1/profiles/{customer_id}/fields/{name}"
    put_before = requests_total("PUT", route, 201)
    timed_before = duration_count("PUT", route)
    unmatched_before = requests_total("GET", "unmatched", 404)
    other_before = requests_total("other", "unmatched", 404)
    await write_value(client, tenant[1])
    await client.get(f"/v1/{CUSTOMER}/nowhere", headers=bearer(tenant[1]))
    await client.request("BREW", f"/pots/{CUSTOMER}")
    assert requests_total("PUT", route, 201) == put_before + 1
    assert duration_count("PUT", route) == timed_before + 1
    assert requests_total("GET", "unmatched", 404) == unmatched_before + 1
    assert requests_total("other", "unmatched", 404) == other_before + 1


async def test_metrics_page_has_http_pool_and_job_series_and_no_created(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await write_value(client, tenant[1])
    text = (await client.get("/metrics")).text
    families = set(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    assert {
        ("ccv_http_requests_total", "counter"),
        ("ccv_http_request_duration_seconds", "histogram"),
        ("ccv_db_pool_size", "gauge"),
        ("ccv_db_pool_available", "gauge"),
        ("ccv_db_pool_waiting", "gauge"),
        ("ccv_db_pool_requests_total", "counter"),
        ("ccv_db_pool_requests_errors_total", "counter"),
        ("ccv_db_pool_connection_errors_total", "counter"),
        ("ccv_jobs", "gauge"),
        ("ccv_jobs_due", "gauge"),
        ("ccv_job_workers_alive", "gauge"),
    } <= families
    assert "_created" not in text
    assert re.search(r'^ccv_db_pool_size\{pool="ccvault"\} [1-9]', text, re.MULTILINE)
    for state in ("todo", "doing", "succeeded", "failed"):
        assert f'ccv_jobs{{state="{state}"}} ' in text
    bucket = (
        r'^ccv_http_request_duration_seconds_bucket\{le="0.005",method="PUT",'
        r'route="/v1/profiles/\{customer_id\}/fields/\{name\}"\} \d'
    )
    assert re.search(bucket, text, re.MULTILINE)


async def test_metric_labels_hold_no_tenant_or_customer(
    client: httpx.AsyncClient, tenant: Tenant, vault: Vault
) -> None:
    await write_value(client, tenant[1])
    await client.get(f"/v1/profiles/{CUSTOMER}", headers=bearer(tenant[1]))
    await client.get(f"/elsewhere/{CUSTOMER}")
    text = (await client.get("/metrics")).text
    assert CUSTOMER not in text
    assert str(tenant[0]) not in text
    label_names = set(re.findall(r"[{,]([a-z_]+)=", text))
    assert not label_names & {"tenant", "tenant_id", "customer_id", "key_id"}
    templates = set(route_templates(create_app(vault=vault).routes))
    routes = set(re.findall(r'route="([^"]*)"', text))
    # "/boom": the failing app of test_server_errors (the metrics are the process's).
    assert routes <= templates | {"unmatched", "/boom"}, routes - templates


def test_the_latency_histogram_counts_each_request_in_its_bucket() -> None:
    metrics = HttpMetrics()
    for seconds in (0.0001, 0.005, 0.0051, 11.0):
        metrics.observe("GET", "/r", 200, seconds)
    metrics.observe("GET", "/r", 404, 0.001)
    families = {family.name: family for family in metrics.collect()}
    counts = {(s.labels["status"], s.value) for s in families["ccv_http_requests"].samples}
    assert counts == {("200", 4.0), ("404", 1.0)}
    samples = families["ccv_http_request_duration_seconds"].samples
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert buckets["0.0005"] == 1  # 0.1 ms
    assert buckets["0.001"] == 2  # + the 404's 1 ms: a bound is inclusive
    assert buckets["0.005"] == 3  # + 5 ms
    assert buckets["0.01"] == 4  # + 5.1 ms
    assert buckets["10.0"] == 4
    assert buckets["+Inf"] == 5  # + 11 s, above the last bound
    [total] = [s.value for s in samples if s.name.endswith("_sum")]
    assert total == pytest.approx(0.0001 + 0.005 + 0.0051 + 11.0 + 0.001)
