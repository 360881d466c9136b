"""MCP tests: the app served by uvicorn on a real port (lifespan on, so `/mcp` runs its
session manager), sessions opened with the SDK's own `ClientSession`, tenants of their
own, and the HTTP API beside it to set things up and to check effects."""

from __future__ import annotations

import asyncio
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from ccvault.api.app import create_app
from ccvault.runtime import Vault
from ccvault.storage.tenants import TenantStore

AGENT = "onboarding"
SCENARIO = "open_account"
# How often a session looks at its agent's definitions in these tests.
CHECK_SECONDS = 0.3

Opener = Callable[..., AbstractAsyncContextManager[ClientSession]]


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


@asynccontextmanager
async def http_session(
    live: str,
    key: str,
    agent: str | None = AGENT,
    on_message: Callable[[Any], Awaitable[None]] | None = None,
    purpose: str | None = None,
) -> AsyncIterator[ClientSession]:
    """An initialized MCP session over streamable HTTP."""
    headers = {"Authorization": f"Bearer {key}"}
    if agent is not None:
        headers["CCV-Agent-Id"] = agent
    if purpose is not None:
        headers["CCV-Purpose"] = purpose
    async with (
        create_mcp_http_client(headers=headers) as client,
        streamable_http_client(f"{live}/mcp", http_client=client) as (read, write),
        ClientSession(read, write, message_handler=on_message) as session,
    ):
        await session.initialize()
        yield session


async def define(rest: httpx.AsyncClient, name: str, agent: str = AGENT, **body: Any) -> None:
    """PUT a field definition."""
    doc = {"display_name": name.replace("_", " ").title(), "value_type": "string", **body}
    resp = await rest.put(f"/v1/agents/{agent}/field-definitions/{name}", json=doc)
    assert resp.status_code in (200, 201), resp.text


async def require(
    rest: httpx.AsyncClient, name: str, scenario: str = SCENARIO, **body: Any
) -> None:
    """PUT a hard requirement of the scenario."""
    resp = await rest.put(f"/v1/agents/{AGENT}/scenarios/{scenario}/requirements/{name}", json=body)
    assert resp.status_code in (200, 201), resp.text


@asynccontextmanager
async def stdio_session(
    live: str,
    key: str,
    agent: str = AGENT,
    on_message: Callable[[Any], Awaitable[None]] | None = None,
) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with `ccv mcp` spawned against the live server."""
    server = StdioServerParameters(
        command=str(Path(sys.executable).with_name("ccv")),
        args=["mcp", "--agent-id", agent, "--url", live],
        env={"CCV_API_KEY": key, "CCV_MCP_SCHEMA_CHECK_SECONDS": str(CHECK_SECONDS)},
    )
    async with (
        stdio_client(server) as (read, write),
        ClientSession(read, write, message_handler=on_message) as session,
    ):
        await session.initialize()
        yield session


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
