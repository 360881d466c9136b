"""The agents a tenant has configured, gathered from definitions, scenarios and rules
(agents have no table of their own): what the console lists and opens."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("agents.sql")
_COUNTS = (
    "agent_id",
    "active_definitions",
    "suggested_definitions",
    "scenarios",
    "rules",
    "pending_reviews",
)


async def list_agents(pool: Pool, tenant_id: UUID, limit: int) -> list[dict[str, Any]]:
    """At most `limit` agents of the tenant by id, each with its counts."""
    async with pool.connection() as conn:
        cur = await conn.execute(Q["list_agents"], {"tenant_id": tenant_id, "limit": limit})
        rows = await cur.fetchall()
    return [dict(zip(_COUNTS, row, strict=True)) for row in rows]


async def agent_sources(
    pool: Pool, tenant_id: UUID, agent_id: str, limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The agent's scenario and rule documents (at most `limit` of each), by id."""
    params = {"tenant_id": tenant_id, "agent_id": agent_id, "limit": limit}
    async with pool.connection() as conn:
        scenarios = await (await conn.execute(Q["agent_scenarios"], params)).fetchall()
        rules = await (await conn.execute(Q["agent_rules"], params)).fetchall()
    return [dict(r[0]) for r in scenarios], [dict(r[0]) for r in rules]
