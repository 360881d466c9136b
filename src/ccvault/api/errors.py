"""RFC 9457 problem+json for every error the API returns, so clients parse one shape."""

from __future__ import annotations

import traceback
from http import HTTPStatus
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ccvault.api.observe import route_template
from ccvault.api.problems import PROBLEM_JSON, problem_response
from ccvault.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    VaultError,
    Withheld,
)
from ccvault.domain.etags import profile_etag

log = structlog.get_logger("ccvault.api")
# What a 503 asks clients to wait: outages last seconds at least, and the pool serves
# again within a second of the database's return.
RETRY_AFTER_SECONDS = 2


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


def _where(error: Any) -> tuple[Any, ...]:
    """An error's loc; a check across a body's keys (a definition's config_error) names
    the key at fault, like every other validation error."""
    loc = tuple(error.get("loc", ()))
    key = (error.get("ctx") or {}).get("key")
    return (*loc, key) if isinstance(key, str) and key not in loc else loc


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        return problem(400, "The request body is not valid JSON.", title="Malformed JSON")
    errors = [
        {"loc": _loc(_where(e)), "msg": str(e.get("msg", "")), "code": e.get("type", "")}
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
    if isinstance(exc, Withheld):
        return problem(403, exc.detail, title=exc.title)
    if isinstance(exc, PreconditionFailed):
        # The version found, when there is one, so the client can re-read or retry.
        current = exc.current_version
        headers = None if current is None else {"ETag": profile_etag(current)}
        return problem(412, exc.detail, headers=headers)
    if isinstance(exc, InvalidInput):
        errors = [{"loc": list(p.loc), "msg": p.msg, "code": p.code} for p in exc.errors]
        return problem(422, exc.detail, title=exc.title, errors=errors)
    return problem(400, exc.detail)


def database_unavailable() -> JSONResponse:
    """503 for a database that did not answer in time (psycopg's OperationalError, the
    pool's PoolTimeout among them): a retry later can succeed, a 500 would say it cannot."""
    return problem(
        503,
        "The database is not available right now; retry after the delay in Retry-After.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return database_unavailable()


def scrubbed_traceback(exc: BaseException) -> str:
    """The traceback's frames and the exception types (causes first), without any
    exception's message: a message may quote customer data (psycopg's DETAIL quotes the
    key that collided; our own errors name customer ids), and logs hold none."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    parts = [
        "".join(traceback.format_tb(e.__traceback__))
        + f"{type(e).__module__}.{type(e).__qualname__}"
        + _sqlstate(e)
        for e in reversed(chain)
    ]
    return "\n\nThe above caused or preceded:\n\n".join(parts)


def _sqlstate(exc: BaseException) -> str:
    """A database error's SQLSTATE (a code, never data), for the log."""
    code = getattr(exc, "sqlstate", None)
    return f" (SQLSTATE {code})" if isinstance(code, str) else ""


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The route template, not the path: paths hold customer ids; the traceback without
    # messages, which may quote values.
    log.error(
        "unhandled error",
        route=route_template(request.scope),
        method=request.method,
        exception=scrubbed_traceback(exc),
    )
    # Starlette's ServerErrorMiddleware re-raises after sending this, and the server then
    # drops the connection: say so, or a keep-alive client reuses a dead connection.
    return problem(
        500, "An unexpected error occurred; it has been logged.", headers={"Connection": "close"}
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through problem+json."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(VaultError, _vault_error)
    app.add_exception_handler(psycopg.OperationalError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for a route's error codes (401 always), each referring to
    the shared Problem schema; openapi.py adds the answers every route shares."""
    return {code: problem_response(code) for code in (401, *codes)}
