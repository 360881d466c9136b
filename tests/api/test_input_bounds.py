"""Input at the bounds: timestamps, integers, strict scalars, text PostgreSQL cannot store
and sizes. A refusal is a 4xx problem, stores nothing, and every read still answers 200;
what is accepted is readable afterwards."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from api_support import ASSET, assert_problem
from ccvault.domain.bounds import JSON_SAFE_INT_MAX, MAX_VALUE_BYTES

FIELD: dict[str, Any] = {"value": "a@example.com", "source": "user_provided"}
FIELD_URL = "/v1/profiles/{cid}/fields/email"
ASSET_URL = "/v1/profiles/{cid}/assets"
DEFINITION_URL = "/v1/agents/agent-1/field-definitions/birth"
DEFINITION: dict[str, Any] = {"display_name": "Birth", "value_type": "datetime"}
REQUIREMENT_URL = "/v1/agents/agent-1/scenarios/onboarding/requirements/email"


async def send(
    api: httpx.AsyncClient,
    method: str,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """JSON with \\u escapes (lone surrogates travel as valid JSON text) and big integers."""
    raw = json.dumps(body, ensure_ascii=True).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    return await api.request(method, url, content=raw, headers=headers)


async def state(api: httpx.AsyncClient) -> dict[str, Any]:
    """Every read a stored bad row could poison: 200, or 404 for what is absent (a definition
    not written, a field past its expiry)."""
    reads = {
        "profile": await api.get("/v1/profiles/cust-1", params={"include": "history"}),
        "cached": await api.get("/v1/profiles/cust-1"),
        "field": await api.get("/v1/profiles/cust-1/fields/email"),
        "history": await api.get("/v1/profiles/cust-1/fields/email/history"),
        "assets": await api.get("/v1/profiles/cust-1/assets", params={"include": "history"}),
        "definition": await api.get(DEFINITION_URL),
        "requirements": await api.get("/v1/agents/agent-1/scenarios/onboarding/requirements"),
    }
    for name, resp in reads.items():
        absent = name in ("definition", "field") and resp.status_code == 404
        assert resp.status_code == 200 or absent, (name, resp.text)
    fresh = await api.get("/v1/profiles/fresh")
    assert fresh.status_code == 404, "a refused write created a profile"
    return {name: resp.json() for name, resp in reads.items()}


@pytest.fixture
async def before(api: httpx.AsyncClient) -> dict[str, Any]:
    """cust-1 with a field and an asset; the state every refused request must leave."""
    assert (await api.put("/v1/profiles/cust-1/fields/email", json=FIELD)).status_code == 201
    assert (await api.post("/v1/profiles/cust-1/assets", json=ASSET)).status_code == 201
    return await state(api)


def assert_refused(resp: httpx.Response, loc: list[Any] | None = None) -> list[dict[str, Any]]:
    """A 422 problem, naming `loc` among its errors when given."""
    body = assert_problem(resp, 422)
    errors: list[dict[str, Any]] = body["errors"]
    if loc is not None:
        assert loc in [e["loc"] for e in errors], errors
    return errors


async def set_mode(
    http: httpx.AsyncClient, admin_headers: dict[str, str], tenant_id: uuid.UUID, mode: str
) -> None:
    """Switch the test tenant's validation mode through the admin API."""
    resp = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"validation_mode": mode}, headers=admin_headers
    )
    assert resp.status_code == 200, resp.text


# -- timestamps ------------------------------------------------------------------------------

# (method, url template, valid body, timestamp key): every timestamp a request carries.
TIMESTAMPS = [
    ("PUT", FIELD_URL, FIELD, "expires_at"),
    ("PUT", FIELD_URL, {**FIELD, "verified": True}, "verified_at"),
    ("POST", ASSET_URL, ASSET, "expires_at"),
]
TIMESTAMP_IDS = ["field-expires_at", "field-verified_at", "asset-expires_at"]
OUT_OF_RANGE = [
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T12:00:00",
    "10000-01-01T00:00:00Z",
    "0000-12-31T00:00:00Z",
]
NOT_A_TIMESTAMP = [0, 1_700_000_000, 1.7e9, True, "1700000000", "2030-01-01"]


@pytest.mark.parametrize("cid", ["cust-1", "fresh"])
@pytest.mark.parametrize("value", OUT_OF_RANGE + NOT_A_TIMESTAMP)
@pytest.mark.parametrize(("method", "url", "body", "key"), TIMESTAMPS, ids=TIMESTAMP_IDS)
async def test_a_timestamp_outside_the_bounds_answers_422_and_stores_nothing(
    api: httpx.AsyncClient,
    before: dict[str, Any],
    method: str,
    url: str,
    body: dict[str, Any],
    key: str,
    value: Any,
    cid: str,
) -> None:
    resp = await send(api, method, url.format(cid=cid), {**body, key: value})
    assert_refused(resp, ["body", key])
    assert await state(api) == before


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("0001-01-01T10:00:00-14:00", "0001-01-02T00:00:00Z"),
        ("0001-01-02T00:00:00Z", "0001-01-02T00:00:00Z"),
        ("9999-12-31T13:59:59.999999+14:00", "9999-12-30T23:59:59.999999Z"),
        ("9999-12-30T23:59:59.999999Z", "9999-12-30T23:59:59.999999Z"),
    ],
)
@pytest.mark.parametrize(("method", "url", "body", "key"), TIMESTAMPS, ids=TIMESTAMP_IDS)
async def test_a_timestamp_at_the_bounds_is_stored_in_utc_and_reads_stay_200(
    api: httpx.AsyncClient,
    before: dict[str, Any],
    method: str,
    url: str,
    body: dict[str, Any],
    key: str,
    sent: str,
    stored: str,
) -> None:
    resp = await send(api, method, url.format(cid="cust-1"), {**body, key: sent})
    assert resp.status_code == 201, resp.text
    assert resp.json()[key].replace("+00:00", "Z") == stored
    after = await state(api)  # every read answers 200
    versions = after["history"]["items"] + after["assets"]["items"]
    assert resp.json()["id"] in [v["id"] for v in versions]


@pytest.mark.parametrize("value", [*OUT_OF_RANGE, "\uff12\uff10\uff13\uff10-01-01T00:00:00Z"])
async def test_a_datetime_value_outside_the_bounds_is_refused_in_strict_mode(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
    before: dict[str, Any],
    value: str,
) -> None:
    await set_mode(http, admin_headers, tenant_id, "strict")
    body = {"value": value, "value_type": "datetime", "source": "user_provided"}
    resp = await send(api, "PUT", FIELD_URL.format(cid="cust-1"), body)
    errors = assert_refused(resp, ["body", "value"])
    assert errors[0]["code"] == "format_error"
    assert await state(api) == before


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_a_datetime_value_outside_the_bounds_is_kept_as_text_in_warn_mode(
    api: httpx.AsyncClient, before: dict[str, Any], value: str
) -> None:
    body = {"value": value, "value_type": "datetime", "source": "user_provided"}
    resp = await send(api, "PUT", FIELD_URL.format(cid="cust-1"), body)
    assert resp.status_code == 201, resp.text
    assert [w["code"] for w in resp.json()["validation_warnings"]] == ["format_error"]
    after = await state(api)
    assert after["field"]["value"] == value


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_a_datetime_definition_refuses_an_allowed_value_outside_the_bounds(
    api: httpx.AsyncClient, before: dict[str, Any], value: str
) -> None:
    resp = await send(api, "PUT", DEFINITION_URL, {**DEFINITION, "allowed_values": [value]})
    assert assert_refused(resp)[0]["code"] == "config_error"
    assert await state(api) == before


# -- integers --------------------------------------------------------------------------------

BIG = [2**31, 2**53, 2**63, 2**64, -(2**63) - 1]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        *[("retention_days", v) for v in (0, -1, 36501, *BIG)],
        *[("freshness_seconds", v) for v in (0, -1, *BIG)],
    ],
)
async def test_a_definition_integer_out_of_range_answers_422_and_stores_nothing(
    api: httpx.AsyncClient, before: dict[str, Any], key: str, value: int
) -> None:
    resp = await send(api, "PUT", DEFINITION_URL, {**DEFINITION, key: value})
    assert_refused(resp, ["body", key])
    assert await state(api) == before


async def test_definition_integers_at_their_maximum_are_stored_and_used(
    api: httpx.AsyncClient, before: dict[str, Any]
) -> None:
    body = {
        "display_name": "Email",
        "value_type": "email",
        "retention_days": 36500,
        "freshness_seconds": 2**31 - 1,
    }
    resp = await send(api, "PUT", "/v1/agents/agent-1/field-definitions/email", body)
    assert resp.status_code == 201, resp.text
    assert await api.put(REQUIREMENT_URL, json={})
    written = await api.put(FIELD_URL.format(cid="cust-1"), json={**FIELD, "agent_id": "agent-1"})
    assert written.status_code == 201, written.text
    assert written.json()["expires_at"].startswith("21")  # a century from now
    missing = await api.get(
        "/v1/profiles/cust-1/missing-fields",
        params={"agent_id": "agent-1", "scenario_id": "onboarding"},
    )
    assert missing.status_code == 200, missing.text
    assert missing.json()["missing"] == []  # fresh for 68 years
    await state(api)


@pytest.mark.parametrize("value", [-1, 1_000_001, *BIG])
async def test_a_requirement_collection_order_out_of_range_answers_422(
    api: httpx.AsyncClient, before: dict[str, Any], value: int
) -> None:
    resp = await send(api, "PUT", REQUIREMENT_URL, {"collection_order": value})
    assert_refused(resp, ["body", "collection_order"])
    assert await state(api) == before


@pytest.mark.parametrize("value", [-1, JSON_SAFE_INT_MAX + 1, 2**63, 2**64])
async def test_an_asset_size_out_of_range_answers_422(
    api: httpx.AsyncClient, before: dict[str, Any], value: int
) -> None:
    resp = await send(api, "POST", ASSET_URL.format(cid="cust-1"), {**ASSET, "size_bytes": value})
    assert_refused(resp, ["body", "size_bytes"])
    assert await state(api) == before


async def test_an_asset_size_at_its_maximum_is_stored(
    api: httpx.AsyncClient, before: dict[str, Any]
) -> None:
    body = {**ASSET, "size_bytes": JSON_SAFE_INT_MAX}
    resp = await send(api, "POST", ASSET_URL.format(cid="cust-1"), body)
    assert resp.status_code == 201, resp.text
    stored = {a["id"]: a for a in (await state(api))["assets"]["items"]}
    assert stored[resp.json()["id"]]["size_bytes"] == JSON_SAFE_INT_MAX


@pytest.mark.parametrize(
    "value", ["-1", "11", "2147483648", str(2**63), str(2**64), "\u0661\u0660", "\uff11\uff10"]
)
async def test_a_lineage_depth_out_of_range_answers_422(
    api: httpx.AsyncClient, before: dict[str, Any], value: str
) -> None:
    item = before["field"]["id"]
    resp = await api.get(f"/v1/lineage/{item}", params={"max_depth": value})
    assert_refused(resp, ["query", "max_depth"])


@pytest.mark.parametrize("value", [str(2**63), "0", "\u0661\u0660"])
async def test_an_admin_list_limit_out_of_range_answers_422(
    http: httpx.AsyncClient, admin_headers: dict[str, str], value: str
) -> None:
    resp = await http.get("/admin/jobs", params={"limit": value}, headers=admin_headers)
    assert_refused(resp, ["query", "limit"])


# -- strict booleans and integers ----------------------------------------------------------

IDENTITY = {"channel": "sms", "channel_user_id": "+33600000009"}
# (method, url, valid body, key, a value of the wrong JSON type)
NOT_STRICT = [
    *[("PUT", FIELD_URL, FIELD, "verified", v) for v in (0, 1)],
    *[("PUT", FIELD_URL, FIELD, "requires_confirmation", v) for v in (0, 1)],
    ("PUT", FIELD_URL, FIELD, "verified", "true"),
    ("PUT", FIELD_URL, FIELD, "confidence", True),
    ("PUT", FIELD_URL, FIELD, "confidence", "0.5"),
    ("POST", ASSET_URL, ASSET, "size_bytes", True),
    ("POST", ASSET_URL, ASSET, "size_bytes", "1234"),
    ("POST", ASSET_URL, ASSET, "size_bytes", 1234.0),
    ("POST", "/v1/profiles/{cid}/channel-identities", IDENTITY, "verified", 1),
    ("POST", "/v1/profiles/{cid}/channel-identities", IDENTITY, "primary", 0),
    ("PUT", "/v1/profiles/{cid}/consents/marketing", {"granted": True}, "granted", 1),
    ("PUT", "/v1/profiles/{cid}/consents/marketing", {"granted": True}, "granted", "yes"),
    *[("PUT", DEFINITION_URL, DEFINITION, k, 1) for k in ("is_pii", "enabled")],
    ("PUT", DEFINITION_URL, DEFINITION, "required_verification", "true"),
    ("PUT", DEFINITION_URL, DEFINITION, "encryption_required", 0),
    *[("PUT", DEFINITION_URL, DEFINITION, "retention_days", v) for v in (True, "30", 30.0)],
    *[("PUT", DEFINITION_URL, DEFINITION, "freshness_seconds", v) for v in (True, "60", 60.0)],
    *[("PUT", REQUIREMENT_URL, {}, "collection_order", v) for v in (False, True, "1", 1.0)],
]


@pytest.mark.parametrize(("method", "url", "body", "key", "value"), NOT_STRICT)
async def test_a_scalar_of_the_wrong_json_type_answers_422_and_changes_nothing(
    api: httpx.AsyncClient,
    before: dict[str, Any],
    method: str,
    url: str,
    body: dict[str, Any],
    key: str,
    value: Any,
) -> None:
    resp = await send(api, method, url.format(cid="cust-1"), {**body, key: value})
    assert_refused(resp, ["body", key])
    assert await state(api) == before


async def test_a_new_profile_refuses_a_numeric_boolean_in_its_identities(
    api: httpx.AsyncClient, before: dict[str, Any]
) -> None:
    body = {"customer_id": "fresh", "channel_identities": [{**IDENTITY, "verified": 1}]}
    resp = await send(api, "POST", "/v1/profiles", body)
    assert_refused(resp, ["body", "channel_identities", 0, "verified"])
    assert await state(api) == before


@pytest.mark.parametrize("value", ["\u0661\u0662", "\uff11\uff12", "1\u0662"])
async def test_a_number_written_in_non_ascii_digits_is_not_a_number(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
    before: dict[str, Any],
    value: str,
) -> None:
    await set_mode(http, admin_headers, tenant_id, "strict")
    for value_type in ("number", "integer"):
        body = {"value": value, "value_type": value_type, "source": "user_provided"}
        resp = await api.put("/v1/profiles/cust-1/fields/email", json=body)
        assert assert_refused(resp, ["body", "value"])[0]["code"] == "format_error"
    assert await state(api) == before


# -- text and JSON PostgreSQL cannot store ---------------------------------------------------

SCENARIO_URL = "/v1/agents/agent-1/scenarios/onboarding"
RULE_URL = "/v1/agents/agent-1/rules/r1"
SCENARIO: dict[str, Any] = {"name": "Onboarding"}
RULE: dict[str, Any] = {"name": "Big transfers", "condition": "amount > 1000"}
# (method, url, body): a request body with text PostgreSQL cannot store somewhere in it.
UNSTORABLE = [
    ("PUT", DEFINITION_URL, {**DEFINITION, "display_name": "Birth\u0000"}),
    ("PUT", DEFINITION_URL, {**DEFINITION, "description": "\ud800"}),
    ("PUT", DEFINITION_URL, {**DEFINITION, "collection_prompt": "ask \u0000"}),
    ("PUT", DEFINITION_URL, {**DEFINITION, "extraction_examples": ["\udfff"]}),
    ("PUT", DEFINITION_URL, {**DEFINITION, "extraction_prompt_hint": "\u0000"}),
    ("PUT", DEFINITION_URL, {**DEFINITION, "verification_methods": ["otp\u0000"]}),
    ("PUT", DEFINITION_URL, {**DEFINITION, "validation_regex": "^a\u0000$"}),
    (
        "PUT",
        DEFINITION_URL,
        {"display_name": "Doc", "value_type": "json", "allowed_values": [{"k": "\u0000"}]},
    ),
    (
        "PUT",
        DEFINITION_URL,
        {"display_name": "Doc", "value_type": "json", "allowed_values": ['{"k": "\\u0000"}']},
    ),
    (
        "PUT",
        DEFINITION_URL,
        {"display_name": "Doc", "value_type": "json", "allowed_values": ['["\\ud800"]']},
    ),
    (
        "PUT",
        DEFINITION_URL,
        {"display_name": "Doc", "value_type": "json", "allowed_values": ["[1e999]"]},
    ),
    ("PUT", SCENARIO_URL, {"name": "On\u0000boarding"}),
    ("PUT", SCENARIO_URL, {**SCENARIO, "description": "\ud800"}),
    ("PUT", SCENARIO_URL, {**SCENARIO, "conditions": ["\u0000"]}),
    ("PUT", SCENARIO_URL, {**SCENARIO, "steps": [{"step_id": "s1", "description": "\udc00"}]}),
    ("PUT", RULE_URL, {**RULE, "condition": "amount > \u0000"}),
    ("PUT", RULE_URL, {**RULE, "action": "\ud800"}),
    ("PUT", REQUIREMENT_URL, {"when_condition": "country == '\u0000'"}),
    ("PUT", FIELD_URL, {**FIELD, "source_metadata": {"\ud800": 1}}),
    ("PUT", FIELD_URL, {**FIELD, "source_item_id": "x\u0000", "source_item_type": "tool"}),
    ("POST", ASSET_URL, {**ASSET, "storage_path": "a/\ud800"}),
    ("POST", ASSET_URL, {**ASSET, "derived_from_tool": "\u0000"}),
]


@pytest.mark.parametrize(("method", "url", "body"), UNSTORABLE)
async def test_text_postgresql_cannot_store_answers_422_everywhere(
    api: httpx.AsyncClient, before: dict[str, Any], method: str, url: str, body: dict[str, Any]
) -> None:
    resp = await send(api, method, url.format(cid="cust-1"), body)
    assert_refused(resp)
    assert await state(api) == before
    assert (await api.get(SCENARIO_URL)).status_code == 404
    assert (await api.get(RULE_URL)).status_code == 404


async def test_a_tenant_name_postgresql_cannot_store_answers_422(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for name in ("nul\u0000", "lone \ud800"):
        resp = await send(http, "POST", "/admin/tenants", {"name": name}, admin_headers)
        assert resp.status_code == 422, resp.text


JSON_TEXTS = ['{"k": "\\u0000"}', '["\\ud800"]', '{"\\udfff": 1}', "[1e999]", "[" * 70 + "]" * 70]


@pytest.mark.parametrize("text", JSON_TEXTS)
async def test_json_text_spelling_unstorable_data_is_refused_in_strict_mode(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
    before: dict[str, Any],
    text: str,
) -> None:
    await set_mode(http, admin_headers, tenant_id, "strict")
    body = {"value": text, "value_type": "json", "source": "user_provided"}
    resp = await send(api, "PUT", FIELD_URL.format(cid="cust-1"), body)
    assert assert_refused(resp, ["body", "value"])[0]["code"] == "format_error"
    assert await state(api) == before


@pytest.mark.parametrize("mode", ["warn", "disabled"])
@pytest.mark.parametrize("text", JSON_TEXTS)
async def test_json_text_spelling_unstorable_data_is_kept_as_the_text_it_is(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
    before: dict[str, Any],
    text: str,
    mode: str,
) -> None:
    await set_mode(http, admin_headers, tenant_id, mode)
    body = {"value": text, "value_type": "json", "source": "user_provided"}
    resp = await send(api, "PUT", FIELD_URL.format(cid="cust-1"), body)
    assert resp.status_code == 201, resp.text
    assert (await state(api))["field"]["value"] == text


# -- sizes -----------------------------------------------------------------------------------


def sized(total: int) -> str:
    """A string whose JSON form is `total` bytes."""
    return "x" * (total - 2)


@pytest.mark.parametrize(
    "change",
    [
        {"value": sized(MAX_VALUE_BYTES + 1)},
        {"value": {"text": "é" * (MAX_VALUE_BYTES // 2)}},
        {"value": [1] * (MAX_VALUE_BYTES // 2)},
        # Each metadata value is at most 256 characters (DESIGN §8); many of them add up.
        {"source_metadata": {f"note_{n}": "x" * 250 for n in range(300)}},
    ],
    ids=["string", "object", "array", "metadata"],
)
async def test_a_value_over_the_limit_answers_422_and_stores_nothing(
    api: httpx.AsyncClient, before: dict[str, Any], change: dict[str, Any]
) -> None:
    resp = await api.put(FIELD_URL.format(cid="cust-1"), json={**FIELD, **change})
    (key,) = change
    assert assert_refused(resp, ["body", key])[0]["code"] == "too_large"
    assert await state(api) == before


async def test_a_value_of_exactly_the_limit_is_stored(
    api: httpx.AsyncClient, before: dict[str, Any]
) -> None:
    body = {"value": sized(MAX_VALUE_BYTES), "source": "user_provided"}
    resp = await api.put(FIELD_URL.format(cid="cust-1"), json=body)
    assert resp.status_code == 201, resp.text
    assert (await state(api))["field"]["value"] == body["value"]


# -- OpenAPI ---------------------------------------------------------------------------------


def _integer_schemas(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "integer":
            found.append(node)
        for child in node.values():
            found += _integer_schemas(child)
    elif isinstance(node, list):
        for child in node:
            found += _integer_schemas(child)
    return found


async def test_integer_bounds_in_the_openapi_document_are_integers(
    http: httpx.AsyncClient,
) -> None:
    document = (await http.get("/openapi.json")).json()
    size = document["components"]["schemas"]["NewAsset"]["properties"]["size_bytes"]
    assert (size["minimum"], size["maximum"]) == (0, JSON_SAFE_INT_MAX)
    assert type(size["maximum"]) is int
    bounded = [s for s in _integer_schemas(document) if "maximum" in s or "minimum" in s]
    assert len(bounded) >= 5
    for schema in bounded:
        for key in ("minimum", "maximum"):
            assert type(schema.get(key, 0)) is int, schema
