"""`AsyncVault`: the vault's HTTP API as awaitable, resource-shaped methods.

This file is the one written by hand. `_sync.py` (`Vault`) is generated from it by
`python src/ccvault/client/_unasync.py` (the async keywords dropped, `Async` names mapped to
their blocking twins, asyncio.sleep to time.sleep); a test fails when the two differ. What
a call sends and how its answer is read live in `_core.py` (no I/O), shared by both."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar
from uuid import UUID

import httpx

from ccvault.client import _core
from ccvault.client._core import Call, RetryPolicy, body, items, model, nothing, seg, with_etag
from ccvault.domain.answers import Page, WrittenField
from ccvault.domain.audit import AuditEntry
from ccvault.domain.context import ContextView
from ccvault.domain.events import Event, EventPage
from ccvault.domain.models import (
    ChannelIdentity,
    Consent,
    Lineage,
    Profile,
    ProfileAsset,
    ProfileField,
    ProfileSummary,
)
from ccvault.domain.privacy import Erasure, ProfileExport
from ccvault.domain.scenarios import Rule, Scenario
from ccvault.domain.schema import (
    FieldDefinition,
    MissingFields,
    Requirement,
    ReviewItem,
    ReviewQueue,
)
from ccvault.domain.webhooks import Delivery, Webhook

T = TypeVar("T")
_PROFILE = model(Profile)
_CONTEXT = model(ContextView)
_ERASURE = model(Erasure)
_EXPORT = model(ProfileExport)
_PROFILE_ETAG = with_etag(Profile)
_PROFILE_PAGE = model(Page[ProfileSummary])
_AUDIT_PAGE = model(Page[AuditEntry])
_FIELD = model(ProfileField)
_WRITTEN = model(WrittenField)
_FIELD_LIST = items(ProfileField)
_ASSET = model(ProfileAsset)
_ASSET_LIST = items(ProfileAsset)
_DEFINITION = model(FieldDefinition)
_DEFINITION_LIST = items(FieldDefinition)
_REQUIREMENT = model(Requirement)
_REQUIREMENT_LIST = items(Requirement)
_REVIEW_QUEUE = model(ReviewQueue)
_MISSING = model(MissingFields)
_EVENT_PAGE = model(EventPage)
_WEBHOOK = model(Webhook)
_WEBHOOK_LIST = items(Webhook)
_DELIVERY_LIST = items(Delivery)


class AsyncVault:
    """A client of one vault, as one tenant (its API key).

    `AsyncVault(base_url, api_key, timeout=10.0, retries=3)`; open it in `async with`, or
    call `aclose()` when done. GET, PUT and DELETE are retried `retries` times on
    connection errors and 502/503/504 (capped, jittered backoff; Retry-After honoured up
    to a cap); POST never is. Refusals raise `ccvault.client.errors.VaultError` subclasses.
    Results are the server's own pydantic models (`ccvault.domain`)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        retry_policy: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry_policy = retry_policy or RetryPolicy(retries=retries)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={**(headers or {}), "Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )
        self.profiles = AsyncProfiles(self)
        self.fields = AsyncFields(self)
        self.assets = AsyncAssets(self)
        self.consents = AsyncConsents(self)
        self.identities = AsyncIdentities(self)
        self.definitions = AsyncDefinitions(self)
        self.scenarios = AsyncScenarios(self)
        self.rules = AsyncRules(self)
        self.requirements = AsyncRequirements(self)
        self.review_queue = AsyncReviewQueuePages(self)
        self.events = AsyncEvents(self)
        self.webhooks = AsyncWebhooks(self)

    async def __aenter__(self) -> AsyncVault:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def send(self, call: Call[T]) -> T:
        """Send one call (retrying it when the policy allows) and read its answer."""
        policy = self.retry_policy
        attempt = 0
        while True:
            request = call.request(self._http)
            try:
                response = await self._http.send(request)
            except httpx.TransportError as error:
                delay = policy.after_error(call, attempt, error)
                if delay is None:
                    raise _core.unreachable(call, error) from error
            else:
                delay = policy.after_answer(call, attempt, response)
                if delay is None:
                    return call.answer(response)
            attempt += 1
            await asyncio.sleep(delay)

    async def lineage(
        self,
        item_id: UUID | str,
        *,
        direction: Literal["ancestors", "descendants"] = "ancestors",
        max_depth: int = 10,
    ) -> Lineage:
        """The item (depth 0) and its ancestors or descendants, ordered by depth."""
        return await self.send(
            Call(
                "GET",
                f"/v1/lineage/{seg(item_id)}",
                model(Lineage),
                params={"direction": direction, "max_depth": max_depth},
            )
        )

    async def missing_fields(
        self,
        customer_id: str,
        *,
        agent_id: str,
        scenario_id: str | None = None,
        step_id: str | None = None,
        rule_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> MissingFields:
        """What the agent still has to collect for a scenario (a step of it, or a rule), in
        collection order, and whether it can proceed. With `context` (facts of the
        conversation that conditions may use) it is the POST form."""
        path = f"/v1/profiles/{seg(customer_id)}/missing-fields"
        if context is None:
            params = {
                "agent_id": agent_id,
                "scenario_id": scenario_id,
                "step_id": step_id,
                "rule_id": rule_id,
            }
            return await self.send(Call("GET", path, _MISSING, params=params))
        sent = body(agent_id=agent_id, scenario_id=scenario_id, step_id=step_id, rule_id=rule_id)
        sent["context"] = dict(context)
        return await self.send(Call("POST", path, _MISSING, body=sent))


class _AsyncResource:
    def __init__(self, vault: AsyncVault) -> None:
        self._vault = vault


class AsyncProfiles(_AsyncResource):
    """`/v1/profiles`: create, read, list, verification level, merge, context view."""

    async def create(
        self,
        *,
        customer_id: str | None = None,
        channel_identities: Sequence[Mapping[str, Any]] | None = None,
    ) -> Profile:
        """Create a profile (its customer_id minted when not given); `Conflict` if it
        exists."""
        sent = body(customer_id=customer_id, channel_identities=channel_identities)
        return await self._vault.send(Call("POST", "/v1/profiles", _PROFILE, body=sent))

    async def get(
        self,
        customer_id: str,
        *,
        include_history: bool = False,
        as_of: datetime | str | None = None,
        purpose: str | None = None,
    ) -> Profile:
        """The current profile (with `field_history` when `include_history`; naming a
        `purpose` leaves out what it may not see, listed in `withheld_fields`). With
        `as_of` (an aware datetime or RFC 3339 text), the profile as it stood then."""
        if as_of is None:
            call = self._get(customer_id, include_history, purpose, _PROFILE)
            return await self._vault.send(call)
        params = _read_params(include_history, purpose, as_of)
        path = f"/v1/profiles/{seg(customer_id)}"
        return await self._vault.send(Call("GET", path, _PROFILE, params=params))

    async def get_with_etag(
        self, customer_id: str, *, include_history: bool = False, purpose: str | None = None
    ) -> tuple[Profile, str]:
        """The profile and its ETag, to pass as `if_match` to a write under it."""
        parse = _PROFILE_ETAG
        return await self._vault.send(self._get(customer_id, include_history, purpose, parse))

    def _get(
        self,
        customer_id: str,
        include_history: bool,
        purpose: str | None,
        parse: _core.Parse[T],
    ) -> Call[T]:
        params = _read_params(include_history, purpose)
        return Call("GET", f"/v1/profiles/{seg(customer_id)}", parse, params=params)

    async def by_channel(
        self,
        channel: str,
        channel_user_id: str,
        *,
        include_history: bool = False,
        purpose: str | None = None,
    ) -> Profile:
        """The profile a channel identity is linked to."""
        params = _read_params(include_history, purpose)
        path = f"/v1/profiles/by-channel/{seg(channel)}/{seg(channel_user_id)}"
        return await self._vault.send(Call("GET", path, _PROFILE, params=params))

    async def list(
        self, *, q: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[ProfileSummary]:
        """One page of live profiles, newest `updated_at` first (`q`: a customer id
        prefix). Pass `next_cursor` back as `cursor` for the next page."""
        params = {"q": q, "limit": limit, "cursor": cursor}
        return await self._vault.send(Call("GET", "/v1/profiles", _PROFILE_PAGE, params=params))

    async def iter_all(
        self, *, q: str | None = None, limit: int = 200
    ) -> AsyncIterator[ProfileSummary]:
        """Every live profile, page after page (`limit` per request)."""
        cursor: str | None = None
        while True:
            page = await self.list(q=q, limit=limit, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def patch(
        self, customer_id: str, *, verification_level: str, if_match: str | None = None
    ) -> Profile:
        """Set the profile's verification level."""
        sent = body(verification_level=verification_level)
        path = f"/v1/profiles/{seg(customer_id)}"
        return await self._vault.send(Call("PATCH", path, _PROFILE, body=sent, if_match=if_match))

    async def merge(
        self, customer_id: str, *, source_customer_id: str, if_match: str | None = None
    ) -> Profile:
        """Fold `source_customer_id` into this profile; its id becomes an alias of this one.
        `if_match` names this (the target) profile's version."""
        sent = body(source_customer_id=source_customer_id)
        path = f"/v1/profiles/{seg(customer_id)}/merge"
        return await self._vault.send(Call("POST", path, _PROFILE, body=sent, if_match=if_match))

    async def erase(self, customer_id: str, *, reason: str | None = None) -> Erasure:
        """Erase everything held about the customer, and every item derived from it, in
        one transaction (rows deleted, not flagged); a POST, so never retried. `reason` is
        kept on the receipt and must not name the customer."""
        sent = body(reason=reason)
        path = f"/v1/profiles/{seg(customer_id)}/erase"
        return await self._vault.send(Call("POST", path, _ERASURE, body=sent))

    async def export(self, customer_id: str, *, purpose: str | None = None) -> ProfileExport:
        """Everything held about the customer (an access request): the profile with every
        field version, every asset version, consents and identities; for a `purpose`,
        without the fields it may not see (listed in `profile.withheld_fields`)."""
        path = f"/v1/profiles/{seg(customer_id)}/export"
        return await self._vault.send(Call("GET", path, _EXPORT, params={"purpose": purpose}))

    async def audit(
        self, customer_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[AuditEntry]:
        """One page of the customer's audit entries, newest first (who wrote and read
        their data, and why). Pass `next_cursor` back as `cursor` for the next page."""
        path = f"/v1/profiles/{seg(customer_id)}/audit"
        params = {"limit": limit, "cursor": cursor}
        return await self._vault.send(Call("GET", path, _AUDIT_PAGE, params=params))

    async def iter_audit(self, customer_id: str, *, limit: int = 200) -> AsyncIterator[AuditEntry]:
        """Every audit entry of the customer, newest first, page after page."""
        cursor: str | None = None
        while True:
            page = await self.audit(customer_id, limit=limit, cursor=cursor)
            for entry in page.items:
                yield entry
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def context(
        self,
        customer_id: str,
        *,
        agent_id: str,
        scenario_id: str | None = None,
        step_id: str | None = None,
        purpose: str | None = None,
        format: Literal["json", "text"] = "json",
    ) -> ContextView | str:
        """The prompt-ready view of the profile for an agent: a `ContextView`
        (format="json") or the text to put in a prompt (format="text", a str)."""
        params = {
            "agent_id": agent_id,
            "scenario_id": scenario_id,
            "step_id": step_id,
            "purpose": purpose,
            "format": format,
        }
        path = f"/v1/profiles/{seg(customer_id)}/context"
        parse: _core.Parse[ContextView | str] = _core.text if format == "text" else _CONTEXT
        return await self._vault.send(Call("GET", path, parse, params=params))


def _read_params(
    include_history: bool, purpose: str | None, as_of: datetime | str | None = None
) -> dict[str, Any] | None:
    params = {
        "include": "history" if include_history else None,
        "purpose": purpose,
        # A naive datetime goes as it is: the server refuses an instant without an offset.
        "as_of": as_of.isoformat() if isinstance(as_of, datetime) else as_of,
    }
    return {k: v for k, v in params.items() if v is not None} or None


class AsyncFields(_AsyncResource):
    """`/v1/profiles/{customer_id}/fields`: versions of one named value."""

    async def put(
        self,
        customer_id: str,
        name: str,
        *,
        value: Any,
        source: str,
        value_type: str | None = None,
        source_item_id: str | UUID | None = None,
        source_item_type: str | None = None,
        source_metadata: Mapping[str, Any] | None = None,
        source_session_id: str | None = None,
        source_scenario_id: str | None = None,
        source_step_id: str | None = None,
        confidence: float | None = None,
        verified: bool | None = None,
        verification_method: str | None = None,
        verified_at: datetime | str | None = None,
        expires_at: datetime | str | None = None,
        requires_confirmation: bool | None = None,
        agent_id: str | None = None,
        if_match: str | None = None,
    ) -> WrittenField:
        """Write a new active version (the previous one becomes superseded); creates the
        profile if absent. Keys left None take the server's defaults."""
        sent = body(
            value_type=value_type,
            source=source,
            source_item_id=source_item_id,
            source_item_type=source_item_type,
            source_metadata=source_metadata,
            source_session_id=source_session_id,
            source_scenario_id=source_scenario_id,
            source_step_id=source_step_id,
            confidence=confidence,
            verified=verified,
            verification_method=verification_method,
            verified_at=verified_at,
            expires_at=expires_at,
            requires_confirmation=requires_confirmation,
            agent_id=agent_id,
        )
        sent["value"] = value  # null included: the server says why it is refused
        path = f"/v1/profiles/{seg(customer_id)}/fields/{seg(name)}"
        return await self._vault.send(Call("PUT", path, _WRITTEN, body=sent, if_match=if_match))

    async def get(
        self,
        customer_id: str,
        name: str,
        *,
        as_of: datetime | str | None = None,
        purpose: str | None = None,
    ) -> ProfileField:
        """The active version; `NotFound` when absent, deleted or expired, `Withheld`
        when a read for `purpose` may not see it. With `as_of`, the version active then."""
        path = f"/v1/profiles/{seg(customer_id)}/fields/{seg(name)}"
        params = _read_params(False, purpose, as_of)
        return await self._vault.send(Call("GET", path, _FIELD, params=params))

    async def history(self, customer_id: str, name: str) -> builtins.list[ProfileField]:
        """Every version, newest first, whatever its status."""
        path = f"/v1/profiles/{seg(customer_id)}/fields/{seg(name)}/history"
        return await self._vault.send(Call("GET", path, _FIELD_LIST))

    async def delete(self, customer_id: str, name: str, *, if_match: str | None = None) -> None:
        """Soft-delete the active version; `NotFound` the second time."""
        path = f"/v1/profiles/{seg(customer_id)}/fields/{seg(name)}"
        await self._vault.send(Call("DELETE", path, nothing, if_match=if_match))


class AsyncAssets(_AsyncResource):
    """Document references with the same lifecycle as fields."""

    async def add(
        self,
        customer_id: str,
        *,
        name: str,
        asset_type: str,
        storage_provider: str,
        storage_path: str,
        mime_type: str,
        size_bytes: int,
        checksum: str,
        source_item_id: str | UUID | None = None,
        source_item_type: str | None = None,
        derived_from_tool: str | None = None,
        expires_at: datetime | str | None = None,
        retention_policy: str | None = None,
        agent_id: str | None = None,
        if_match: str | None = None,
    ) -> ProfileAsset:
        """Add an asset; a current asset of the same name becomes superseded."""
        sent = body(
            name=name,
            asset_type=asset_type,
            storage_provider=storage_provider,
            storage_path=storage_path,
            mime_type=mime_type,
            size_bytes=size_bytes,
            checksum=checksum,
            source_item_id=source_item_id,
            source_item_type=source_item_type,
            derived_from_tool=derived_from_tool,
            expires_at=expires_at,
            retention_policy=retention_policy,
            agent_id=agent_id,
        )
        path = f"/v1/profiles/{seg(customer_id)}/assets"
        return await self._vault.send(Call("POST", path, _ASSET, body=sent, if_match=if_match))

    async def get(self, asset_id: UUID | str) -> ProfileAsset:
        """One asset version by id (deleted ones too, for audit)."""
        return await self._vault.send(Call("GET", f"/v1/assets/{seg(asset_id)}", _ASSET))

    async def list(
        self, customer_id: str, *, include_history: bool = False
    ) -> builtins.list[ProfileAsset]:
        """The profile's active assets (every version with `include_history`)."""
        params = {"include": "history"} if include_history else None
        path = f"/v1/profiles/{seg(customer_id)}/assets"
        return await self._vault.send(Call("GET", path, _ASSET_LIST, params=params))

    async def delete(self, asset_id: UUID | str) -> None:
        """Soft-delete an asset; `NotFound` the second time."""
        await self._vault.send(Call("DELETE", f"/v1/assets/{seg(asset_id)}", nothing))


class AsyncConsents(_AsyncResource):
    """`/v1/profiles/{customer_id}/consents`."""

    async def put(
        self,
        customer_id: str,
        consent_type: str,
        *,
        granted: bool,
        source_session_id: str | None = None,
        if_match: str | None = None,
    ) -> Consent:
        """Record whether the customer grants a consent type."""
        sent = body(granted=granted, source_session_id=source_session_id)
        path = f"/v1/profiles/{seg(customer_id)}/consents/{seg(consent_type)}"
        return await self._vault.send(
            Call("PUT", path, model(Consent), body=sent, if_match=if_match)
        )


class AsyncIdentities(_AsyncResource):
    """`/v1/profiles/{customer_id}/channel-identities`."""

    async def link(
        self,
        customer_id: str,
        *,
        channel: str,
        channel_user_id: str,
        verified: bool | None = None,
        primary: bool | None = None,
        if_match: str | None = None,
    ) -> ChannelIdentity:
        """Link a channel identity (no change when already linked here); `Conflict` when
        it belongs to another profile."""
        sent = body(
            channel=channel, channel_user_id=channel_user_id, verified=verified, primary=primary
        )
        path = f"/v1/profiles/{seg(customer_id)}/channel-identities"
        return await self._vault.send(
            Call("POST", path, model(ChannelIdentity), body=sent, if_match=if_match)
        )


class AsyncDefinitions(_AsyncResource):
    """`/v1/agents/{agent_id}/field-definitions`: an agent's schema."""

    async def put(
        self, agent_id: str, name: str, *, display_name: str, value_type: str, **attributes: Any
    ) -> FieldDefinition:
        """Create or replace a definition. `attributes` are the other keys of the server's
        `DefinitionBody` (description, validation_regex, allowed_values, collection_prompt,
        required_verification, retention_days, freshness_seconds, enabled...)."""
        sent = {"display_name": display_name, "value_type": value_type, **attributes}
        path = f"/v1/agents/{seg(agent_id)}/field-definitions/{seg(name)}"
        return await self._vault.send(Call("PUT", path, _DEFINITION, body=sent))

    async def get(self, agent_id: str, name: str) -> FieldDefinition:
        """One definition (active or suggested)."""
        path = f"/v1/agents/{seg(agent_id)}/field-definitions/{seg(name)}"
        return await self._vault.send(Call("GET", path, _DEFINITION))

    async def list(
        self, agent_id: str, *, status: Literal["active", "suggested"] = "active"
    ) -> builtins.list[FieldDefinition]:
        """The agent's definitions (`status="suggested"`: the extractor's suggestions)."""
        path = f"/v1/agents/{seg(agent_id)}/field-definitions"
        return await self._vault.send(
            Call("GET", path, _DEFINITION_LIST, params={"status": status})
        )

    async def delete(self, agent_id: str, name: str) -> None:
        """Retire a definition."""
        path = f"/v1/agents/{seg(agent_id)}/field-definitions/{seg(name)}"
        await self._vault.send(Call("DELETE", path, nothing))


class AsyncScenarios(_AsyncResource):
    """`/v1/agents/{agent_id}/scenarios`: texts whose requirements are extracted."""

    async def put(
        self,
        agent_id: str,
        scenario_id: str,
        *,
        name: str,
        description: str | None = None,
        conditions: Sequence[str] | None = None,
        steps: Sequence[Mapping[str, Any]] | None = None,
    ) -> Scenario:
        """Store the scenario; its requirement extraction is queued."""
        sent = body(name=name, description=description, conditions=conditions, steps=steps)
        path = f"/v1/agents/{seg(agent_id)}/scenarios/{seg(scenario_id)}"
        return await self._vault.send(Call("PUT", path, model(Scenario), body=sent))

    async def get(self, agent_id: str, scenario_id: str) -> Scenario:
        """The stored scenario and its extraction's status."""
        path = f"/v1/agents/{seg(agent_id)}/scenarios/{seg(scenario_id)}"
        return await self._vault.send(Call("GET", path, model(Scenario)))

    async def delete(self, agent_id: str, scenario_id: str) -> None:
        """Remove the scenario and its requirements."""
        path = f"/v1/agents/{seg(agent_id)}/scenarios/{seg(scenario_id)}"
        await self._vault.send(Call("DELETE", path, nothing))


class AsyncRules(_AsyncResource):
    """`/v1/agents/{agent_id}/rules`."""

    async def put(
        self,
        agent_id: str,
        rule_id: str,
        *,
        name: str,
        condition: str,
        action: str | None = None,
        scenario_id: str | None = None,
    ) -> Rule:
        """Store the rule; its requirement extraction is queued."""
        sent = body(name=name, condition=condition, action=action, scenario_id=scenario_id)
        path = f"/v1/agents/{seg(agent_id)}/rules/{seg(rule_id)}"
        return await self._vault.send(Call("PUT", path, model(Rule), body=sent))

    async def get(self, agent_id: str, rule_id: str) -> Rule:
        """The stored rule and its extraction's status."""
        path = f"/v1/agents/{seg(agent_id)}/rules/{seg(rule_id)}"
        return await self._vault.send(Call("GET", path, model(Rule)))

    async def delete(self, agent_id: str, rule_id: str) -> None:
        """Remove the rule and its requirements."""
        path = f"/v1/agents/{seg(agent_id)}/rules/{seg(rule_id)}"
        await self._vault.send(Call("DELETE", path, nothing))


class AsyncRequirements(_AsyncResource):
    """A scenario's requirements, manual and extracted, and their review."""

    async def list(self, agent_id: str, scenario_id: str) -> builtins.list[Requirement]:
        """By collection order, then field name."""
        path = f"/v1/agents/{seg(agent_id)}/scenarios/{seg(scenario_id)}/requirements"
        return await self._vault.send(Call("GET", path, _REQUIREMENT_LIST))

    async def put(
        self,
        agent_id: str,
        scenario_id: str,
        field_name: str,
        *,
        step_id: str | None = None,
        required_level: str | None = None,
        fallback_action: str | None = None,
        rule_id: str | None = None,
        when_condition: str | None = None,
        depends_on_fields: Sequence[str] | None = None,
        collection_order: int | None = None,
    ) -> Requirement:
        """Create or replace a manual requirement (no `step_id`: scenario-wide)."""
        sent = body(
            required_level=required_level,
            fallback_action=fallback_action,
            rule_id=rule_id,
            when_condition=when_condition,
            depends_on_fields=depends_on_fields,
            collection_order=collection_order,
        )
        path = (
            f"/v1/agents/{seg(agent_id)}/scenarios/{seg(scenario_id)}"
            f"/requirements/{seg(field_name)}"
        )
        return await self._vault.send(
            Call("PUT", path, _REQUIREMENT, params={"step_id": step_id}, body=sent)
        )

    async def delete(
        self, agent_id: str, scenario_id: str, field_name: str, *, step_id: str | None = None
    ) -> None:
        """Remove the requirement(s) for that field and step."""
        path = (
            f"/v1/agents/{seg(agent_id)}/scenarios/{seg(scenario_id)}"
            f"/requirements/{seg(field_name)}"
        )
        await self._vault.send(Call("DELETE", path, nothing, params={"step_id": step_id}))

    async def review(
        self, agent_id: str, requirement_id: UUID | str, *, decision: Literal["approve", "reject"]
    ) -> Requirement:
        """Approve (clears needs_human_review) or reject (no longer enforced)."""
        path = f"/v1/agents/{seg(agent_id)}/requirements/{seg(requirement_id)}/review"
        return await self._vault.send(Call("POST", path, _REQUIREMENT, body={"decision": decision}))


class AsyncReviewQueuePages(_AsyncResource):
    """Requirements waiting for review, oldest first: `vault.review_queue(agent_id)` is one
    page, `vault.review_queue.iter_all(agent_id)` every item."""

    async def __call__(
        self, agent_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> ReviewQueue:
        """One page; pass `next_cursor` back as `cursor` for the next."""
        path = f"/v1/agents/{seg(agent_id)}/review-queue"
        params = {"limit": limit, "cursor": cursor}
        return await self._vault.send(Call("GET", path, _REVIEW_QUEUE, params=params))

    async def iter_all(self, agent_id: str, *, limit: int = 200) -> AsyncIterator[ReviewItem]:
        """Every item waiting, page after page."""
        cursor: str | None = None
        while True:
            page = await self(agent_id, limit=limit, cursor=cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class AsyncEvents(_AsyncResource):
    """`/v1/events`: the change feed, in commit order."""

    async def list(
        self,
        *,
        after: str | None = None,
        limit: int = 50,
        types: Sequence[str] | None = None,
    ) -> EventPage:
        """One page of events after the cursor `after` (none: the oldest kept), of the
        given `types` (none: all). `next_cursor` is always given: pass it back as `after`;
        an empty page means nothing new yet."""
        params = {"after": after, "limit": limit, "types": ",".join(types) if types else None}
        return await self._vault.send(Call("GET", "/v1/events", _EVENT_PAGE, params=params))

    async def iter(
        self,
        *,
        after: str | None = None,
        types: Sequence[str] | None = None,
        limit: int = 200,
        follow: bool = False,
        poll_seconds: float = 1.0,
    ) -> AsyncIterator[Event]:
        """Every event after `after`, page after page; with `follow`, waits for new ones
        (asking every `poll_seconds` while the feed has nothing new) until stopped."""
        while True:
            page = await self.list(after=after, limit=limit, types=types)
            for event in page.items:
                yield event
            after = page.next_cursor
            if len(page.items) < limit:
                if not follow:
                    return
                await asyncio.sleep(poll_seconds)


class AsyncWebhooks(_AsyncResource):
    """`/v1/webhooks`: endpoints the vault POSTs events to, signed."""

    async def create(self, url: str, *, secret: str, types: Sequence[str] = ()) -> Webhook:
        """Register an endpoint for the given event `types` (none: all); each delivery is
        signed with `secret` (`CCV-Signature`), which is never answered back."""
        sent = {"url": url, "types": builtins.list(types), "secret": secret}
        return await self._vault.send(Call("POST", "/v1/webhooks", _WEBHOOK, body=sent))

    async def list(self) -> builtins.list[Webhook]:
        """The tenant's endpoints."""
        return await self._vault.send(Call("GET", "/v1/webhooks", _WEBHOOK_LIST))

    async def delete(self, webhook_id: UUID | str) -> None:
        """Remove an endpoint and its delivery log; `NotFound` the second time."""
        await self._vault.send(Call("DELETE", f"/v1/webhooks/{seg(webhook_id)}", nothing))

    async def deliveries(
        self, webhook_id: UUID | str, *, limit: int = 100
    ) -> builtins.list[Delivery]:
        """The endpoint's delivery attempts, newest first."""
        path = f"/v1/webhooks/{seg(webhook_id)}/deliveries"
        return await self._vault.send(Call("GET", path, _DELIVERY_LIST, params={"limit": limit}))
