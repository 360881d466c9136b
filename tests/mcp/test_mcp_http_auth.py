"""`/mcp` on `ccv serve` asks for the tenant's key like every route, and keeps a session
to the key that opened it."""

from __future__ import annotations

import httpx

from conftest import http_session

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


async def test_mcp_without_a_valid_key_answers_401(live: str) -> None:
    async with httpx.AsyncClient(base_url=live) as client:
        none = await client.post("/mcp", json=INIT, headers=ACCEPT)
        wrong = await client.post(
            "/mcp", json=INIT, headers={**ACCEPT, "Authorization": "Bearer nope"}
        )
    for resp in (none, wrong):
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"] == "Bearer"
        assert resp.headers["content-type"] == "application/problem+json"


async def test_a_bad_agent_id_header_answers_400(live: str, strict_key: str) -> None:
    headers = {**ACCEPT, "Authorization": f"Bearer {strict_key}", "CCV-Agent-Id": "no spaces"}
    async with httpx.AsyncClient(base_url=live) as client:
        resp = await client.post("/mcp", json=INIT, headers=headers)
    assert resp.status_code == 400


async def test_a_session_answers_only_the_key_that_opened_it(
    live: str, strict_key: str, other_key: str
) -> None:
    async with http_session(live, strict_key) as session:
        assert (await session.list_tools()).tools
        sid = None
        async with httpx.AsyncClient(base_url=live) as client:
            opened = await client.post(
                "/mcp", json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {strict_key}"}
            )
            sid = opened.headers["mcp-session-id"]
            listed = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            hijack = await client.post(
                "/mcp",
                json=listed,
                headers={
                    **ACCEPT,
                    "Authorization": f"Bearer {other_key}",
                    "Mcp-Session-Id": sid,
                    "Mcp-Protocol-Version": "2025-11-25",
                },
            )
    assert hijack.status_code == 404


async def test_without_an_agent_header_tools_work_without_a_schema(
    live: str, strict_key: str
) -> None:
    async with http_session(live, strict_key, agent=None) as session:
        tools = await session.list_tools()
        remember = next(t for t in tools.tools if t.name == "remember_fact")
        asked = await session.call_tool(
            "what_to_ask_next", {"customer_id": "c1", "scenario_id": "open_account"}
        )
    assert "enum" not in remember.input_schema["properties"]["field_name"]
    assert asked.is_error
    assert "CCV-Agent-Id" in asked.content[0].text  # type: ignore[union-attr]
