"""`/mcp` on `ccv serve` asks for the tenant's key like every route, and keeps a session
to the key that opened it."""

from __future__ import annotations

import httpx
from mcp_support import http_session

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


async def test_reads_name_the_agent_as_purpose_unless_ccv_purpose_is_given(
    live: str, strict_key: str, rest: httpx.AsyncClient
) -> None:
    for name, purposes in (("nickname", []), ("income", ["kyc"])):
        resp = await rest.put(
            "/v1/agents/onboarding/field-definitions/" + name,
            json={"display_name": name.title(), "value_type": "string", "purposes": purposes},
        )
        assert resp.status_code in (200, 201), resp.text
    async with http_session(live, strict_key) as session:
        for name in ("nickname", "income"):
            stored = await session.call_tool(
                "remember_fact", {"customer_id": "p1", "field_name": name, "value": "x"}
            )
            assert not stored.is_error
        view = await session.call_tool("get_customer_profile", {"customer_id": "p1"})
        explained = await session.call_tool(
            "explain_fact", {"customer_id": "p1", "field_name": "income"}
        )
    shown = view.content[0].text  # type: ignore[union-attr]
    assert "Nickname: x" in shown and "Income:" not in shown and "income (purpose)" in shown
    assert explained.is_error
    async with http_session(live, strict_key, purpose="kyc") as session:
        view = await session.call_tool("get_customer_profile", {"customer_id": "p1"})
    assert "Income: x" in view.content[0].text  # type: ignore[union-attr]
