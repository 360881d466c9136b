"""`ccv mcp`: the MCP server over stdio for one agent, talking to a running vault through
the Python client (the key in `CCV_API_KEY`), for MCP clients that start their servers as
child processes (Claude Desktop, IDEs)."""

from __future__ import annotations

import anyio
from mcp.server.stdio import stdio_server

from ccvault.mcp.remote import remote_backend
from ccvault.mcp.server import VaultMcp


async def serve_stdio(
    url: str, api_key: str, agent_id: str, *, purpose: str | None = None, check_seconds: float
) -> None:
    """Serve one MCP session on stdin/stdout until the client closes it."""
    async with remote_backend(url, api_key, agent_id, purpose) as backend:
        mcp = VaultMcp(lambda ctx: backend, check_seconds=check_seconds)
        async with stdio_server() as (read, write), anyio.create_task_group() as tasks:
            tasks.start_soon(mcp.watch)
            await mcp.server.run(read, write, mcp.initialization_options())
            tasks.cancel_scope.cancel()
