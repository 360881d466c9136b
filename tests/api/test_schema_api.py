"""Schema layer over HTTP: field definitions, validation modes on field writes, retention,
manual requirements and the review of extracted ones, all tenant- and agent-scoped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api_support import assert_problem
from ccvault.domain.models import ValueType
from ccvault.domain.schema import DefinitionBody, DefinitionStatus
from ccvault.runtime import Vault
from ccvault.storage.db import Pool

AGENT = "agent-1"
CUSTOMER = "c1"
REQUIREMENT_KEYS = {
    "id",
    "field_name",
    "step_id",
    "rule_id",
    "required_level",
    "fallback_action",
    "when_condition",
    "depends_on_fields",
    "collection_order",
    "confidence",
    "needs_human_review",
    "review_status",
    "origin",
}


# -- helpers ------------------------------------------------------------------------------


def error_codes(resp: httpx.Response) -> list[str]:
    """The `code` of each item of a 422 problem's `errors`, after checking their shape."""
    body = assert_problem(resp, 422)
    for item in body["errors"]:
        assert set(item) == {"loc", "msg", "code"}
        assert isinstance(item["loc"], list)
        assert item["msg"]
    return [item["code"] for item in body["errors"]]


def warning_codes(resp: httpx.Response) -> list[str]:
    """The codes of a warn-mode write's `validation_warnings`."""
    assert resp.status_code == 201, resp.text
    warnings = resp.json()["validation_warnings"]
    for item in warnings:
        assert set(item) == {"loc", "msg", "code"}
    return [item["code"] for item in warnings]


async def set_mode(
    http: httpx.AsyncClient, admin_headers: dict[str, str], tenant_id: uuid.UUID, mode: str
) -> None:
    """Switch the tenant's validation mode (keys are trusted for 0 s in tests)."""
    resp = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"validation_mode": mode}, headers=admin_headers
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["validation_mode"] == mode


async def define(
    api: httpx.AsyncClient, name: str, agent: str = AGENT, **body: Any
) -> httpx.Response:
    """PUT a field definition (a string type with a display name unless told otherwise)."""
    doc = {"display_name": name.title(), "value_type": "string", **body}
    return await api.put(f"/v1/agents/{agent}/field-definitions/{name}", json=doc)


async def write(
    api: httpx.AsyncClient, name: str, value: Any, customer: str = CUSTOMER, **extra: Any
) -> httpx.Response:
    """PUT a field value from the user."""
    doc = {"value": value, "source": "user_provided", **extra}
    return await api.put(f"/v1/profiles/{customer}/fields/{name}", json=doc)


async def history(
    api: httpx.AsyncClient, name: str, customer: str = CUSTOMER
) -> list[dict[str, Any]]:
    """Every stored version of a field (none when the profile or field is unknown)."""
    resp = await api.get(f"/v1/profiles/{customer}/fields/{name}/history")
    if resp.status_code == 404:
        return []
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def put_requirement(
    api: httpx.AsyncClient,
    field_name: str,
    scenario: str = "checkout",
    step_id: str | None = None,
    agent: str = AGENT,
    **body: Any,
) -> httpx.Response:
    """PUT a manual requirement."""
    params = {"step_id": step_id} if step_id else {}
    return await api.put(
        f"/v1/agents/{agent}/scenarios/{scenario}/requirements/{field_name}",
        json=body,
        params=params,
    )


async def list_requirements(
    api: httpx.AsyncClient, scenario: str = "checkout", agent: str = AGENT
) -> list[dict[str, Any]]:
    """A scenario's requirements as listed by the API."""
    resp = await api.get(f"/v1/agents/{agent}/scenarios/{scenario}/requirements")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def insert_extracted(
    pool: Pool,
    tenant_id: uuid.UUID,
    field_name: str,
    *,
    scenario_id: str | None = "checkout",
    rule_id: str | None = None,
    step_id: str | None = None,
    agent_id: str = AGENT,
    required_level: str = "hard",
    fallback_action: str = "ask",
    confidence: float = 0.6,
    needs_human_review: bool = True,
    review_status: str = "pending",
    collection_order: int = 0,
) -> uuid.UUID:
    """Store a requirement as the extractor would (origin 'extracted')."""
    req_id = uuid.uuid4()
    async with pool.connection() as conn:
        await conn.execute(
            """INSERT INTO scenario_field_requirements (
                   id, tenant_id, agent_id, scenario_id, rule_id, field_name, step_id,
                   required_level, fallback_action, collection_order, confidence,
                   needs_human_review, review_status, origin)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'extracted')""",
            (
                req_id,
                tenant_id,
                agent_id,
                scenario_id,
                rule_id,
                field_name,
                step_id,
                required_level,
                fallback_action,
                collection_order,
                confidence,
                needs_human_review,
                review_status,
            ),
        )
    return req_id


async def missing(
    api: httpx.AsyncClient, customer: str = CUSTOMER, **params: str
) -> dict[str, Any]:
    """GET missing-fields for the default agent and scenario."""
    query = {"agent_id": AGENT, "scenario_id": "checkout", **params}
    resp = await api.get(f"/v1/profiles/{customer}/missing-fields", params=query)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


@pytest.fixture
async def strict(
    http: httpx.AsyncClient, admin_headers: dict[str, str], tenant_id: uuid.UUID
) -> None:
    """This test's tenant validates in strict mode."""
    await set_mode(http, admin_headers, tenant_id, "strict")


@pytest.fixture
async def disabled(
    http: httpx.AsyncClient, admin_headers: dict[str, str], tenant_id: uuid.UUID
) -> None:
    """This test's tenant does not validate."""
    await set_mode(http, admin_headers, tenant_id, "disabled")


def ts(text: str) -> datetime:
    """An API timestamp as an aware datetime."""
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None
    return parsed


# -- validation modes ---------------------------------------------------------------------


@pytest.mark.usefixtures("strict")
async def test_strict_mode_refuses_an_invalid_value_and_leaves_history_unchanged(
    api: httpx.AsyncClient,
) -> None:
    good = await write(api, "phone", "+1 415 555 2671", value_type="phone")
    assert good.status_code == 201, good.text
    assert "validation_warnings" not in good.json()

    bad = await write(api, "phone", "+123456", value_type="phone")
    assert error_codes(bad) == ["format_error"]
    assert bad.json()["errors"][0]["loc"] == ["body", "value"]

    versions = await history(api, "phone")
    assert [(v["value"], v["status"]) for v in versions] == [("+14155552671", "active")]


@pytest.mark.usefixtures("strict")
async def test_strict_mode_failure_does_not_create_the_profile(api: httpx.AsyncClient) -> None:
    bad = await write(api, "birthday", "2024-02-30", customer="newcomer", value_type="date")
    assert error_codes(bad) == ["format_error"]
    assert (await api.get("/v1/profiles/newcomer")).status_code == 404


async def test_warn_mode_stores_an_invalid_value_as_given_and_reports_warnings(
    api: httpx.AsyncClient,
) -> None:
    resp = await write(api, "phone", "+123456", value_type="phone")
    assert warning_codes(resp) == ["format_error"]
    body = resp.json()
    assert body["value"] == "+123456"
    assert body["status"] == "active"
    assert body["validation_warnings"][0]["loc"] == ["body", "value"]
    assert (await api.get(f"/v1/profiles/{CUSTOMER}/fields/phone")).json()["value"] == "+123456"


async def test_warn_mode_answers_empty_warnings_for_a_valid_value(api: httpx.AsyncClient) -> None:
    resp = await write(api, "phone", "+44 20 7946 0958", value_type="phone")
    assert warning_codes(resp) == []
    assert resp.json()["value"] == "+442079460958"


@pytest.mark.usefixtures("disabled")
async def test_disabled_mode_stores_a_bad_value_as_given_without_warnings(
    api: httpx.AsyncClient,
) -> None:
    resp = await write(api, "phone", "+123456", value_type="phone")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert "validation_warnings" not in body
    assert body["value"] == "+123456"
    assert body["value_type"] == "phone"


@pytest.mark.usefixtures("disabled")
async def test_disabled_mode_ignores_definition_rules_and_unknown_names(
    api: httpx.AsyncClient,
) -> None:
    assert (await define(api, "tier", allowed_values=["gold"])).status_code == 201
    outside = await write(api, "tier", "bronze", agent_id=AGENT)
    assert outside.status_code == 201, outside.text
    assert outside.json()["value"] == "bronze"
    unknown = await write(api, "nickname", 42, agent_id=AGENT)
    assert unknown.status_code == 201, unknown.text
    assert "validation_warnings" not in unknown.json()


@pytest.mark.parametrize(
    ("value_type", "value", "stored"),
    [
        ("number", "42", 42),
        ("number", "3.5", 3.5),
        ("integer", "1e3", 1000),
        ("boolean", "yes", True),
        ("boolean", "0", False),
        ("boolean", 1, True),
        ("json", '{"a": [1, 2]}', {"a": [1, 2]}),
        ("date", " 2024-02-29 ", "2024-02-29"),
        ("datetime", "2024-01-15T12:30:00+02:00", "2024-01-15T10:30:00Z"),
        ("datetime", "2024-01-15T10:30:00", "2024-01-15T10:30:00Z"),
        ("email", "Jane.Doe@Example.COM", "Jane.Doe@example.com"),
        ("phone", "+33 1 42 68 53 00", "+33142685300"),
        ("url", " https://example.com/x ", "https://example.com/x"),
    ],
)
@pytest.mark.usefixtures("strict")
async def test_value_is_stored_normalized_to_its_declared_type(
    api: httpx.AsyncClient, value_type: str, value: Any, stored: Any
) -> None:
    resp = await write(api, "thing", value, value_type=value_type)
    assert resp.status_code == 201, resp.text
    assert resp.json()["value"] == stored
    assert resp.json()["value_type"] == value_type
    read = await api.get(f"/v1/profiles/{CUSTOMER}/fields/thing")
    assert read.json()["value"] == stored
    assert type(read.json()["value"]) is type(stored)


@pytest.mark.parametrize(
    ("value_type", "value", "code"),
    [
        ("date", "2024-01-15T10:00:00Z", "format_error"),
        ("date", "2024-02-30", "format_error"),
        ("number", "true", "format_error"),
        ("number", True, "type_error"),
        ("integer", 2.5, "format_error"),
        ("boolean", "maybe", "format_error"),
        ("json", "{invalid json}", "format_error"),
        ("phone", "+123456", "format_error"),
        ("email", "not-an-email", "format_error"),
        ("string", 5, "type_error"),
    ],
)
@pytest.mark.usefixtures("strict")
async def test_strict_mode_refuses_a_value_not_of_its_declared_type(
    api: httpx.AsyncClient, value_type: str, value: Any, code: str
) -> None:
    assert error_codes(await write(api, "thing", value, value_type=value_type)) == [code]
    assert await history(api, "thing") == []


@pytest.mark.parametrize(
    ("value", "value_type"),
    [("x", "string"), (5, "number"), (2.5, "number"), (True, "boolean"), ({"a": 1}, "json")],
)
@pytest.mark.usefixtures("strict")
async def test_type_follows_the_json_value_without_value_type_or_definition(
    api: httpx.AsyncClient, value: Any, value_type: str
) -> None:
    resp = await write(api, "thing", value)
    assert resp.status_code == 201, resp.text
    assert resp.json()["value_type"] == value_type
    assert resp.json()["value"] == value


@pytest.mark.usefixtures("strict")
async def test_nan_json_text_is_refused_not_a_server_error(api: httpx.AsyncClient) -> None:
    # json.loads("NaN") is Python's extension, not JSON; PostgreSQL's jsonb refuses it.
    assert error_codes(await write(api, "blob", "NaN", value_type="json")) == ["format_error"]


async def test_warn_mode_write_of_nan_json_text_is_not_a_server_error(
    api: httpx.AsyncClient,
) -> None:
    resp = await write(api, "blob", "NaN", value_type="json")
    assert resp.status_code == 201, resp.text
    assert warning_codes(resp) == ["format_error"]


@pytest.mark.usefixtures("strict")
async def test_numeric_string_over_python_digit_limit_is_not_a_server_error(
    api: httpx.AsyncClient,
) -> None:
    resp = await write(api, "amount", "0" * 4400 + "1", value_type="number")
    assert resp.status_code in (201, 422), resp.text
    if resp.status_code == 201:
        assert resp.json()["value"] == 1


# -- definition rules on writes -----------------------------------------------------------


@pytest.mark.usefixtures("strict")
async def test_catastrophic_regex_on_a_50kb_value_returns_regex_error(
    api: httpx.AsyncClient,
) -> None:
    assert (await define(api, "code", validation_regex="(a+)+$")).status_code == 201
    resp = await write(api, "code", "a" * 50_000 + "!", agent_id=AGENT)
    assert error_codes(resp) == ["regex_error"]


@pytest.mark.usefixtures("strict")
async def test_definition_regex_must_match_the_whole_value(api: httpx.AsyncClient) -> None:
    assert (await define(api, "ref", validation_regex=r"[A-Z]{2}\d{3}")).status_code == 201
    for partial in ("AB123x", "xAB123", "AB12"):
        assert error_codes(await write(api, "ref", partial, agent_id=AGENT)) == ["regex_error"]
    ok = await write(api, "ref", "AB123", agent_id=AGENT)
    assert ok.status_code == 201, ok.text
    assert [v["value"] for v in await history(api, "ref")] == ["AB123"]


@pytest.mark.usefixtures("strict")
async def test_strict_mode_refuses_a_value_outside_allowed_values(api: httpx.AsyncClient) -> None:
    assert (await define(api, "tier", allowed_values=["gold", "silver"])).status_code == 201
    assert error_codes(await write(api, "tier", "bronze", agent_id=AGENT)) == [
        "allowed_values_error"
    ]
    assert (await write(api, "tier", "gold", agent_id=AGENT)).status_code == 201


async def test_warn_mode_stores_a_value_outside_allowed_values_with_a_warning(
    api: httpx.AsyncClient,
) -> None:
    assert (await define(api, "tier", allowed_values=["gold", "silver"])).status_code == 201
    resp = await write(api, "tier", "bronze", agent_id=AGENT)
    assert warning_codes(resp) == ["allowed_values_error"]
    assert resp.json()["value"] == "bronze"


@pytest.mark.usefixtures("strict")
async def test_strict_mode_refuses_an_unknown_field_name_for_the_agent(
    api: httpx.AsyncClient,
) -> None:
    resp = await write(api, "nickname", "Bob", agent_id=AGENT)
    assert error_codes(resp) == ["unknown_field"]
    assert await history(api, "nickname") == []


async def test_warn_mode_warns_about_an_unknown_field_name_and_stores_it(
    api: httpx.AsyncClient,
) -> None:
    resp = await write(api, "nickname", "Bob", agent_id=AGENT)
    assert warning_codes(resp) == ["unknown_field"]
    assert resp.json()["value"] == "Bob"


@pytest.mark.usefixtures("strict")
async def test_unknown_field_name_without_agent_id_is_not_checked_against_definitions(
    api: httpx.AsyncClient,
) -> None:
    resp = await write(api, "nickname", "Bob")
    assert resp.status_code == 201, resp.text


@pytest.mark.usefixtures("strict")
async def test_definition_value_type_wins_over_the_request(api: httpx.AsyncClient) -> None:
    created = await define(api, "age", value_type="integer")
    assert created.status_code == 201
    resp = await write(api, "age", "42", value_type="string", agent_id=AGENT)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["value"] == 42
    assert body["value_type"] == "integer"
    assert body["field_definition_id"] == created.json()["id"]
    assert error_codes(await write(api, "age", "old", value_type="string", agent_id=AGENT)) == [
        "format_error"
    ]


@pytest.mark.usefixtures("strict")
async def test_disabled_definition_counts_as_absent_for_validation(
    api: httpx.AsyncClient,
) -> None:
    assert (await define(api, "age", value_type="integer", enabled=False)).status_code == 201
    resp = await write(api, "age", "old", agent_id=AGENT)
    assert error_codes(resp) == ["unknown_field"]


async def test_disabled_definition_rules_are_not_applied_in_warn_mode(
    api: httpx.AsyncClient,
) -> None:
    assert (await define(api, "age", value_type="integer", enabled=False)).status_code == 201
    resp = await write(api, "age", "42", agent_id=AGENT)
    assert warning_codes(resp) == ["unknown_field"]
    assert resp.json()["value"] == "42"
    assert resp.json()["value_type"] == "string"
    assert resp.json()["field_definition_id"] is None


@pytest.mark.usefixtures("strict")
async def test_another_agents_definition_is_not_used(api: httpx.AsyncClient) -> None:
    assert (await define(api, "age", agent="agent-2", value_type="integer")).status_code == 201
    resp = await write(api, "age", "42", agent_id=AGENT)
    assert error_codes(resp) == ["unknown_field"]
    other = await write(api, "age", "42", agent_id="agent-2")
    assert other.status_code == 201, other.text
    assert other.json()["value"] == 42


# -- retention ----------------------------------------------------------------------------


async def test_retention_days_dates_expires_at_from_collected_at(api: httpx.AsyncClient) -> None:
    assert (await define(api, "otp", retention_days=30)).status_code == 201
    # Exactly collected_at + 30 days, on every write: a second clock reading for expires_at
    # differs from collected_at by a microsecond on a few percent of writes.
    gaps = set()
    for n in range(100):
        resp = await write(api, "otp", f"{n:06d}", customer=f"c{n % 10}", agent_id=AGENT)
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert body["expires_at"] is not None
        gaps.add(ts(body["expires_at"]) - ts(body["collected_at"]))
    assert gaps == {timedelta(days=30)}


async def test_retention_days_does_not_override_an_explicit_expires_at(
    api: httpx.AsyncClient,
) -> None:
    assert (await define(api, "otp", retention_days=30)).status_code == 201
    when = datetime.now(UTC) + timedelta(days=2)
    resp = await write(api, "otp", "123456", agent_id=AGENT, expires_at=when.isoformat())
    assert resp.status_code == 201, resp.text
    assert ts(resp.json()["expires_at"]) == when


async def test_retention_applies_only_to_writes_naming_the_agent(api: httpx.AsyncClient) -> None:
    assert (await define(api, "otp", retention_days=30)).status_code == 201
    resp = await write(api, "otp", "123456")
    assert resp.status_code == 201, resp.text
    assert resp.json()["expires_at"] is None
    assert resp.json()["field_definition_id"] is None


# -- definitions API ----------------------------------------------------------------------


async def test_definition_put_creates_with_201_and_replaces_with_200(
    api: httpx.AsyncClient,
) -> None:
    created = await define(
        api,
        "email",
        display_name="E-mail",
        value_type="email",
        collection_prompt="What is your email?",
        is_pii=True,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "email"
    assert body["agent_id"] == AGENT
    assert body["status"] == "active"
    assert body["value_type"] == "email"
    assert body["is_pii"] is True
    assert body["enabled"] is True

    replaced = await define(api, "email", display_name="Email address", value_type="email")
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] == body["id"]
    assert replaced.json()["display_name"] == "Email address"
    assert replaced.json()["collection_prompt"] is None
    assert replaced.json()["is_pii"] is False

    got = await api.get(f"/v1/agents/{AGENT}/field-definitions/email")
    assert got.status_code == 200
    assert got.json()["display_name"] == "Email address"


async def test_definition_list_holds_the_agents_active_definitions_by_name(
    api: httpx.AsyncClient,
) -> None:
    for name in ("zip", "city", "age"):
        assert (await define(api, name)).status_code == 201
    assert (await define(api, "other", agent="agent-2")).status_code == 201
    resp = await api.get(f"/v1/agents/{AGENT}/field-definitions")
    assert resp.status_code == 200
    assert [d["name"] for d in resp.json()["items"]] == ["age", "city", "zip"]


async def test_definition_stores_allowed_values_normalized(api: httpx.AsyncClient) -> None:
    resp = await define(api, "size", value_type="integer", allowed_values=["1", 2, 3.0])
    assert resp.status_code == 201, resp.text
    assert resp.json()["allowed_values"] == [1, 2, 3]


async def test_definition_with_invalid_regex_is_a_config_error(api: httpx.AsyncClient) -> None:
    resp = await define(api, "ref", validation_regex="([A-Z")
    assert error_codes(resp) == ["config_error"]
    assert (await api.get(f"/v1/agents/{AGENT}/field-definitions/ref")).status_code == 404


async def test_definition_allowed_values_not_of_its_type_are_refused(
    api: httpx.AsyncClient,
) -> None:
    resp = await define(api, "age", value_type="integer", allowed_values=[1, "many"])
    assert error_codes(resp) == ["config_error"]
    resp = await define(api, "born", value_type="date", allowed_values=["2024-02-30"])
    assert error_codes(resp) == ["config_error"]


async def test_suggested_definition_is_listed_apart_and_a_put_makes_it_active(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    body = DefinitionBody(display_name="Loyalty id", value_type=ValueType.string)
    await vault.schema.put_definition(
        tenant_id, AGENT, "loyalty_id", body, status=DefinitionStatus.suggested
    )
    base = f"/v1/agents/{AGENT}/field-definitions"
    suggested = await api.get(base, params={"status": "suggested"})
    assert [d["name"] for d in suggested.json()["items"]] == ["loyalty_id"]
    assert suggested.json()["items"][0]["status"] == "suggested"
    assert (await api.get(base)).json()["items"] == []
    assert (await api.get(f"{base}/loyalty_id")).json()["status"] == "suggested"

    put = await define(api, "loyalty_id", display_name="Loyalty number")
    assert put.status_code == 200, put.text
    assert put.json()["status"] == "active"
    assert (await api.get(base, params={"status": "suggested"})).json()["items"] == []
    assert [d["name"] for d in (await api.get(base)).json()["items"]] == ["loyalty_id"]


async def test_definition_delete_answers_204_then_404(api: httpx.AsyncClient) -> None:
    assert (await define(api, "email")).status_code == 201
    url = f"/v1/agents/{AGENT}/field-definitions/email"
    assert (await api.delete(url)).status_code == 204
    assert_problem(await api.get(url), 404)
    assert_problem(await api.delete(url), 404)
    assert (await api.get(f"/v1/agents/{AGENT}/field-definitions")).json()["items"] == []
    assert (await define(api, "email")).status_code == 201


@pytest.mark.usefixtures("strict")
async def test_deleted_definition_no_longer_validates_writes(api: httpx.AsyncClient) -> None:
    assert (await define(api, "age", value_type="integer")).status_code == 201
    assert (await api.delete(f"/v1/agents/{AGENT}/field-definitions/age")).status_code == 204
    assert error_codes(await write(api, "age", "42", agent_id=AGENT)) == ["unknown_field"]


async def test_unknown_definition_answers_404(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get(f"/v1/agents/{AGENT}/field-definitions/nothing"), 404)


async def test_definitions_are_invisible_to_another_tenant(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    assert (await define(api, "email")).status_code == 201
    url = f"/v1/agents/{AGENT}/field-definitions/email"
    assert_problem(await other_api.get(url), 404)
    assert_problem(await other_api.delete(url), 404)
    assert (await other_api.get(f"/v1/agents/{AGENT}/field-definitions")).json()["items"] == []
    assert (await define(other_api, "email", display_name="Theirs")).status_code == 201
    assert (await api.get(url)).json()["display_name"] == "Email"


async def test_definitions_are_scoped_to_their_agent(api: httpx.AsyncClient) -> None:
    assert (await define(api, "email")).status_code == 201
    assert_problem(await api.get("/v1/agents/agent-2/field-definitions/email"), 404)
    assert (await api.get("/v1/agents/agent-2/field-definitions")).json()["items"] == []


async def test_another_tenants_definition_does_not_validate_our_writes(
    api: httpx.AsyncClient,
    other_api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
) -> None:
    assert (await define(other_api, "age", value_type="integer")).status_code == 201
    await set_mode(http, admin_headers, tenant_id, "strict")
    assert error_codes(await write(api, "age", "42", agent_id=AGENT)) == ["unknown_field"]


# -- requirements API ---------------------------------------------------------------------


async def test_requirement_put_creates_with_201_and_replaces_with_200(
    api: httpx.AsyncClient,
) -> None:
    created = await put_requirement(api, "email")
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == REQUIREMENT_KEYS
    assert body["field_name"] == "email"
    assert body["step_id"] is None
    assert body["required_level"] == "hard"
    assert body["fallback_action"] == "ask"
    assert body["origin"] == "manual"
    assert body["review_status"] == "none"
    assert body["needs_human_review"] is False
    assert body["depends_on_fields"] == []

    replaced = await put_requirement(
        api,
        "email",
        required_level="soft",
        fallback_action="skip",
        when_condition='country == "FR"',
        depends_on_fields=["country"],
        collection_order=4,
        rule_id="r-1",
    )
    assert replaced.status_code == 200, replaced.text
    again = replaced.json()
    assert again["id"] == body["id"]
    assert (again["required_level"], again["fallback_action"]) == ("soft", "skip")
    assert again["when_condition"] == 'country == "FR"'
    assert again["depends_on_fields"] == ["country"]
    assert again["collection_order"] == 4
    assert again["rule_id"] == "r-1"
    assert [r["id"] for r in await list_requirements(api)] == [body["id"]]


async def test_requirements_list_by_collection_order_then_field_name(
    api: httpx.AsyncClient,
) -> None:
    for name, order in (("zip", 2), ("city", 2), ("email", 1), ("name", 0), ("age", 3)):
        assert (await put_requirement(api, name, collection_order=order)).status_code == 201
    items = await list_requirements(api)
    assert [r["field_name"] for r in items] == ["name", "email", "city", "zip", "age"]
    for item in items:
        assert set(item) == REQUIREMENT_KEYS


async def test_requirement_step_id_keys_a_separate_requirement(api: httpx.AsyncClient) -> None:
    wide = await put_requirement(api, "email", collection_order=1)
    step = await put_requirement(api, "email", step_id="s1", collection_order=1)
    assert wide.status_code == 201
    assert step.status_code == 201
    assert step.json()["step_id"] == "s1"
    assert {(r["field_name"], r["step_id"]) for r in await list_requirements(api)} == {
        ("email", None),
        ("email", "s1"),
    }
    url = f"/v1/agents/{AGENT}/scenarios/checkout/requirements/email"
    assert (await api.delete(url, params={"step_id": "s1"})).status_code == 204
    assert [(r["field_name"], r["step_id"]) for r in await list_requirements(api)] == [
        ("email", None)
    ]


async def test_requirement_delete_answers_204_then_404(api: httpx.AsyncClient) -> None:
    assert (await put_requirement(api, "email")).status_code == 201
    url = f"/v1/agents/{AGENT}/scenarios/checkout/requirements/email"
    assert_problem(await api.delete(url, params={"step_id": "s9"}), 404)
    assert (await api.delete(url)).status_code == 204
    assert_problem(await api.delete(url), 404)
    assert await list_requirements(api) == []


@pytest.mark.parametrize(
    "condition", ["__import__('os')", "a.b", "x = 1", "len(name) > 3", "amount +"]
)
async def test_requirement_with_invalid_when_condition_is_refused(
    api: httpx.AsyncClient, condition: str
) -> None:
    resp = await put_requirement(api, "email", when_condition=condition)
    assert error_codes(resp)
    assert await list_requirements(api) == []


async def test_requirement_for_a_field_without_definition_is_accepted(
    api: httpx.AsyncClient,
) -> None:
    resp = await put_requirement(api, "not_defined_yet")
    assert resp.status_code == 201, resp.text


async def test_unknown_scenario_lists_no_requirements(api: httpx.AsyncClient) -> None:
    assert await list_requirements(api, scenario="never-stored") == []


async def test_requirements_are_scoped_to_their_agent_and_scenario(
    api: httpx.AsyncClient,
) -> None:
    assert (await put_requirement(api, "email")).status_code == 201
    assert await list_requirements(api, agent="agent-2") == []
    assert await list_requirements(api, scenario="returns") == []


async def test_requirements_are_invisible_to_another_tenant(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    assert (await put_requirement(api, "email")).status_code == 201
    assert await list_requirements(other_api) == []
    url = f"/v1/agents/{AGENT}/scenarios/checkout/requirements/email"
    assert_problem(await other_api.delete(url), 404)
    assert len(await list_requirements(api)) == 1


# -- review -------------------------------------------------------------------------------


async def test_extracted_requirement_is_listed_pending_review(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    req_id = await insert_extracted(pool, tenant_id, "email", confidence=0.6)
    [item] = await list_requirements(api)
    assert item["id"] == str(req_id)
    assert item["origin"] == "extracted"
    assert item["review_status"] == "pending"
    assert item["needs_human_review"] is True
    assert item["confidence"] == 0.6


async def test_approving_a_requirement_clears_needs_human_review(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    req_id = await insert_extracted(pool, tenant_id, "email")
    resp = await api.post(
        f"/v1/agents/{AGENT}/requirements/{req_id}/review", json={"decision": "approve"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == str(req_id)
    assert resp.json()["review_status"] == "approved"
    assert resp.json()["needs_human_review"] is False
    [item] = await list_requirements(api)
    assert (item["review_status"], item["needs_human_review"]) == ("approved", False)
    assert (await missing(api))["missing"][0]["field_name"] == "email"


async def test_rejected_requirement_stays_listed_but_is_not_enforced(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    req_id = await insert_extracted(pool, tenant_id, "email", fallback_action="block")
    before = await missing(api)
    assert before["can_proceed"] is False
    assert [m["field_name"] for m in before["missing"]] == ["email"]

    resp = await api.post(
        f"/v1/agents/{AGENT}/requirements/{req_id}/review", json={"decision": "reject"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["review_status"] == "rejected"
    [item] = await list_requirements(api)
    assert item["id"] == str(req_id)
    assert item["review_status"] == "rejected"
    assert await missing(api) == {"can_proceed": True, "missing": []}


async def test_review_of_an_unknown_requirement_answers_404(api: httpx.AsyncClient) -> None:
    resp = await api.post(
        f"/v1/agents/{AGENT}/requirements/{uuid.uuid4()}/review", json={"decision": "approve"}
    )
    assert_problem(resp, 404)


async def test_review_with_an_unknown_decision_is_refused(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    req_id = await insert_extracted(pool, tenant_id, "email")
    resp = await api.post(
        f"/v1/agents/{AGENT}/requirements/{req_id}/review", json={"decision": "maybe"}
    )
    assert_problem(resp, 422)
    assert (await list_requirements(api))[0]["review_status"] == "pending"


async def test_review_is_scoped_to_the_tenant_and_agent(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    req_id = await insert_extracted(pool, tenant_id, "email")
    body = {"decision": "reject"}
    assert_problem(
        await other_api.post(f"/v1/agents/{AGENT}/requirements/{req_id}/review", json=body), 404
    )
    assert_problem(
        await api.post(f"/v1/agents/agent-2/requirements/{req_id}/review", json=body), 404
    )
    assert (await list_requirements(api))[0]["review_status"] == "pending"


async def test_manual_requirement_hides_an_extracted_one_for_the_same_field_and_step(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    await insert_extracted(pool, tenant_id, "email", fallback_action="block")
    manual = await put_requirement(api, "email", required_level="soft", fallback_action="skip")
    assert manual.status_code == 201, manual.text
    result = await missing(api)
    assert result["can_proceed"] is True
    assert [(m["field_name"], m["required_level"]) for m in result["missing"]] == [
        ("email", "soft")
    ]


async def test_manual_requirement_does_not_hide_an_extracted_one_for_another_step(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    await insert_extracted(pool, tenant_id, "email", step_id="s2", fallback_action="block")
    manual = await put_requirement(
        api, "email", step_id="s1", required_level="soft", fallback_action="skip"
    )
    assert manual.status_code == 201, manual.text
    result = await missing(api, step_id="s2")
    assert result["can_proceed"] is False
    assert [(m["field_name"], m["required_level"]) for m in result["missing"]] == [
        ("email", "hard")
    ]
