"""The agent directory: which agents a tenant has configured and their scenarios and
rules, for people browsing them (the console); agents exist only through what names them."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from ccvault.domain.caller import Caller
from ccvault.domain.scenarios import Rule, Scenario
from ccvault.storage import agents as agents_sql
from ccvault.storage.db import Pool

# A page lists at most this many agents, scenarios or rules (the console shows one page).
MAX_LISTED = 500


@dataclass(frozen=True)
class AgentSummary:
    """One agent and how much it has of each kind."""

    agent_id: str
    active_definitions: int
    suggested_definitions: int
    scenarios: int
    rules: int
    pending_reviews: int


class AgentDirectory:
    """Lists the caller's agents and an agent's scenarios and rules."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def list(self, caller: Caller, limit: int = MAX_LISTED) -> list[AgentSummary]:
        """The tenant's agents by id, each with its counts."""
        rows = await agents_sql.list_agents(self._pool, caller.tenant_id, limit)
        return [AgentSummary(**row) for row in rows]

    async def sources(
        self, caller: Caller, agent_id: str, limit: int = MAX_LISTED
    ) -> tuple[builtins.list[Scenario], builtins.list[Rule]]:
        """The agent's scenarios and rules by id, with their extraction status."""
        scenarios, rules = await agents_sql.agent_sources(
            self._pool, caller.tenant_id, agent_id, limit
        )
        return (
            [Scenario.model_validate(doc) for doc in scenarios],
            [Rule.model_validate(doc) for doc in rules],
        )
