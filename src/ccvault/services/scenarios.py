"""Scenario and rule texts: stored at once, requirements extracted in the background."""

from __future__ import annotations

from ccvault.domain.caller import Caller
from ccvault.domain.scenarios import Rule, RuleBody, Scenario, ScenarioBody, SourceKind
from ccvault.storage.scenarios import ScenarioStore


class ScenarioService:
    """Store, read and remove an agent's scenarios and rules."""

    def __init__(self, scenarios: ScenarioStore) -> None:
        self._scenarios = scenarios

    async def put_scenario(
        self, caller: Caller, agent_id: str, scenario_id: str, body: ScenarioBody
    ) -> Scenario:
        """Store the scenario; its extraction is queued in the same transaction."""
        doc = await self._scenarios.put_scenario(
            caller.tenant_id, agent_id, scenario_id, body.model_dump()
        )
        return Scenario.model_validate(doc)

    async def get_scenario(self, caller: Caller, agent_id: str, scenario_id: str) -> Scenario:
        """The stored scenario and its last extraction's status and error."""
        doc = await self._scenarios.get(
            SourceKind.scenario, caller.tenant_id, agent_id, scenario_id
        )
        return Scenario.model_validate(doc)

    async def put_rule(self, caller: Caller, agent_id: str, rule_id: str, body: RuleBody) -> Rule:
        """Store the rule; its extraction is queued in the same transaction."""
        doc = await self._scenarios.put_rule(caller.tenant_id, agent_id, rule_id, body.model_dump())
        return Rule.model_validate(doc)

    async def get_rule(self, caller: Caller, agent_id: str, rule_id: str) -> Rule:
        """The stored rule and its last extraction's status and error."""
        doc = await self._scenarios.get(SourceKind.rule, caller.tenant_id, agent_id, rule_id)
        return Rule.model_validate(doc)

    async def delete(self, caller: Caller, kind: SourceKind, agent_id: str, source_id: str) -> None:
        """Remove a scenario or rule and its requirements."""
        await self._scenarios.delete(kind, caller.tenant_id, agent_id, source_id)
