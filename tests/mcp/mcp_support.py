"""Shared by the MCP tests: sessions over each transport with the SDK's own
ClientSession, and the HTTP API calls that set up an agent's schema."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

AGENT = "onboarding"
SCENARIO = "open_account"
# How often a session looks at its agent's definitions in these tests.
CHECK_SECONDS = 0.3

Opener = Callable[..., AbstractAsyncContextManager[ClientSession]]


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
