"""The published OpenAPI document: what FastAPI derives from the routes, finished in one
place so every operation reads alike to /docs and to generated clients.

Routes declare what is theirs (their model, their 404/409/422); this module adds what
all of them share: the Problem schemas, 400 and 413 for bodies, 503 for everything that
needs the database, a description for each parameter name, examples, and short
operationIds.
"""

from __future__ import annotations

import re
from typing import Any, Final

from fastapi import FastAPI
from fastapi.routing import APIRoute

from ccvault.api.examples import EXAMPLES
from ccvault.api.problems import SCHEMAS, Problem, ValidationProblem, problem_response
from ccvault.domain.answers import ValidationIssue
from ccvault.domain.imports import ImportLine

DESCRIPTION: Final = """\
Verified customer facts for AI agents, with lineage and audit history.

**Keys.** Send `Authorization: Bearer <key>`: a tenant key for `/v1` (it sees only its
tenant; another tenant's ids answer 404), the admin key (`CCV_ADMIN_API_KEY`) for
`/admin`. `/healthz`, `/readyz` and `/metrics` need none.

**Errors** are `application/problem+json` (RFC 9457): `type`, `title`, `status`,
`detail`, and for 422 `errors: [{loc, msg, code}]`. A body that is not JSON answers 400,
one over the size limit 413, and any call that needs the database answers 503 with
`Retry-After` while it is unreachable.

**Methods.** A method a path does not support answers 405 with `Allow` listing every
method it does; `OPTIONS` answers 204 with the same `Allow`. Paths are exact: a trailing
slash is another path (404), never a redirect.

**Lists** answer `{"items": [...]}`.
"""

TAGS: Final = [
    {"name": "profiles", "description": "One profile per customer: identities, consents, merge."},
    {"name": "fields", "description": "Typed values with provenance; every version is kept."},
    {"name": "assets", "description": "Document references, with the same lifecycle as fields."},
    {"name": "lineage", "description": "Where an item came from, or what derives from it."},
    {"name": "schema", "description": "Field definitions, requirements and missing-fields."},
    {"name": "scenarios", "description": "Scenario and rule texts; requirements are extracted."},
    {"name": "privacy", "description": "Erasure and export of everything held about a customer."},
    {"name": "events", "description": "The change feed, in commit order, and signed webhooks."},
    {"name": "admin", "description": "Operator routes: tenants, sweeps, jobs (admin key)."},
    {"name": "operations", "description": "Liveness, readiness and metrics (no key)."},
]

# Route functions whose name is not a verb and a noun get theirs here.
_NAMED: Final = {
    "field_history": "listFieldHistory",
    "healthz": "getHealth",
    "readyz": "getReadiness",
    "metrics": "getMetrics",
}

# Each path or query parameter name means one thing across the API.
PARAMETERS: Final = {
    "customer_id": "The caller's id for the customer (an alias left by a merge works too).",
    "agent_id": "The caller's id for the agent whose schema this is.",
    "scenario_id": "The caller's id for the scenario.",
    "rule_id": "The caller's id for the rule.",
    "step_id": "A step of the scenario; absent means scenario-wide.",
    "name": "The field name.",
    "field_name": "The field name the requirement is about.",
    "consent_type": "The kind of consent, e.g. `marketing_email`.",
    "channel": "The channel, e.g. `whatsapp` or `phone`.",
    "channel_user_id": "The customer's handle on that channel.",
    "asset_id": "The id the vault gave the asset version.",
    "item_id": "The id of a field or asset version.",
    "requirement_id": "The id the vault gave the requirement.",
    "tenant_id": "The tenant's id.",
    "include": "`history` adds every version, whatever its status, deleted ones included.",
    "direction": "`ancestors` (what the item came from) or `descendants` (what derives from it).",
    "max_depth": "How many steps to follow from the item (0 returns just the item).",
    "status": "`active` definitions, or the extractor's `suggested` ones.",
    "limit": "How many items to answer at most.",
    "cursor": "Where the previous page ended: its `next_cursor` (opaque, signed; others are 422).",
    "q": "A prefix of `customer_id`.",
    "key_id": "The id of the tenant's API key.",
    "purpose": "What the read is for (e.g. `onboarding`): fields whose definitions do not "
    "allow it, or need a consent not granted, are left out (`withheld_fields`).",
    "after": "Where the previous page of the feed ended: its `next_cursor` (opaque, signed).",
    "webhook_id": "The id the vault gave the webhook.",
    "types": "Event types to keep, comma-separated (e.g. `field.written,field.expired`).",
    "format": "`json` (the default) or `text`: compact lines for a prompt, one fact a line.",
}

_LIST_COMPONENT = re.compile(r"(ItemList|Page)_(\w+)_")
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def operation_id(route: APIRoute) -> str:
    """The route function's name in camelCase (`put_field` -> `putField`): short enough for
    generated clients' method names; tests pin the published ones so they stay stable."""
    if route.name in _NAMED:
        return _NAMED[route.name]
    head, *rest = route.name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` return the finished document (built once, then cached)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            finish(build())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def finish(document: dict[str, Any]) -> None:
    """Complete FastAPI's document in place (see the module docstring)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # ImportLine: the NDJSON import's lines, which FastAPI does not see (a streamed body).
    for model in (Problem, ValidationProblem, ImportLine):
        schema = model.model_json_schema(ref_template=SCHEMAS + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    assert ValidationIssue.__name__ in schemas
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            # FastAPI's default summary is the function name in Title Case ("Readyz"); a
            # summary written on the route is left alone.
            if operation.get("summary", "").istitle():
                operation["summary"] = _sentence(operation["operationId"])
            _shared_answers(operation)
            for parameter in operation.get("parameters", ()):
                _describe(parameter)
    _rename_lists(document)
    _integral_bounds(document)
    for name, example in EXAMPLES.items():
        if name in schemas:
            schemas[name]["examples"] = [example]


def _shared_answers(operation: dict[str, Any]) -> None:
    """Declare what any operation of its kind can answer, whatever its route says."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    shared: list[int] = []
    if "requestBody" in operation:
        shared += [400, 413, 422]
    if operation.get("parameters"):
        shared.append(422)
    if operation.get("security"):
        # A key is checked against the database, so a keyed call needs it.
        shared += [401, 503]
    for status in shared:
        responses.setdefault(str(status), problem_response(status))
    operation["responses"] = dict(sorted(responses.items()))


def _sentence(operation_id: str) -> str:
    """`listFieldHistory` -> `List field history`: the summary /docs shows beside the path."""
    words = re.sub(r"([A-Z])", r" \1", operation_id).lower()
    return words[:1].upper() + words[1:]


def _describe(parameter: dict[str, Any]) -> None:
    if not parameter.get("description") and parameter["name"] in PARAMETERS:
        parameter["description"] = PARAMETERS[parameter["name"]]


def _rename_lists(document: dict[str, Any]) -> None:
    """`ItemList_ProfileField_` (pydantic's name for the generic) becomes `ProfileFieldList`,
    `Page_ProfileSummary_` becomes `ProfileSummaryPage`."""
    schemas = document["components"]["schemas"]
    renamed = {
        name: _LIST_COMPONENT.sub(lambda m: m[2] + ("List" if m[1] == "ItemList" else "Page"), name)
        for name in schemas
    }
    if all(old == new for old, new in renamed.items()):
        return
    document["components"]["schemas"] = {renamed[name]: s for name, s in schemas.items()}
    for old, new in renamed.items():
        if old != new:
            document["components"]["schemas"][new]["title"] = new
    _replace_refs(document, {SCHEMAS + old: SCHEMAS + new for old, new in renamed.items()})


def _replace_refs(node: Any, refs: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in refs:
            node["$ref"] = refs[ref]
        for value in node.values():
            _replace_refs(value, refs)
    elif isinstance(node, list):
        for value in node:
            _replace_refs(value, refs)


def _integral_bounds(node: Any) -> None:
    """FastAPI's document model stores bounds as floats (`maximum: 4.6e18` for an int
    field); whole numbers go back to integers, as the fields declared them."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = int(value)
            else:
                _integral_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _integral_bounds(value)
