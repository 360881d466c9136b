"""`/mcp` on `ccv serve`: the MCP server over streamable HTTP, in process.

Each request presents the tenant's key (`Authorization: Bearer`) and names its agent in
`CCV-Agent-Id`; the key is resolved as for any HTTP route (401 without a valid one), and
a session stays bound to the key and agent that opened it (another key gets 404, as for
a session that does not exist). Tools run on the services with that caller, so a call is
validated and recorded as the HTTP request it stands for. Reads name a purpose:
`CCV-Purpose` when given, else the agent.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from ccvault.domain.caller import Caller
from ccvault.domain.models import CALLER_ID_PATTERN
from ccvault.mcp.backend import Backend
from ccvault.mcp.local import LocalBackend
from ccvault.mcp.server import VaultMcp

AGENT_HEADER = "ccv-agent-id"
# What the session's reads are for (DESIGN §8 privacy); the agent when not given.
PURPOSE_HEADER = "ccv-purpose"
_CALLER = "ccvault.caller"
_AGENT_ID = re.compile(CALLER_ID_PATTERN)


def _problem(status: int, title: str, detail: str, **headers: str) -> JSONResponse:
    body = {
        "type": f"urn:ccvault:problem:{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


class McpHttp:
    """The ASGI app mounted at `/mcp`; `running()` belongs in the app's lifespan."""

    def __init__(self, *, check_seconds: float = 5.0) -> None:
        self.mcp = VaultMcp(self._backend_for, check_seconds=check_seconds)
        self._manager: StreamableHTTPSessionManager | None = None

    def _backend_for(self, ctx: ServerRequestContext[Any, Any]) -> Backend:
        scope = ctx.request.scope if ctx.request is not None else {}
        caller: Caller = scope[_CALLER]
        return LocalBackend(scope["app"].state.services, caller)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve sessions (and watch their agents' definitions) until the block ends."""
        # A manager runs once: each start of the app gets its own.
        manager = StreamableHTTPSessionManager(
            app=self.mcp.server,
            # Every request carries a tenant key, which a page rebinding DNS cannot
            # send, so the SDK's Host/Origin allow-list is not needed (and would refuse
            # the vault's real host names).
            security_settings=None,
            # A POST is answered with its JSON-RPC response as plain JSON rather than as a
            # one-event SSE stream: a quarter less time per tool call here (mcp_bench.py).
            # Server-initiated messages (tools/list_changed) go on the GET stream.
            json_response=True,
        )
        async with manager.run(), anyio.create_task_group() as tasks:
            tasks.start_soon(self.mcp.watch)
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None
                tasks.cancel_scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        key = _bearer(_header(scope, b"authorization"))
        services = scope["app"].state.services
        caller = await services.keys.resolve(key) if key is not None else None
        if caller is None:
            detail = "Missing bearer API key." if key is None else "Unknown or revoked API key."
            await _problem(401, "Unauthorized", detail, **{"WWW-Authenticate": "Bearer"})(
                scope, receive, send
            )
            return
        agent_id = _header(scope, AGENT_HEADER.encode())
        if agent_id is not None and not _AGENT_ID.match(agent_id):
            detail = f"CCV-Agent-Id must match {CALLER_ID_PATTERN}."
            await _problem(400, "Bad Request", detail)(scope, receive, send)
            return
        purpose = _header(scope, PURPOSE_HEADER.encode())
        if purpose is not None and not _AGENT_ID.match(purpose):
            detail = f"CCV-Purpose must match {CALLER_ID_PATTERN}."
            await _problem(400, "Bad Request", detail)(scope, receive, send)
            return
        manager = self._manager
        if manager is None:
            await _problem(503, "Service Unavailable", "The MCP server is not running.")(
                scope, receive, send
            )
            return
        state = scope.setdefault("state", {})
        caller = caller.acting_as(
            agent_id=agent_id, purpose=purpose or agent_id, request_id=state.get("request_id")
        )
        state["caller"] = caller  # for the access log, as current_caller leaves it
        scope = dict(scope)
        scope[_CALLER] = caller
        # Binds the session to the key and agent that opened it (the SDK compares them).
        principal = f"{caller.key_id}/{agent_id or ''}"
        scope["user"] = AuthenticatedUser(AccessToken(token="", client_id=principal, scopes=[]))
        # Mounted at /mcp by a plain route: the transport serves the whole path.
        await manager.handle_request(scope, receive, _plain_status(send))


def _plain_status(send: Send) -> Send:
    """The SDK answers some requests with an `HTTPStatus` member; logs and metrics want
    the number."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "status": int(message["status"])}
        await send(message)

    return sending
