"""Scenario and rule texts: stored at once, requirements extracted in the background."""

from __future__ import annotations

from ccvault.domain.audit import Action, note
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
            caller.tenant_id,
            agent_id,
            scenario_id,
            body.model_dump(),
            audit=note(caller, Action.scenario_put, target=f"{agent_id}/{scenario_id}"),
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
        doc = await self._scenarios.put_rule(
            caller.tenant_id,
            agent_id,
            rule_id,
            body.model_dump(),
            audit=note(caller, Action.rule_put, target=f"{agent_id}/{rule_id}"),
        )
        return Rule.model_validate(doc)

    async def get_rule(self, caller: Caller, agent_id: str, rule_id: str) -> Rule:
        """The stored rule and its last extraction's status and error."""
        doc = await self._scenarios.get(SourceKind.rule, caller.tenant_id, agent_id, rule_id)
        return Rule.model_validate(doc)

    async def delete(self, caller: Caller, kind: SourceKind, agent_id: str, source_id: str) -> None:
        """Remove a scenario or rule and its requirements."""
        action = Action.scenario_delete if kind is SourceKind.scenario else Action.rule_delete
        await self._scenarios.delete(
            kind,
            caller.tenant_id,
            agent_id,
            source_id,
            audit=note(caller, action, target=f"{agent_id}/{source_id}"),
        )
