"""The prompt-ready context view: one agent's view of a customer (domain/context.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ccvault.domain.audit import Action
from ccvault.domain.caller import Caller
from ccvault.domain.context import ContextView, build_view
from ccvault.domain.purposes import definition_ids, for_purpose, require_purpose
from ccvault.domain.schema import DefinitionStatus, MissingFields
from ccvault.services.audit import AuditService
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.schema import SchemaStore


class ContextService:
    """Builds the view from the profile read (a cache hit or one query), the agent's
    active definitions and, for a scenario, its missing fields: three reads at once."""

    def __init__(
        self, profiles: ProfileStore, schema: SchemaStore, *, audit: AuditService | None = None
    ) -> None:
        self._profiles = profiles
        self._schema = schema
        self._audit = audit

    async def view(
        self,
        caller: Caller,
        customer_id: str,
        *,
        agent_id: str,
        scenario_id: str | None = None,
        step_id: str | None = None,
        purpose: str | None = None,
    ) -> ContextView:
        """The view; NotFound for a customer the tenant does not hold. Naming a purpose
        leaves out (and lists as withheld) what that purpose may not see."""
        require_purpose(purpose, caller.require_purpose)

        async def missing() -> MissingFields | None:
            if scenario_id is None:
                return None
            return await self._schema.missing_fields(
                caller.tenant_id, customer_id, agent_id, scenario_id=scenario_id, step_id=step_id
            )

        (profile, _), definitions, still_missing = await asyncio.gather(
            self._profiles.get_profile_versioned(caller.tenant_id, customer_id),
            self._schema.list_definitions(caller.tenant_id, agent_id, DefinitionStatus.active),
            missing(),
        )
        if purpose is not None:
            rules = await self._schema.read_rules(caller.tenant_id, definition_ids(profile))
            profile = for_purpose(profile, purpose, rules)
        if self._audit is not None:
            # A read of the profile, through one agent's view of it.
            self._audit.read(
                caller,
                Action.profile_read,
                profile.customer_id,  # an alias's target
                target=f"context/{agent_id}",
                purpose=purpose,
            )
        return build_view(
            profile,
            agent_id,
            definitions,
            datetime.now(UTC),
            withheld=profile.withheld_fields,
            scenario_id=scenario_id,
            missing=still_missing,
        )
