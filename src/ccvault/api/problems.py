"""The error shapes of the API as schemas, so the OpenAPI document declares them once and
every operation refers to them (errors.py writes the bodies; these describe them)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict

from ccvault.domain.answers import ValidationIssue

PROBLEM_JSON = "application/problem+json"
SCHEMAS = "#/components/schemas/"

# What each error status means in this API, as /docs shows it.
MEANINGS = {
    400: "The body is not valid JSON.",
    401: "No API key, or an unknown or revoked one.",
    403: "A tenant key on an operator route (these need the admin key), or a field withheld "
    "from a read for its purpose or for a consent not granted.",
    404: "Nothing with that id for this tenant (another tenant's items never exist).",
    409: "The request contradicts what is stored.",
    413: "The body is larger than the server's limit (CCV_MAX_BODY_BYTES, 1 MiB by default).",
    422: "The request breaks the schema or a rule of the vault; nothing was written.",
    503: "The database cannot be reached; nothing was written. Retry after Retry-After seconds.",
}
# What `detail` says in each status's example.
_EXAMPLE_DETAILS = {
    400: "The request body is not valid JSON.",
    401: "Missing bearer API key.",
    403: "Operator routes need the admin API key, not a tenant key.",
    404: "no profile 'cust-42'",
    409: "profile 'cust-42' already exists",
    413: "Request bodies are limited to 1048576 bytes.",
    503: "The database is unavailable; retry shortly.",
}
# Headers that always come with an error status.
HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The authentication scheme to use: `Bearer`.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    },
}


def _title(status: int) -> str:
    # limits.py answers 413 before the app, in RFC 9110's words rather than Python 3.11's.
    return "Content Too Large" if status == 413 else HTTPStatus(status).phrase


def _slug(status: int) -> str:
    return _title(status).lower().replace(" ", "-")


_VALIDATION_EXAMPLE: dict[str, Any] = {
    "type": f"urn:ccvault:problem:{_slug(422)}",
    "title": HTTPStatus(422).phrase,
    "status": 422,
    "detail": "The request does not match the API's schema.",
    "errors": [{"loc": ["body", "source"], "msg": "Field required", "code": "missing"}],
}


def _example(status: int) -> dict[str, Any]:
    """The body a client sees for this status, as errors.problem() writes it."""
    if status == 422:
        return _VALIDATION_EXAMPLE
    return {
        "type": f"urn:ccvault:problem:{_slug(status)}",
        "title": _title(status),
        "status": status,
        "detail": _EXAMPLE_DETAILS.get(status, HTTPStatus(status).description),
    }


class Problem(BaseModel):
    """An RFC 9457 problem: every error the API answers has this shape."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "type": f"urn:ccvault:problem:{_slug(404)}",
                    "title": HTTPStatus(404).phrase,
                    "status": 404,
                    "detail": "no profile 'cust-42'",
                }
            ]
        },
    )

    type: str
    """A stable URN naming the kind of problem (`urn:ccvault:problem:<status phrase>`)."""
    title: str
    """A short summary of the kind of problem, the same for every occurrence."""
    status: int
    """The HTTP status code, repeated for clients that only see the body."""
    detail: str
    """What went wrong with this request, for a person."""


class ValidationProblem(Problem):
    """A problem that names each offending part of the request (422: nothing was written)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [_VALIDATION_EXAMPLE]},
    )

    errors: list[ValidationIssue]
    """Every complaint, one per offending place (may be empty when the rule concerns the
    request as a whole)."""


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """An OpenAPI response object whose body refers to the shared Problem (or, for 422,
    ValidationProblem) schema instead of repeating it."""
    schema = "ValidationProblem" if status == 422 else "Problem"
    response: dict[str, Any] = {
        "description": description or MEANINGS.get(status) or HTTPStatus(status).phrase,
        "content": {
            PROBLEM_JSON: {"schema": {"$ref": SCHEMAS + schema}, "example": _example(status)}
        },
    }
    if status in HEADERS:
        response["headers"] = HEADERS[status]
    return response
