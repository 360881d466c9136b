"""Bearer API keys: one tenant per key; operator routes need the admin key."""

from __future__ import annotations

import secrets
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ccvault.storage.tenants import Caller, TenantStore, hash_key

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


class KeyResolver:
    """Resolves keys to tenants, remembering answers briefly so a request costs no query.

    A revoked key or a changed tenant setting is seen within `ttl` seconds on every process.
    """

    def __init__(self, tenants: TenantStore, ttl: float, max_entries: int = 10_000) -> None:
        self.tenants = tenants
        self.ttl = ttl
        self.max_entries = max_entries
        self._known: dict[bytes, tuple[Caller, float]] = {}

    async def resolve(self, api_key: str) -> Caller | None:
        """The caller for a key, from memory when recent, else from PostgreSQL."""
        digest = hash_key(api_key)
        now = time.monotonic()
        hit = self._known.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        caller = await self.tenants.caller_for_key(api_key)
        if caller is not None and self.ttl > 0:
            if len(self._known) >= self.max_entries:
                self._known.clear()
            self._known[digest] = (caller, now + self.ttl)
        return caller

    def forget_key(self, key_id: object) -> None:
        """Drop a key this process just revoked: refused here at once, elsewhere when
        their memory of it lapses (`ttl`)."""
        for digest, (caller, _) in list(self._known.items()):
            if caller.key_id == key_id:
                del self._known[digest]

    def forget_tenant(self, tenant_id: object) -> None:
        """Drop remembered keys of a tenant whose settings this process just changed."""
        for digest, (caller, _) in list(self._known.items()):
            if caller.tenant_id == tenant_id:
                del self._known[digest]


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
    caller = await request.app.state.vault.keys.resolve(key)
    if caller is None:
        raise HTTPException(401, "Unknown or revoked API key.", headers=_CHALLENGE)
    request.state.caller = caller  # for the access log (api/observe.py)
    return caller  # type: ignore[no-any-return]


async def require_admin(
    request: Request, _scheme: Annotated[_Declared, Security(_ADMIN_SCHEME)]
) -> None:
    """Operator routes: the admin key passes, a tenant key gets 403, anything else 401."""
    key = bearer_key(request)
    if key is None:
        raise HTTPException(401, "Missing bearer API key.", headers=_CHALLENGE)
    admin_key = request.app.state.vault.settings.admin_api_key
    if admin_key is not None and secrets.compare_digest(
        key.encode(), admin_key.get_secret_value().encode()
    ):
        return
    if await request.app.state.vault.keys.resolve(key) is not None:
        raise HTTPException(403, "Operator routes need the admin API key, not a tenant key.")
    raise HTTPException(401, "Unknown API key.", headers=_CHALLENGE)


CurrentCaller = Annotated[Caller, Depends(current_caller)]
AdminOnly = Depends(require_admin)
