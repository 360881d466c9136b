"""RFC 9457 problem+json for every error the API returns, so clients parse one shape."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ccvault.api.observe import route_template
from ccvault.domain.errors import Conflict, InvalidInput, NotFound, VaultError

log = structlog.get_logger("ccvault.api")
PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response; `type` names the kind of problem in a stable slug."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"urn:ccvault:problem:{phrase.lower().replace(' ', '-')}",
        "title": title or phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc(loc: Any) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        return problem(400, "The request body is not valid JSON.", title="Malformed JSON")
    errors = [
        {"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", "")), "code": e.get("type", "")}
        for e in raw
    ]
    return problem(422, "The request does not match the API's schema.", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _vault_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VaultError)
    if isinstance(exc, NotFound):
        return problem(404, exc.detail)
    if isinstance(exc, Conflict):
        return problem(409, exc.detail)
    if isinstance(exc, InvalidInput):
        errors = [{"loc": list(p.loc), "msg": p.msg, "code": p.code} for p in exc.errors]
        return problem(422, exc.detail, title=exc.title, errors=errors)
    return problem(400, exc.detail)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The route template, not the path: paths hold customer ids.
    log.exception("unhandled error", route=route_template(request.scope), method=request.method)
    return problem(500, "An unexpected error occurred; it has been logged.")


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through problem+json."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(VaultError, _vault_error)
    app.add_exception_handler(Exception, _unexpected)


# Declared on routes so /docs shows the error shapes callers must handle.
PROBLEM_SCHEMA = {
    "content": {
        PROBLEM_JSON: {
            "schema": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "loc": {"type": "array", "items": {}},
                                "msg": {"type": "string"},
                                "code": {"type": "string"},
                            },
                        },
                    },
                },
            }
        }
    }
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error codes."""
    return {
        code: {"description": HTTPStatus(code).phrase, **PROBLEM_SCHEMA} for code in (401, *codes)
    }
