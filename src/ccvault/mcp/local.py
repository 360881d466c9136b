"""The in-process backend (`/mcp` on `ccv serve`): the services themselves, called with
the session's `Caller`, so an MCP call is validated, stored and recorded exactly as the
HTTP request it stands for."""

from __future__ import annotations

import contextlib
from uuid import UUID

from ccvault.domain.caller import Caller
from ccvault.domain.context import ContextView
from ccvault.domain.errors import NotFound
from ccvault.domain.models import (
    ChannelIdentity,
    Consent,
    Direction,
    Lineage,
    Profile,
    ProfileField,
)
from ccvault.domain.schema import FieldDefinition, MissingFields
from ccvault.domain.writes import ConsentAnswer, NewField, NewIdentity
from ccvault.mcp.backend import Remembered
from ccvault.services import Services


class LocalBackend:
    """Services plus the caller of one MCP session: tenant from the key, agent from the
    `CCV-Agent-Id` header, purpose from `CCV-Purpose` (else the agent). Reads name the
    purpose, so fields its definitions keep from that purpose are withheld."""

    def __init__(self, services: Services, caller: Caller) -> None:
        self._services = services
        self._caller = caller

    @property
    def agent_id(self) -> str | None:
        """The agent named by the session's `CCV-Agent-Id` header."""
        return self._caller.agent_id

    @property
    def schema_key(self) -> str:
        """The tenant and agent the definitions belong to."""
        return f"{self._caller.tenant_id}/{self._caller.agent_id or ''}"

    async def definitions(self) -> list[FieldDefinition]:
        """The agent's active definitions."""
        if self._caller.agent_id is None:
            return []
        return await self._services.definitions.list(self._caller, self._caller.agent_id)

    async def customer_for_channel(self, channel: str, channel_user_id: str) -> str:
        """The customer a channel identity is linked to."""
        return await self._services.profiles.customer_for_channel(
            self._caller, channel, channel_user_id
        )

    async def context(
        self, customer_id: str, *, scenario_id: str | None = None, step_id: str | None = None
    ) -> ContextView:
        """The prompt-ready context view (GET .../context), with what is missing for a
        scenario when one is named."""
        view = await self._services.context.view(
            self._caller,
            customer_id,
            # Without an agent no definitions apply: every fact shows under its own name.
            agent_id=self._caller.agent_id or "",
            scenario_id=scenario_id,
            step_id=step_id,
            purpose=self._caller.purpose,
        )
        return view

    async def profile(self, customer_id: str) -> Profile:
        """The whole profile."""
        profile, _ = await self._services.profiles.get(
            self._caller, customer_id, purpose=self._caller.purpose
        )
        return profile

    async def missing(
        self, customer_id: str, scenario_id: str, step_id: str | None = None
    ) -> MissingFields:
        """What the agent still has to collect."""
        return await self._services.missing.missing(
            self._caller,
            customer_id,
            self._caller.agent_id or "",
            scenario_id=scenario_id,
            step_id=step_id,
        )

    async def remember(self, customer_id: str, name: str, new: NewField) -> Remembered:
        """Store a field version as PUT .../fields/{name} does."""
        written = await self._services.fields.write(self._caller, customer_id, name, new)
        return Remembered(written.field, written.warnings)

    async def forget(self, customer_id: str, name: str) -> None:
        """Soft-delete a field as DELETE .../fields/{name} does."""
        await self._services.fields.delete(self._caller, customer_id, name)

    async def link(self, customer_id: str, identity: NewIdentity) -> ChannelIdentity:
        """Link a channel identity as POST .../channel-identities does."""
        linked, _ = await self._services.profiles.link_identity(self._caller, customer_id, identity)
        return linked

    async def consent(self, customer_id: str, consent_type: str, answer: ConsentAnswer) -> Consent:
        """Record a consent as PUT .../consents/{type} does."""
        return await self._services.profiles.put_consent(
            self._caller, customer_id, consent_type, answer
        )

    async def history(self, customer_id: str, name: str) -> list[ProfileField]:
        """Every version of a field, unless a read for the session's purpose may not see
        the field (Withheld, as for a read of its current version)."""
        # A deleted or expired field (NotFound) still has its history to explain.
        with contextlib.suppress(NotFound):
            await self._services.fields.get(
                self._caller, customer_id, name, purpose=self._caller.purpose
            )
        return await self._services.fields.history(self._caller, customer_id, name)

    async def lineage(self, item_id: UUID, direction: Direction) -> Lineage:
        """The lineage of an item."""
        return await self._services.lineage.walk(self._caller, item_id, direction)
