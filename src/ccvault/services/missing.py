"""missing-fields: what an agent still has to collect before a scenario, step or rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ccvault.domain.caller import Caller
from ccvault.domain.errors import InvalidInput, Problem
from ccvault.domain.schema import MissingFields
from ccvault.storage.schema import SchemaStore


class MissingFieldsService:
    """Unmet requirements in collection order, and whether the scenario can proceed."""

    def __init__(self, schema: SchemaStore) -> None:
        self._schema = schema

    async def missing(
        self,
        caller: Caller,
        customer_id: str,
        agent_id: str,
        *,
        scenario_id: str | None = None,
        rule_id: str | None = None,
        step_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        loc: str = "query",
    ) -> MissingFields:
        """An unknown profile is a new customer: it is missing everything. `context` holds
        facts of the conversation that conditions read beside the profile's values. `loc`
        names where the ids came from (`query` or `body`) for the error when neither is
        given."""
        if scenario_id is None and rule_id is None:
            raise InvalidInput(
                "name a scenario_id or a rule_id",
                [Problem((loc, "scenario_id"), "scenario_id or rule_id is required", "missing")],
            )
        return await self._schema.missing_fields(
            caller.tenant_id,
            customer_id,
            agent_id,
            scenario_id=scenario_id,
            rule_id=rule_id,
            step_id=step_id,
            context=context,
        )
