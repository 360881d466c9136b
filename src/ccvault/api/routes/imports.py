"""Bulk import: NDJSON streamed in, one profile a line (DESIGN §8 "Scale")."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import ServicesDep
from ccvault.api.errors import problem, responses
from ccvault.domain.answers import ValidationIssue

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])
IMPORT_PATH = "/v1/profiles/import"
NDJSON = "application/x-ndjson"
# Also accepted: the JSON Lines names some tools send.
_NDJSON_TYPES = frozenset({NDJSON, "application/jsonl", "application/x-jsonlines"})

_EXAMPLE_BODY = (
    "\n".join(
        json.dumps(line, separators=(",", ":"))
        for line in (
            {
                "customer_id": "cust-42",
                "fields": {
                    "name": "Ana Lima",
                    "email": {"value": "ana@Example.com", "value_type": "email", "verified": True},
                },
                "channel_identities": [{"channel": "whatsapp", "channel_user_id": "+351912345678"}],
                "consents": {"marketing_email": True},
            },
            {"customer_id": "cust-43", "fields": {"plan": "gold", "seats": 12}},
        )
    )
    + "\n"
)


class LineErrors(BaseModel):
    """Why one line was not stored (or, under `warnings`, what was wrong with a line that
    was stored in warn mode)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    line: int
    """The line's number, counting from 1 (blank lines count)."""
    errors: list[ValidationIssue]
    """Each complaint: `loc` starts at the line's own keys (`["fields", "email", ...]`)."""


class ImportResult(BaseModel):
    """What an import stored; lines not stored are listed in `errors`."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "profiles": 2,
                    "fields": 4,
                    "errors": [
                        {
                            "line": 3,
                            "errors": [
                                {
                                    "loc": ["fields", "email", "value"],
                                    "msg": "not an email address",
                                    "code": "format_error",
                                }
                            ],
                        }
                    ],
                    "lines": 3,
                    "created": 2,
                    "unchanged": 0,
                    "failed": 1,
                    "warnings": [],
                }
            ]
        },
    )

    profiles: int
    """Lines stored (each one profile, created or updated)."""
    fields: int
    """Field versions written."""
    errors: list[LineErrors]
    """Lines not stored and why, in file order (the first 1,000; `failed` counts all)."""
    lines: int
    """Non-blank lines read."""
    created: int
    """Profiles created."""
    unchanged: int
    """Fields not written because their current version already says the same."""
    failed: int
    """Lines not stored."""
    warnings: list[LineErrors]
    """Warn mode only: stored lines with values that failed validation (the first 1,000)."""


@router.post(
    "/import",
    response_model=ImportResult,
    responses=responses(415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "NDJSON: one `ImportLine` per line (UTF-8, `\\n`-separated), "
            "streamed; not bound by the request body limit.",
            "content": {
                NDJSON: {
                    "schema": {"$ref": "#/components/schemas/ImportLine"},
                    "example": _EXAMPLE_BODY,
                }
            },
        }
    },
)
async def import_profiles(
    request: Request, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """Import profiles from NDJSON, one profile a line: `{customer_id, fields: {name: value |
    {value, value_type?, source?, confidence?, verified?, collected_at?, expires_at?, ...}},
    channel_identities?, consents?}`.

    Each field is validated and normalized as a field write is, in the tenant's mode. A line
    is stored whole or not at all; bad lines are listed by number while good ones are
    stored (the answer is 200 either way). Lines are written in batches, so a long import
    may be partly stored if the connection drops. Importing the same file again writes
    nothing new: unchanged fields get no new version.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _NDJSON_TYPES:
        return problem(415, f"Send the lines as {NDJSON}.")
    summary = await services.imports.import_ndjson(caller, request.stream())
    body = json.dumps(summary.as_json(), separators=(",", ":")).encode()
    return Response(body, media_type="application/json")
