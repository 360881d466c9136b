"""Reads as of an instant (DESIGN §8 "Time"): a profile or one field as a read at T would
have answered it, purpose filtering included (with the consents as they stood at T).
Never cached, no ETag: an answer about the past is no version of the profile."""

from __future__ import annotations

from datetime import datetime

from ccvault.domain.asof import past_instant
from ccvault.domain.audit import Action
from ccvault.domain.caller import Caller
from ccvault.domain.errors import NotFound, Withheld
from ccvault.domain.models import Profile, ProfileField
from ccvault.domain.purposes import definition_ids, for_purpose, require_purpose, withheld
from ccvault.services.audit import AuditService
from ccvault.storage.asof import profile_as_of
from ccvault.storage.db import Pool
from ccvault.storage.schema import SchemaStore


class AsOfService:
    """Profile and field reads at a past instant."""

    def __init__(
        self, pool: Pool, schema: SchemaStore, *, audit: AuditService | None = None
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._audit = audit

    def _read(
        self, caller: Caller, action: Action, customer_id: str, target: str, purpose: str | None
    ) -> None:
        if self._audit is not None:
            self._audit.read(caller, action, customer_id, target=target, purpose=purpose)

    async def profile(
        self,
        caller: Caller,
        customer_id: str,
        as_of: datetime,
        *,
        include_history: bool = False,
        purpose: str | None = None,
    ) -> Profile:
        """The profile at `as_of` (InvalidInput when that is in the future; NotFound when
        the id named no profile then). Naming a purpose leaves out what that purpose may
        not see, judged by today's definitions and the consents granted at `as_of`."""
        require_purpose(purpose, caller.require_purpose)
        at = past_instant(as_of)
        profile = await profile_as_of(
            self._pool, caller.tenant_id, customer_id, at, include_history=include_history
        )
        target = f"as_of/{at.isoformat()}"
        self._read(caller, Action.profile_read, profile.customer_id, target, purpose)
        if purpose is None:
            return profile
        rules = await self._schema.read_rules(caller.tenant_id, definition_ids(profile))
        return for_purpose(profile, purpose, rules)

    async def field(
        self,
        caller: Caller,
        customer_id: str,
        name: str,
        as_of: datetime,
        *,
        purpose: str | None = None,
    ) -> ProfileField:
        """The version of field `name` that was active at `as_of` (NotFound when there was
        none: absent, deleted, superseded, expired or orphaned then; Withheld when a read
        for `purpose` may not see it)."""
        require_purpose(purpose, caller.require_purpose)
        at = past_instant(as_of)
        profile = await profile_as_of(self._pool, caller.tenant_id, customer_id, at)
        field = profile.fields.get(name)
        if field is None:
            raise NotFound(f"no active field {name!r} for {customer_id!r} at {at.isoformat()}")
        if purpose is not None and field.field_definition_id is not None:
            rules = await self._schema.read_rules(caller.tenant_id, [field.field_definition_id])
            for hidden in withheld(purpose, [field], rules, profile.consents):
                why = "its definition does not list that purpose"
                if hidden.reason == "consent":
                    why = "the customer had not granted the consent its definition names"
                raise Withheld(f"field {name!r} is withheld from reads for {purpose!r}: {why}")
        target = f"{name}@{at.isoformat()}"
        self._read(caller, Action.field_read, profile.customer_id, target, purpose)
        return field
