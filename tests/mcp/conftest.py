"""MCP tests: the app served by uvicorn on a real port (lifespan on, so `/mcp` runs its
session manager), sessions opened with the SDK's own `ClientSession` (mcp_support.py),
tenants of their own, and the HTTP API beside it to set things up and to check effects."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
import uvicorn
from mcp.client.session import ClientSession
from mcp_support import AGENT, CHECK_SECONDS, Opener, http_session, stdio_session

from ccvault.api.app import create_app
from ccvault.runtime import Vault
from ccvault.storage.tenants import TenantStore


@pytest.fixture(scope="session")
async def live(vault: Vault) -> AsyncIterator[str]:
    """The vault served on a free port; yields its base URL."""
    settings = vault.settings.model_copy(update={"mcp_schema_check_seconds": CHECK_SECONDS})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings, vault=vault), lifespan="on", log_level="warning")
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve(sockets=[sock]))
    while not served.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        await task
        sock.close()


async def new_tenant(vault: Vault, mode: str) -> str:
    """A fresh tenant in a validation mode; returns its key."""
    _, key = await TenantStore(vault.pool).create(f"mcp-{uuid.uuid4().hex}", mode)
    return key


@pytest.fixture
async def strict_key(vault: Vault) -> str:
    """The key of a fresh strict-mode tenant."""
    return await new_tenant(vault, "strict")


@pytest.fixture
async def other_key(vault: Vault) -> str:
    """The key of a second, unrelated tenant."""
    return await new_tenant(vault, "strict")


@pytest.fixture
async def rest(live: str, strict_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API of the live server, as the strict tenant."""
    headers = {"Authorization": f"Bearer {strict_key}"}
    async with httpx.AsyncClient(base_url=live, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture(params=["http", "stdio"])
def connect(request: pytest.FixtureRequest, live: str) -> Opener:
    """Opens an MCP session as a key (and agent) over the transport of the parameter:
    streamable HTTP at /mcp, or stdio with `ccv mcp` through the client."""

    def open_session(
        key: str, agent: str = AGENT, on_message: Any = None
    ) -> AbstractAsyncContextManager[ClientSession]:
        if request.param == "stdio":
            return stdio_session(live, key, agent, on_message)
        return http_session(live, key, agent, on_message)

    return open_session
