"""What every console page shares: the session from the cookie, who is signed in, the
CSRF check, and rendering a template with the session's token and the navigation."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from ccvault.config import Settings
from ccvault.console import present
from ccvault.console.security import (
    COOKIE,
    COOKIE_PATH,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_SECONDS,
    Session,
    SessionCodec,
    SignInLimiter,
    tokens_match,
)
from ccvault.domain.caller import Caller
from ccvault.services import Services

PREFIX = "/console"
# Integrity of the vendored htmx (static/VENDORED.md says where it came from).
HTMX_INTEGRITY = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"
# The purpose the console reads with when the tenant requires one and the person named
# none (README "Console").
CONSOLE_PURPOSE = "console"


def _templates() -> Jinja2Templates:
    directory = Path(str(resources.files("ccvault.console").joinpath("templates")))
    templates = Jinja2Templates(directory=directory)
    # Templates are package files: read once, never looked at again for changes.
    templates.env.auto_reload = False
    templates.env.filters.update(present.FILTERS)
    templates.env.globals.update(prefix=PREFIX, htmx_integrity=HTMX_INTEGRITY)
    return templates


class ConsoleState:
    """The console's own parts, kept on its app: the parent app (for the services), the
    cookie codec, the sign-in limiter and the templates."""

    def __init__(self, parent: Any, settings: Settings) -> None:
        self.parent = parent
        secret = settings.session_secret
        # Unset: random per process start (ccv serve sets one for all its workers).
        self.codec = SessionCodec(
            secret.get_secret_value() if secret else secrets.token_urlsafe(32)
        )
        self.limiter = SignInLimiter()
        self.templates = _templates()

    @property
    def services(self) -> Services:
        """The vault's services (opened by the parent app's lifespan)."""
        return self.parent.state.services  # type: ignore[no-any-return]

    @property
    def settings(self) -> Settings:
        """The vault's settings."""
        return self.parent.state.settings  # type: ignore[no-any-return]


def state_of(request: Request) -> ConsoleState:
    """The console's parts, from its app."""
    return request.app.state.console  # type: ignore[no-any-return]


def session_of(request: Request) -> Session:
    """The request's session: from its cookie, or a fresh anonymous one (set on the answer
    by `render`/`redirect`, so the sign-in form has a CSRF token to carry)."""
    cached = getattr(request.state, "session", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    session = state_of(request).codec.loads(request.cookies.get(COOKIE))
    if session is None:
        session = Session()
        request.state.session_changed = True
    request.state.session = session
    return session


def replace_session(request: Request, session: Session) -> None:
    """Use `session` from now on and send it with the answer (sign in, sign out)."""
    request.state.session = session
    request.state.session_changed = True


def store_session(request: Request, response: Response) -> Response:
    """Set the cookie when the session is new or changed."""
    if getattr(request.state, "session_changed", False):
        session = session_of(request)
        response.set_cookie(
            COOKIE,
            state_of(request).codec.dumps(session),
            max_age=SESSION_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


class SignInRequired(Exception):
    """No accepted key in the session: the answer sends the person to the sign-in page."""


class NotAllowed(Exception):
    """Signed in with the other kind of key (admin pages need the admin key; customer
    pages a tenant key)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Viewer:
    """Who is signed in: a tenant's caller, or the operator (admin key)."""

    caller: Caller | None
    admin: bool
    tenant_name: str | None


async def viewer(request: Request) -> Viewer:
    """The signed-in person; SignInRequired otherwise (a revoked key included)."""
    session = session_of(request)
    if session.key is None:
        raise SignInRequired
    state = state_of(request)
    if session.admin:
        admin_key = state.settings.admin_api_key
        if admin_key is None or not secrets.compare_digest(
            session.key.encode(), admin_key.get_secret_value().encode()
        ):
            raise SignInRequired
        return Viewer(caller=None, admin=True, tenant_name=None)
    caller = await state.services.keys.resolve(session.key)
    if caller is None:
        raise SignInRequired
    # The id the request observer read or minted (echoed as X-Request-Id), as the API has.
    caller = caller.acting_as(request_id=getattr(request.state, "request_id", None))
    request.state.caller = caller  # for the access log, as the API's routes do
    return Viewer(caller=caller, admin=False, tenant_name=caller.name)


async def tenant_caller(who: Annotated[Viewer, Depends(viewer)]) -> Caller:
    """The tenant of a customer/agent page; the operator is sent to the admin pages."""
    if who.caller is None:
        raise NotAllowed("These pages show a tenant's data: sign in with that tenant's API key.")
    return who.caller


async def admin_viewer(who: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    """The operator of an admin page."""
    if not who.admin:
        raise NotAllowed("These pages need the admin API key.")
    return who


WhoDep = Annotated[Viewer, Depends(viewer)]
CallerDep = Annotated[Caller, Depends(tenant_caller)]
AdminDep = Annotated[Viewer, Depends(admin_viewer)]


async def check_csrf(request: Request) -> None:
    """Every state-changing request carries the session's CSRF token (form field or
    header); else 403, before anything else happens."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not tokens_match(sent, session_of(request).csrf) or request.cookies.get(COOKIE) is None:
        raise NotAllowed("The form was stale or not sent by this console: reload and try again.")


async def form_of(request: Request) -> FormData:
    """The posted form (already read, and checked, by `check_csrf`)."""
    return await request.form()


def text(form: FormData, name: str) -> str:
    """A form field as stripped text ('' when absent or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A page: the template with the session's CSRF token and who is signed in."""
    session = session_of(request)
    ctx = {
        "csrf_token": session.csrf,
        "signed_in": session.signed_in,
        "is_admin": session.admin,
        "active": "",
        **(context or {}),
    }
    response = state_of(request).templates.TemplateResponse(
        request, template, ctx, status_code=status_code, headers=headers
    )
    return store_session(request, response)


def redirect(request: Request, path: str) -> Response:
    """303 to a console path (after a form post); htmx follows HX-Redirect instead."""
    location = f"{PREFIX}{path}"
    if request.headers.get("hx-request"):
        response = Response(status_code=204, headers={"HX-Redirect": location})
    else:
        response = Response(status_code=303, headers={"Location": location})
    return store_session(request, response)


def client_address(request: Request) -> str:
    """Who is signing in, for the attempt limit (uvicorn's view: behind a proxy, set
    --forwarded-allow-ips so this is the client, not the proxy)."""
    return request.client.host if request.client else "unknown"


__all__ = [
    "CONSOLE_PURPOSE",
    "PREFIX",
    "AdminDep",
    "CallerDep",
    "ConsoleState",
    "NotAllowed",
    "SignInLimiter",
    "SignInRequired",
    "WhoDep",
    "check_csrf",
    "client_address",
    "form_of",
    "redirect",
    "render",
    "replace_session",
    "session_of",
    "state_of",
    "text",
]
