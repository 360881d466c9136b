"""Profiles: create, list, read (by id or channel identity), verification level,
identities, consents and merge."""

from __future__ import annotations

from functools import partial

from ccvault.domain.answers import Page
from ccvault.domain.audit import Action, note
from ccvault.domain.caller import Caller
from ccvault.domain.etags import IfMatch
from ccvault.domain.models import (
    ChannelIdentity,
    Consent,
    Profile,
    ProfileSummary,
    VerificationLevel,
)
from ccvault.domain.purposes import definition_ids, for_purpose, require_purpose
from ccvault.domain.writes import ConsentAnswer, NewIdentity
from ccvault.services.audit import AuditService
from ccvault.services.profile_list import list_profiles
from ccvault.storage.db import Pool
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.schema import SchemaStore


class ProfileService:
    """Whole-profile use cases; each write takes the profile's lock (and If-Match)."""

    def __init__(
        self,
        pool: Pool,
        profiles: ProfileStore,
        schema: SchemaStore,
        *,
        audit: AuditService | None = None,
    ) -> None:
        self._pool = pool
        self._profiles = profiles
        self._schema = schema
        self._audit = audit

    async def create(
        self, caller: Caller, customer_id: str | None, identities: list[NewIdentity]
    ) -> str:
        """A new profile (its id minted when None) with its identities; Conflict if the
        id exists. Answers the customer id."""
        return await self._profiles.create_profile(
            caller.tenant_id,
            customer_id,
            identities,
            audit=partial(note, caller, Action.profile_create),
        )

    async def list(
        self, caller: Caller, *, q: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[ProfileSummary]:
        """Live profiles, newest `updated_at` first; `q` is a customer id prefix."""
        return await list_profiles(self._pool, caller, q=q, limit=limit, cursor=cursor)

    async def get(
        self,
        caller: Caller,
        customer_id: str,
        *,
        include_history: bool = False,
        purpose: str | None = None,
        audited: bool = True,
    ) -> tuple[Profile, int]:
        """The profile and its version (the ETag's number); naming a purpose leaves out
        (and lists in `withheld_fields`) what that purpose may not see. `audited=False`
        for a write's own answer (the write's entry says it all)."""
        require_purpose(purpose, caller.require_purpose)
        profile, version = await self._profiles.get_profile_versioned(
            caller.tenant_id, customer_id, include_history=include_history
        )
        if purpose is not None:
            profile = await self.for_purpose(caller, profile, purpose)
        if audited:
            # Under the customer the profile belongs to (an alias's target).
            target = "history" if include_history else None
            self._read(caller, profile.customer_id, purpose, target)
        return profile, version

    async def for_purpose(self, caller: Caller, profile: Profile, purpose: str) -> Profile:
        """The profile as a read for `purpose` sees it (filtered after the read, so the
        cache only ever holds the whole profile and no purpose's view reaches another)."""
        rules = await self._schema.read_rules(caller.tenant_id, definition_ids(profile))
        return for_purpose(profile, purpose, rules)

    async def get_json(
        self, caller: Caller, customer_id: str, *, audited: bool = True
    ) -> tuple[bytes, int]:
        """The hot read: the profile's JSON as cached (one cache hit or one query) and its
        version, never decoded and encoded again."""
        require_purpose(None, caller.require_purpose)
        body, version, owner = await self._profiles.read_profile_json_owned(
            caller.tenant_id, customer_id
        )
        if audited:
            self._read(caller, owner, None, None)
        return body, version

    def _read(
        self, caller: Caller, customer_id: str, purpose: str | None, target: str | None
    ) -> None:
        if self._audit is not None:
            self._audit.read(
                caller, Action.profile_read, customer_id, target=target, purpose=purpose
            )

    async def customer_for_channel(self, caller: Caller, channel: str, channel_user_id: str) -> str:
        """The customer id a channel identity is linked to; NotFound otherwise."""
        return await self._profiles.customer_for_channel(caller.tenant_id, channel, channel_user_id)

    async def set_verification_level(
        self,
        caller: Caller,
        customer_id: str,
        level: VerificationLevel,
        *,
        if_match: IfMatch | None = None,
    ) -> str:
        """Set the level (an alias acts on its target); answers the target's id."""
        return await self._profiles.set_verification_level(
            caller.tenant_id,
            customer_id,
            level,
            if_match=if_match,
            audit=note(caller, Action.profile_patch, customer_id, target="verification_level"),
        )

    async def link_identity(
        self,
        caller: Caller,
        customer_id: str,
        identity: NewIdentity,
        *,
        if_match: IfMatch | None = None,
    ) -> tuple[ChannelIdentity, bool]:
        """Link a channel identity: (identity, True) when new, False when already linked
        here; Conflict when linked to another profile."""
        return await self._profiles.link_identity(
            caller.tenant_id,
            customer_id,
            identity,
            if_match=if_match,
            audit=note(caller, Action.identity_link, customer_id, target=identity.channel),
        )

    async def put_consent(
        self,
        caller: Caller,
        customer_id: str,
        consent_type: str,
        answer: ConsentAnswer,
        *,
        if_match: IfMatch | None = None,
    ) -> Consent:
        """Record whether the customer grants a consent type."""
        return await self._profiles.put_consent(
            caller.tenant_id,
            customer_id,
            consent_type,
            answer,
            if_match=if_match,
            audit=note(caller, Action.consent_put, customer_id, target=consent_type),
        )

    async def merge(
        self,
        caller: Caller,
        customer_id: str,
        source_customer_id: str,
        *,
        if_match: IfMatch | None = None,
    ) -> str:
        """Fold the source profile into this one (its id becomes an alias); answers the
        target's id. If-Match names the target's version."""
        # The source is named by its subject hash too: never by its id.
        source = note(caller, Action.profile_merge, source_customer_id).subject_hash
        return await self._profiles.merge(
            caller.tenant_id,
            customer_id,
            source_customer_id,
            if_match=if_match,
            audit=note(caller, Action.profile_merge, customer_id, target=source),
        )
