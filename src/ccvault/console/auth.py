"""Signing in with an API key (a tenant's, or the admin key), and out."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response

from ccvault.console.security import Session
from ccvault.console.web import (
    client_address,
    form_of,
    redirect,
    render,
    replace_session,
    session_of,
    state_of,
    text,
)

router = APIRouter()


@router.get("/")
async def home(request: Request) -> Response:
    """Customers for a tenant, tenants for the operator, else the sign-in page."""
    session = session_of(request)
    if not session.signed_in:
        return redirect(request, "/sign-in")
    return redirect(request, "/admin/tenants" if session.admin else "/customers")


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    """The sign-in form (an anonymous session is started for its CSRF token)."""
    return render(request, "sign_in.html", {"title": "Sign in"})


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    """Accept a tenant key or the admin key; at most 10 attempts a minute per address."""
    state = state_of(request)
    address = client_address(request)
    if not state.limiter.allow(address):
        wait = state.limiter.retry_after(address)
        return render(
            request,
            "sign_in.html",
            {"title": "Sign in", "error": f"Too many attempts. Try again in {wait} seconds."},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    key = text(await form_of(request), "api_key")
    admin_key = state.settings.admin_api_key
    is_admin = admin_key is not None and secrets.compare_digest(
        key.encode(), admin_key.get_secret_value().encode()
    )
    if not key or not (is_admin or await state.services.keys.resolve(key) is not None):
        return render(
            request,
            "sign_in.html",
            {"title": "Sign in", "error": "That API key was not accepted."},
            status_code=401,
        )
    # A new session (and CSRF token) at sign-in: a token seen before it is worth nothing.
    replace_session(request, Session(key=key, admin=is_admin))
    return redirect(request, "/admin/tenants" if is_admin else "/customers")


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session: the cookie is replaced by an anonymous one."""
    replace_session(request, Session())
    return redirect(request, "/sign-in")
