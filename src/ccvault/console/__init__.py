"""The web console (DESIGN §8 "Console (people)"): server-rendered pages under /console
for the people who review extractions and answer for customer data. It calls the
service layer only, like every other entry point."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Route

from ccvault.config import Settings
from ccvault.console import admin, agents, auth, people
from ccvault.console.security import SECURITY_HEADERS, SecurityHeaders
from ccvault.console.web import (
    PREFIX,
    ConsoleState,
    NotAllowed,
    SignInRequired,
    check_csrf,
    redirect,
    render,
)
from ccvault.domain.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, Withheld

_STATUS: dict[type[Exception], int] = {
    NotFound: 404,
    Conflict: 409,
    Withheld: 403,
    PreconditionFailed: 412,
    InvalidInput: 422,
}
_MESSAGES = {
    400: "The request was not understood.",
    404: "There is nothing here: the customer or item does not exist for your tenant.",
    405: "That action is not available here.",
}


def _error_page(request: Request, status: int, message: str) -> Response:
    return render(
        request, "error.html", {"title": "Not possible", "message": message}, status_code=status
    )


def _install_errors(app: FastAPI) -> None:
    """Every failure answers a page that says what happened and what to do next."""

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        return redirect(request, "/sign-in")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAllowed)
        return _error_page(request, 403, exc.message)

    async def domain(request: Request, exc: Exception) -> Response:
        status = _STATUS.get(type(exc), 422)
        message = _MESSAGES[404] if status == 404 else str(getattr(exc, "detail", exc))
        return _error_page(request, status, message)

    async def invalid(request: Request, exc: Exception) -> Response:
        # Library messages could quote the value sent: say only what was refused.
        return _error_page(request, 422, "Some of what was sent is not valid; check and retry.")

    async def http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = _MESSAGES.get(exc.status_code, "That did not work.")
        return _error_page(request, exc.status_code, message)

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(NotAllowed, not_allowed)
    for kind in (NotFound, Conflict, Withheld, PreconditionFailed, InvalidInput):
        app.add_exception_handler(kind, domain)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(ValidationError, invalid)
    app.add_exception_handler(HTTPException, http)


def build_console(parent: Any, settings: Settings) -> FastAPI:
    """The console's own app (mounted at /console): its routes, static files, error
    pages and CSRF check; it reaches the vault's services through `parent`."""
    app = FastAPI(
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        dependencies=[Depends(check_csrf)],
    )
    app.state.console = ConsoleState(parent, settings)
    static = Path(str(resources.files("ccvault.console").joinpath("static")))
    app.mount("/static", StaticFiles(directory=static), name="static")
    for module in (auth, people, agents, admin):
        app.include_router(module.router)
    _install_errors(app)
    return app


def mount_console(app: FastAPI, settings: Settings) -> None:
    """Serve the console under /console (every answer with its security headers)."""

    async def to_console(request: Request) -> Response:
        headers = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}
        return Response(status_code=307, headers={**headers, "Location": f"{PREFIX}/"})

    # First in the list: a console request would otherwise be matched against every API
    # route before reaching its mount (the API's own paths never start with /console).
    app.router.routes.insert(0, Mount(PREFIX, app=SecurityHeaders(build_console(app, settings))))
    app.router.routes.insert(0, Route(PREFIX, to_console, include_in_schema=False))
