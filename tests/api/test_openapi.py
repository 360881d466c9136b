"""The published OpenAPI document declares the error answers each route can give."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from answers_seen import AnswerRecorder
from ccvault.domain.writes import NewAsset

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


# -- the document as a whole ---------------------------------------------------------------

# The operationIds generated clients were built with: renaming a route function must not
# change them silently.
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("post", "/v1/profiles"): "createProfile",
    ("get", "/v1/profiles/{customer_id}"): "getProfile",
    ("get", "/v1/profiles/by-channel/{channel}/{channel_user_id}"): "getProfileByChannel",
    ("post", "/v1/profiles/{customer_id}/channel-identities"): "linkIdentity",
    ("put", "/v1/profiles/{customer_id}/consents/{consent_type}"): "putConsent",
    ("post", "/v1/profiles/{customer_id}/merge"): "mergeProfiles",
    ("put", "/v1/profiles/{customer_id}/fields/{name}"): "putField",
    ("get", "/v1/profiles/{customer_id}/fields/{name}"): "getField",
    ("delete", "/v1/profiles/{customer_id}/fields/{name}"): "deleteField",
    ("get", "/v1/profiles/{customer_id}/fields/{name}/history"): "listFieldHistory",
    ("post", "/v1/profiles/{customer_id}/assets"): "createAsset",
    ("get", "/v1/profiles/{customer_id}/assets"): "listAssets",
    ("get", "/v1/assets/{asset_id}"): "getAsset",
    ("delete", "/v1/assets/{asset_id}"): "deleteAsset",
    ("get", "/v1/lineage/{item_id}"): "getLineage",
    ("put", "/v1/agents/{agent_id}/field-definitions/{name}"): "putDefinition",
    ("get", "/v1/agents/{agent_id}/field-definitions/{name}"): "getDefinition",
    ("delete", "/v1/agents/{agent_id}/field-definitions/{name}"): "deleteDefinition",
    ("get", "/v1/agents/{agent_id}/field-definitions"): "listDefinitions",
    ("get", "/v1/agents/{agent_id}/scenarios/{scenario_id}/requirements"): "listRequirements",
    ("put", "/v1/agents/{agent_id}/scenarios/{scenario_id}/requirements/{field_name}"): (
        "putRequirement"
    ),
    ("delete", "/v1/agents/{agent_id}/scenarios/{scenario_id}/requirements/{field_name}"): (
        "deleteRequirement"
    ),
    ("post", "/v1/agents/{agent_id}/requirements/{requirement_id}/review"): "reviewRequirement",
    ("put", "/v1/agents/{agent_id}/scenarios/{scenario_id}"): "putScenario",
    ("get", "/v1/agents/{agent_id}/scenarios/{scenario_id}"): "getScenario",
    ("delete", "/v1/agents/{agent_id}/scenarios/{scenario_id}"): "deleteScenario",
    ("put", "/v1/agents/{agent_id}/rules/{rule_id}"): "putRule",
    ("get", "/v1/agents/{agent_id}/rules/{rule_id}"): "getRule",
    ("delete", "/v1/agents/{agent_id}/rules/{rule_id}"): "deleteRule",
    ("get", "/v1/profiles/{customer_id}/missing-fields"): "getMissingFields",
    ("post", "/v1/profiles/{customer_id}/missing-fields"): "postMissingFields",
    ("post", "/admin/tenants"): "createTenant",
    ("patch", "/admin/tenants/{tenant_id}"): "patchTenant",
    ("post", "/admin/profiles/expire-stale"): "expireStale",
    ("post", "/admin/profiles/detect-orphans"): "detectOrphans",
    ("get", "/admin/jobs"): "listJobs",
    ("get", "/healthz"): "getHealth",
    ("get", "/readyz"): "getReadiness",
    ("get", "/metrics"): "getMetrics",
}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) for every operation of the document."""
    return [
        (method, path, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if method in {"get", "put", "post", "patch", "delete"}
    ]


def component(document: dict[str, Any], ref: str) -> dict[str, Any]:
    """The component a local `$ref` names."""
    assert ref.startswith("#/components/schemas/"), ref
    schema: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def test_the_document_is_valid_openapi(openapi: dict[str, Any]) -> None:
    validate(openapi)


def test_operation_ids_are_short_unique_camel_case(openapi: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(openapi)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert [i for i in ids if not re.fullmatch(r"[a-z][a-zA-Z]{2,39}", i)] == []


def test_published_operation_ids_do_not_change(openapi: dict[str, Any]) -> None:
    published = {(m, p): op["operationId"] for m, p, op in operations(openapi)}
    assert {key: published.get(key) for key in OPERATION_IDS} == OPERATION_IDS


def test_every_error_refers_to_the_one_problem_schema(openapi: dict[str, Any]) -> None:
    inlined = [
        f"{method.upper()} {path} {status}"
        for method, path, status, response in error_responses(openapi)
        if response["content"][PROBLEM_JSON]["schema"].get("$ref")
        != "#/components/schemas/" + ("ValidationProblem" if status == "422" else "Problem")
    ]
    assert inlined == []
    problem = openapi["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    validation = openapi["components"]["schemas"]["ValidationProblem"]
    assert "errors" in validation["required"]
    item = component(openapi, validation["properties"]["errors"]["items"]["$ref"])
    assert set(item["required"]) == {"loc", "msg", "code"}


def test_operations_with_a_body_declare_400_413_and_422(openapi: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path} {status}"
        for method, path, op in operations(openapi)
        if "requestBody" in op
        for status in ("400", "413", "422")
        if status not in op["responses"]
    ]
    assert missing == []


def test_keyed_operations_declare_503_with_retry_after(openapi: dict[str, Any]) -> None:
    keyed = [(m, p, op) for m, p, op in operations(openapi) if op.get("security")]
    assert len(keyed) >= 35
    for method, path, op in keyed:
        unavailable = op["responses"].get("503")
        assert unavailable is not None, f"{method.upper()} {path}"
        assert unavailable["headers"]["Retry-After"]["required"] is True
        assert op["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True


def test_keys_are_declared_as_bearer_schemes_per_route_family(openapi: dict[str, Any]) -> None:
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["tenantKey"] == {**schemes["tenantKey"], "type": "http", "scheme": "bearer"}
    assert schemes["adminKey"] == {**schemes["adminKey"], "type": "http", "scheme": "bearer"}
    wrong = []
    for method, path, op in operations(openapi):
        if path.startswith("/v1/"):
            expected: list[dict[str, list[str]]] | None = [{"tenantKey": []}]
        elif path.startswith("/admin/"):
            expected = [{"adminKey": []}]
        else:
            expected = None
        if op.get("security") != expected:
            wrong.append(f"{method.upper()} {path}: {op.get('security')}")
    assert wrong == []


def schema_properties(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(Component.property, schema) for every property of every component, nested too."""
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(where: str, node: Any) -> None:
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                found.append((f"{where}.{name}", prop))
                walk(f"{where}.{name}", prop)
            for key in ("items", "additionalProperties"):
                walk(where, node.get(key))
            for key in ("anyOf", "oneOf", "allOf"):
                for branch in node.get(key, ()):
                    walk(where, branch)

    for name, schema in document["components"]["schemas"].items():
        walk(name, schema)
    return found


def test_every_schema_property_has_a_description(openapi: dict[str, Any]) -> None:
    properties = schema_properties(openapi)
    assert len(properties) > 200
    assert [where for where, prop in properties if not prop.get("description")] == []


def test_every_parameter_has_a_description(openapi: dict[str, Any]) -> None:
    undescribed = [
        f"{method.upper()} {path} {param['name']}"
        for method, path, op in operations(openapi)
        for param in op.get("parameters", ())
        if not param.get("description")
    ]
    assert undescribed == []


def test_bodies_and_main_answers_have_examples_that_fit_their_schema(
    openapi: dict[str, Any],
) -> None:
    schemas = openapi["components"]["schemas"]
    with_examples = {name for name, schema in schemas.items() if schema.get("examples")}
    bodies = {
        media["schema"]["$ref"].rsplit("/", 1)[1]
        for _, _, op in operations(openapi)
        if "requestBody" in op
        # JSON bodies, and the NDJSON import's lines
        for media in op["requestBody"]["content"].values()
    }
    assert bodies <= with_examples
    assert {"Profile", "ProfileField", "WrittenField", "ProfileAsset", "Problem"} <= with_examples
    for name in with_examples:
        validator = Draft202012Validator(
            {"$ref": f"#/components/schemas/{name}", "components": openapi["components"]},
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        for example in schemas[name]["examples"]:
            errors = [e.message for e in validator.iter_errors(example)]
            assert errors == [], name


def test_error_examples_fit_their_schema_and_status(openapi: dict[str, Any]) -> None:
    checked = 0
    for method, path, status, response in error_responses(openapi):
        media = response["content"][PROBLEM_JSON]
        validator = Draft202012Validator(
            {**media["schema"], "components": openapi["components"]},
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        assert [e.message for e in validator.iter_errors(media["example"])] == [], (method, path)
        assert media["example"]["status"] == int(status)
        checked += 1
    assert checked > 100


def test_integer_bounds_are_published_as_integers(openapi: dict[str, Any]) -> None:
    size = openapi["components"]["schemas"]["NewAsset"]["properties"]["size_bytes"]
    declared = NewAsset.model_json_schema()["properties"]["size_bytes"]["maximum"]
    assert size["maximum"] == declared
    assert isinstance(size["maximum"], int)
    floats = [
        where
        for where, prop in schema_properties(openapi)
        if prop.get("type") == "integer"
        and any(isinstance(prop.get(k), float) for k in ("minimum", "maximum"))
    ]
    assert floats == []


def test_list_answers_have_readable_component_names(openapi: dict[str, Any]) -> None:
    names = set(openapi["components"]["schemas"])
    assert {"ProfileFieldList", "ProfileAssetList", "RequirementList"} <= names
    assert [n for n in names if not re.fullmatch(r"[A-Z][A-Za-z]+", n)] == []


async def test_redoc_is_not_served(http: httpx.AsyncClient) -> None:
    resp = await http.get("/redoc")
    assert resp.status_code == 404


def test_the_answer_recorder_names_undeclared_answers(openapi: dict[str, Any]) -> None:
    recorder = AnswerRecorder(app=None)  # type: ignore[arg-type]
    recorder.seen = {
        ("GET", "/v1/profiles/cust-1", 200),
        ("GET", "/v1/profiles/cust-1", 418),
        ("PUT", "/v1/profiles/by-channel/fields/email", 201),  # routing picks the field PUT
        ("PUT", "/v1/profiles/by-channel/fields/email", 409),
        ("DELETE", "/v1/profiles/cust-1", 405),  # no such operation: not judged here
        ("GET", "/docs", 200),
    }
    assert recorder.undeclared(openapi) == [
        "GET /v1/profiles/{customer_id} 418",
        "PUT /v1/profiles/{customer_id}/fields/{name} 409",
    ]
