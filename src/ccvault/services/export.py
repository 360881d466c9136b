"""Export (an access request, DESIGN §8): everything the vault holds about a customer, as
one JSON document written piece by piece, so that a profile with any number of versions
is never held in memory at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

from pydantic import TypeAdapter

from ccvault.domain.audit import Action, AuditEntry
from ccvault.domain.caller import Caller
from ccvault.domain.models import ChannelIdentity, Consent, Profile, ProfileAsset, ProfileField
from ccvault.domain.privacy import ConsentRecord
from ccvault.domain.purposes import require_purpose, withheld
from ccvault.services.audit import AuditService
from ccvault.storage import export as export_sql
from ccvault.storage.db import Pool
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.schema import SchemaStore

_TEXT: TypeAdapter[str] = TypeAdapter(str)
_INSTANT: TypeAdapter[datetime] = TypeAdapter(datetime)
_IDENTITIES: TypeAdapter[list[ChannelIdentity]] = TypeAdapter(list[ChannelIdentity])
_CONSENTS: TypeAdapter[list[Consent]] = TypeAdapter(list[Consent])
_ANSWERS: TypeAdapter[list[ConsentRecord]] = TypeAdapter(list[ConsentRecord])
_AUDIT: TypeAdapter[list[AuditEntry]] = TypeAdapter(list[AuditEntry])


class ExportService:
    """Streams a profile's export; the profile is read (and a 404 decided) up front."""

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

    async def open(
        self, caller: Caller, customer_id: str, purpose: str | None = None
    ) -> AsyncIterator[bytes]:
        """The export of the profile `customer_id` names (an alias: its target) as JSON
        chunks: `{customer_id, exported_at, profile (with field_history), assets (every
        version), consents, channel_identities, audit}`. NotFound before any byte.

        Naming a `purpose` leaves out every version of each field that purpose may not
        see (as a profile read does) and lists them in the profile's `withheld_fields`."""
        require_purpose(purpose, caller.require_purpose)
        # From PostgreSQL, never the cache: an access request answers what is stored.
        profile, _ = await self._profiles.get_profile_versioned(caller.tenant_id, customer_id)
        if self._audit is not None:
            self._audit.read(caller, Action.profile_export, profile.customer_id, purpose=purpose)
        if purpose is None:
            return self._chunks(caller, profile, None)
        # Decided up front, over every version's definition (not only the active ones'),
        # since the versions themselves are streamed afterwards.
        uses = await export_sql.definition_uses(self._pool, caller.tenant_id, customer_id)
        judged = {u.field_definition_id for u in uses if u.field_definition_id is not None}
        rules = await self._schema.read_rules(caller.tenant_id, judged)
        hidden = withheld(purpose, uses, rules, profile.consents)
        names = {w.name for w in hidden}
        profile = profile.model_copy(
            update={
                "fields": {n: f for n, f in profile.fields.items() if n not in names},
                "withheld_fields": hidden,
            }
        )
        return self._chunks(caller, profile, (names, judged))

    async def _chunks(
        self, caller: Caller, profile: Profile, hide: tuple[set[str], set[UUID]] | None
    ) -> AsyncIterator[bytes]:
        """`hide`: for a purpose's export, the withheld names and the definitions that
        were judged (None: everything)."""
        exclude = {"field_history"} if hide is not None else {"field_history", "withheld_fields"}
        profile_json = profile.model_dump_json(exclude=exclude)
        target = profile.customer_id
        yield (
            b'{"customer_id":'
            + _TEXT.dump_json(target)
            + b',"exported_at":'
            + _INSTANT.dump_json(datetime.now(UTC))
            + b',"profile":'
            + profile_json[:-1].encode()
            + b',"field_history":{'
        )
        current: str | None = None
        async for page in export_sql.versions(
            self._pool, caller.tenant_id, target, "field_versions"
        ):
            parts = []
            for name, doc in page:
                version = ProfileField.model_validate_json(doc)
                if hide is not None and _hidden(version, *hide):
                    continue
                if name != current:
                    opener = b"" if current is None else b"],"
                    parts.append(opener + _TEXT.dump_json(name) + b":[")
                    current = name
                else:
                    parts.append(b",")
                parts.append(version.model_dump_json().encode())
            yield b"".join(parts)
        yield (b"]}}" if current is not None else b"}}") + b',"assets":['
        first = True
        async for page in export_sql.versions(
            self._pool, caller.tenant_id, target, "asset_versions"
        ):
            parts = []
            for _, doc in page:
                parts.append(b"" if first else b",")
                parts.append(ProfileAsset.model_validate_json(doc).model_dump_json().encode())
                first = False
            yield b"".join(parts)
        # Consents: the current answer per type, and every answer kept (consent_history);
        # identities as linked. The audit entries are every one sealed about the
        # customer, this export's own included (sealed first), oldest first.
        audit = [] if self._audit is None else await self._audit.entries_of(caller, target)
        answers = await export_sql.consent_history(self._pool, caller.tenant_id, target)
        yield (
            b'],"consents":'
            + _CONSENTS.dump_json(profile.consents)
            + b',"channel_identities":'
            + _IDENTITIES.dump_json(profile.channel_identities)
            + b',"audit":'
            + _AUDIT.dump_json(audit)
            + b',"consent_history":'
            + _ANSWERS.dump_json(_ANSWERS.validate_json(answers))
            + b"}"
        )


def _hidden(version: ProfileField, names: set[str], judged: set[UUID]) -> bool:
    """Is this version left out of a purpose's export? Its field is withheld, or it was
    written under a definition not judged when the export began (a write since: an
    export answers what was held when it began, and this one may not be shown)."""
    definition = version.field_definition_id
    return version.name in names or (definition is not None and definition not in judged)
