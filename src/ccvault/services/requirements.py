"""Per-scenario requirements: list, set by hand, remove, and a reviewer's decision."""

from __future__ import annotations

from uuid import UUID

from ccvault.domain.audit import Action, note, requirement_target
from ccvault.domain.caller import Caller
from ccvault.domain.schema import Requirement, RequirementBody, ReviewDecision
from ccvault.storage.schema import SchemaStore


class RequirementService:
    """Requirements of an agent's scenarios."""

    def __init__(self, schema: SchemaStore) -> None:
        self._schema = schema

    async def list(self, caller: Caller, agent_id: str, scenario_id: str) -> list[Requirement]:
        """A scenario's requirements, by collection order then field name."""
        return await self._schema.list_requirements(caller.tenant_id, agent_id, scenario_id)

    async def put(
        self,
        caller: Caller,
        agent_id: str,
        scenario_id: str,
        field_name: str,
        body: RequirementBody,
        *,
        step_id: str | None = None,
    ) -> tuple[Requirement, bool]:
        """Create (True) or replace (False) a manual requirement; no step = scenario-wide."""
        return await self._schema.put_requirement(
            caller.tenant_id,
            agent_id,
            scenario_id,
            field_name,
            step_id,
            body,
            audit=note(
                caller,
                Action.requirement_put,
                target=requirement_target(agent_id, scenario_id, field_name, step_id),
            ),
        )

    async def delete(
        self,
        caller: Caller,
        agent_id: str,
        scenario_id: str,
        field_name: str,
        *,
        step_id: str | None = None,
    ) -> None:
        """Remove the requirement(s) for that field and step."""
        await self._schema.delete_requirement(
            caller.tenant_id,
            agent_id,
            scenario_id,
            field_name,
            step_id,
            audit=note(
                caller,
                Action.requirement_delete,
                target=requirement_target(agent_id, scenario_id, field_name, step_id),
            ),
        )

    async def review(
        self, caller: Caller, agent_id: str, requirement_id: UUID, decision: ReviewDecision
    ) -> Requirement:
        """Approve (clears needs_human_review) or reject (listed, no longer enforced)."""
        verdict = "approved" if decision.decision == "approve" else "rejected"
        return await self._schema.review_requirement(
            caller.tenant_id,
            agent_id,
            requirement_id,
            verdict,
            audit=note(caller, Action.requirement_review, target=f"{agent_id}/{requirement_id}"),
        )
