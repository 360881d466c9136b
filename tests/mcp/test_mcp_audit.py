"""MCP calls are audited like the HTTP requests they stand for (DESIGN §8 "Audit log"),
with the agent as the purpose unless the session names one."""

from __future__ import annotations

import json
import uuid

import httpx
from mcp_support import AGENT, define, http_session


async def test_tool_calls_leave_entries_with_the_agent_as_purpose(
    live: str, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "plan")
    cid = f"mcp-{uuid.uuid4().hex[:12]}"
    async with http_session(live, strict_key) as session:
        done = await session.call_tool(
            "remember_fact", {"customer_id": cid, "field_name": "plan", "value": "gold"}
        )
        assert not done.is_error, done.content
        read = await session.call_tool("get_customer_profile", {"customer_id": cid})
        assert not read.is_error, read.content
        assert "gold" in json.dumps([c.model_dump() for c in read.content])
    async with http_session(live, strict_key, purpose="support") as session:
        read = await session.call_tool("get_customer_profile", {"customer_id": cid})
        assert not read.is_error, read.content
    resp = await rest.get(f"/v1/profiles/{cid}/audit")
    assert resp.status_code == 200, resp.text
    entries = resp.json()["items"][::-1]
    assert [(e["action"], e["purpose"]) for e in entries] == [
        ("field.write", AGENT),
        ("profile.read", AGENT),
        ("profile.read", "support"),
    ]
    assert all(e["request_id"] for e in entries)
