"""The client-backed backend (`ccv mcp` over stdio): the same tools, through the vault's
HTTP API with `ccvault.client.AsyncVault`, so a running vault validates and records each
call exactly as it does the HTTP request. The client's typed errors become the domain's
again, so the server words a refusal the same whichever transport carried it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TypeVar
from uuid import UUID

from ccvault import client
from ccvault.domain import errors
from ccvault.domain.context import ContextView
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

T = TypeVar("T")


def domain_error(exc: client.VaultError) -> errors.VaultError:
    """The domain's error for a refusal the client received."""
    detail = exc.detail or exc.title
    if isinstance(exc, client.NotFound):
        return errors.NotFound(detail)
    if isinstance(exc, client.ValidationFailed):
        problems = [errors.Problem(tuple(i.loc), i.msg, i.code) for i in exc.errors]
        return errors.InvalidInput(detail, problems)
    if isinstance(exc, client.Conflict):
        return errors.Conflict(detail)
    if isinstance(exc, client.PreconditionFailed):
        return errors.PreconditionFailed(detail)
    if isinstance(exc, client.Withheld):
        return errors.Withheld(detail)
    if isinstance(exc, client.Unauthorized):
        return errors.VaultError(f"the vault refused the API key (CCV_API_KEY): {detail}")
    return errors.VaultError(str(exc))


async def _translated(call: Awaitable[T]) -> T:
    try:
        return await call
    except client.VaultError as exc:
        raise domain_error(exc) from None


class RemoteBackend:
    """One agent's door into a running vault, as the tenant of `CCV_API_KEY`."""

    def __init__(self, vault: client.AsyncVault, agent_id: str, purpose: str | None = None) -> None:
        self._vault = vault
        self._agent_id = agent_id
        # Reads name a purpose: the one given, else the agent (DESIGN §8).
        self._purpose = purpose or agent_id

    @property
    def agent_id(self) -> str | None:
        """The agent named by `ccv mcp --agent-id`."""
        return self._agent_id

    @property
    def schema_key(self) -> str:
        """One process serves one agent of one tenant."""
        return self._agent_id

    async def definitions(self) -> list[FieldDefinition]:
        """The agent's active definitions."""
        return await _translated(self._vault.definitions.list(self._agent_id))

    async def customer_for_channel(self, channel: str, channel_user_id: str) -> str:
        """The customer a channel identity is linked to."""
        profile = await _translated(self._vault.profiles.by_channel(channel, channel_user_id))
        return profile.customer_id

    async def context(
        self, customer_id: str, *, scenario_id: str | None = None, step_id: str | None = None
    ) -> ContextView:
        """The prompt-ready context view (GET .../context as JSON; rendered by the server
        module as for the in-process backend)."""
        view = await _translated(
            self._vault.profiles.context(
                customer_id,
                agent_id=self._agent_id,
                scenario_id=scenario_id,
                step_id=step_id,
                purpose=self._purpose,
            )
        )
        if not isinstance(view, ContextView):  # format="json" (the default) is asked for
            raise errors.VaultError("the vault answered the context view as text")
        return view

    async def profile(self, customer_id: str) -> Profile:
        """The whole profile."""
        return await _translated(self._vault.profiles.get(customer_id, purpose=self._purpose))

    async def missing(
        self, customer_id: str, scenario_id: str, step_id: str | None = None
    ) -> MissingFields:
        """What the agent still has to collect."""
        return await _translated(
            self._vault.missing_fields(
                customer_id, agent_id=self._agent_id, scenario_id=scenario_id, step_id=step_id
            )
        )

    async def remember(self, customer_id: str, name: str, new: NewField) -> Remembered:
        """PUT .../fields/{name}."""
        written = await _translated(
            self._vault.fields.put(
                customer_id,
                name,
                value=new.value,
                source=new.source.value,
                source_item_id=new.source_item_id,
                source_item_type=new.source_item_type.value if new.source_item_type else None,
                source_session_id=new.source_session_id,
                confidence=new.confidence,
                verified=new.verified,
                verification_method=new.verification_method,
                agent_id=new.agent_id,
            )
        )
        warnings = tuple(
            errors.Problem(tuple(w.loc), w.msg, w.code) for w in written.validation_warnings or []
        )
        return Remembered(ProfileField.model_validate(written.model_dump()), warnings)

    async def forget(self, customer_id: str, name: str) -> None:
        """DELETE .../fields/{name}."""
        await _translated(self._vault.fields.delete(customer_id, name))

    async def link(self, customer_id: str, identity: NewIdentity) -> ChannelIdentity:
        """POST .../channel-identities."""
        return await _translated(
            self._vault.identities.link(
                customer_id, channel=identity.channel, channel_user_id=identity.channel_user_id
            )
        )

    async def consent(self, customer_id: str, consent_type: str, answer: ConsentAnswer) -> Consent:
        """PUT .../consents/{type}."""
        return await _translated(
            self._vault.consents.put(
                customer_id,
                consent_type,
                granted=answer.granted,
                source_session_id=answer.source_session_id,
            )
        )

    async def history(self, customer_id: str, name: str) -> list[ProfileField]:
        """GET .../fields/{name}/history, unless a read for the session's purpose may not
        see the field (Withheld, as in process)."""
        # A deleted or expired field (NotFound) still has its history to explain.
        with contextlib.suppress(errors.NotFound):
            await _translated(self._vault.fields.get(customer_id, name, purpose=self._purpose))
        return await _translated(self._vault.fields.history(customer_id, name))

    async def lineage(self, item_id: UUID, direction: Direction) -> Lineage:
        """GET /v1/lineage/{item_id}."""
        return await _translated(self._vault.lineage(item_id, direction=direction.value))


@asynccontextmanager
async def remote_backend(
    url: str, api_key: str, agent_id: str, purpose: str | None = None
) -> AsyncIterator[RemoteBackend]:
    """A backend on a client that is closed when the block ends."""
    async with client.AsyncVault(url, api_key) as vault:
        yield RemoteBackend(vault, agent_id, purpose)
