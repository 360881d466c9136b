"""Bearer API keys: one tenant per key; operator routes need the admin key."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ccvault.domain.caller import Caller

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
# Declared on the dependencies below only so OpenAPI names the schemes (and /docs gets an
# Authorize button); with auto_error off they never answer, the functions still decide.
_TENANT_SCHEME = HTTPBearer(
    scheme_name="tenantKey",
    description="A tenant's API key (`ccv tenant create` or `POST /admin/tenants` shows it once).",
    auto_error=False,
)
_ADMIN_SCHEME = HTTPBearer(
    scheme_name="adminKey",
    description="The operator key set in `CCV_ADMIN_API_KEY`.",
    auto_error=False,
)
_Declared = HTTPAuthorizationCredentials | None


def bearer_key(request: Request) -> str | None:
    """The key from `Authorization: Bearer <key>`, or None."""
    return parse_bearer(request.headers.get("authorization"))


def parse_bearer(header: str | None) -> str | None:
    """The key in an Authorization header value `Bearer <key>`, or None.

    Separate from `bearer_key` so the pure-ASGI profile read (fast_read.py), which has no
    Request, accepts exactly the keys the dependency accepts.
    """
    if not header:
        return None
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


async def current_caller(
    request: Request, _scheme: Annotated[_Declared, Security(_TENANT_SCHEME)]
) -> Caller:
    """The tenant making the request; 401 without a valid key."""
    key = bearer_key(request)
    if key is None:
        raise HTTPException(401, "Missing bearer API key.", headers=_CHALLENGE)
    caller = await request.app.state.services.keys.resolve(key)
    if caller is None:
        raise HTTPException(401, "Unknown or revoked API key.", headers=_CHALLENGE)
    # The request's X-Request-Id (api/observe.py) goes into its audit entries.
    caller = caller.acting_as(request_id=getattr(request.state, "request_id", None))
    request.state.caller = caller  # for the access log (api/observe.py)
    return caller  # type: ignore[no-any-return]


async def require_admin(
    request: Request, _scheme: Annotated[_Declared, Security(_ADMIN_SCHEME)]
) -> None:
    """Operator routes: the admin key passes, a tenant key gets 403, anything else 401."""
    key = bearer_key(request)
    if key is None:
        raise HTTPException(401, "Missing bearer API key.", headers=_CHALLENGE)
    admin_key = request.app.state.settings.admin_api_key
    if admin_key is not None and secrets.compare_digest(
        key.encode(), admin_key.get_secret_value().encode()
    ):
        return
    if await request.app.state.services.keys.resolve(key) is not None:
        raise HTTPException(403, "Operator routes need the admin API key, not a tenant key.")
    raise HTTPException(401, "Unknown API key.", headers=_CHALLENGE)


CurrentCaller = Annotated[Caller, Depends(current_caller)]
AdminOnly = Depends(require_admin)
