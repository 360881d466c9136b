"""What the MCP tools need from the vault, as one small protocol with two implementations:
in-process (`/mcp` on `ccv serve`: the services themselves, with the session's `Caller`)
and remote (`ccv mcp` over stdio: the HTTP client). The tools, resource and prompt are
written once against it (server.py), so both transports behave alike.

Failures are the domain's own errors (`NotFound`, `InvalidInput`, `Conflict`,
`PreconditionFailed`, `VaultError`): the remote backend turns the client's typed errors
back into them, and the server turns them into tool errors an agent can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from ccvault.domain.context import ContextView
from ccvault.domain.errors import Problem
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


@dataclass(frozen=True)
class Remembered:
    """A stored field version and, in warn mode, what was wrong with it."""

    field: ProfileField
    warnings: tuple[Problem, ...] = ()


class Backend(Protocol):
    """One session's door into the vault: the tenant and agent are fixed by whoever built
    it (the key and `CCV-Agent-Id`, or `ccv mcp --agent-id` and `CCV_API_KEY`)."""

    @property
    def agent_id(self) -> str | None:
        """The agent the session acts for (None: no agent named, so no schema applies)."""
        ...

    @property
    def schema_key(self) -> str:
        """Whose definitions these are (tenant and agent): sessions with the same key
        share one read of them when the server checks for changes."""
        ...

    async def definitions(self) -> list[FieldDefinition]:
        """The agent's active definitions (empty without an agent)."""
        ...

    async def customer_for_channel(self, channel: str, channel_user_id: str) -> str:
        """The customer a channel identity is linked to; NotFound otherwise."""
        ...

    async def context(
        self, customer_id: str, *, scenario_id: str | None = None, step_id: str | None = None
    ) -> ContextView:
        """The prompt-ready view of a profile for this agent; NotFound when unknown."""
        ...

    async def profile(self, customer_id: str) -> Profile:
        """The whole profile; NotFound when unknown."""
        ...

    async def missing(
        self, customer_id: str, scenario_id: str, step_id: str | None = None
    ) -> MissingFields:
        """What the agent still has to collect before a scenario (or one of its steps)."""
        ...

    async def remember(self, customer_id: str, name: str, new: NewField) -> Remembered:
        """Validate per the tenant's mode and store a new version of a field."""
        ...

    async def forget(self, customer_id: str, name: str) -> None:
        """Soft-delete a field's current version."""
        ...

    async def link(self, customer_id: str, identity: NewIdentity) -> ChannelIdentity:
        """Link a channel identity (already linked here is fine; elsewhere, Conflict)."""
        ...

    async def consent(self, customer_id: str, consent_type: str, answer: ConsentAnswer) -> Consent:
        """Record whether the customer grants a consent type."""
        ...

    async def history(self, customer_id: str, name: str) -> list[ProfileField]:
        """Every version of a field, newest first."""
        ...

    async def lineage(self, item_id: UUID, direction: Direction) -> Lineage:
        """Where an item came from (ancestors) or what was derived from it (descendants)."""
        ...
