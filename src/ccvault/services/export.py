"""Export (an access request, DESIGN §8): everything the vault holds about a customer, as
one JSON document written piece by piece, so that a profile with any number of versions
is never held in memory at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from pydantic import TypeAdapter

from ccvault.domain.caller import Caller
from ccvault.domain.models import ChannelIdentity, Consent, Profile, ProfileAsset, ProfileField
from ccvault.storage import export as export_sql
from ccvault.storage.db import Pool
from ccvault.storage.profiles import ProfileStore

_TEXT: TypeAdapter[str] = TypeAdapter(str)
_INSTANT: TypeAdapter[datetime] = TypeAdapter(datetime)
_IDENTITIES: TypeAdapter[list[ChannelIdentity]] = TypeAdapter(list[ChannelIdentity])
_CONSENTS: TypeAdapter[list[Consent]] = TypeAdapter(list[Consent])


class ExportService:
    """Streams a profile's export; the profile is read (and a 404 decided) up front."""

    def __init__(self, pool: Pool, profiles: ProfileStore) -> None:
        self._pool = pool
        self._profiles = profiles

    async def open(self, caller: Caller, customer_id: str) -> AsyncIterator[bytes]:
        """The export of the profile `customer_id` names (an alias: its target) as JSON
        chunks: `{customer_id, exported_at, profile (with field_history), assets (every
        version), consents, channel_identities, audit}`. NotFound before any byte."""
        # From PostgreSQL, never the cache: an access request answers what is stored.
        profile, _ = await self._profiles.get_profile_versioned(caller.tenant_id, customer_id)
        return self._chunks(caller, profile)

    async def _chunks(self, caller: Caller, profile: Profile) -> AsyncIterator[bytes]:
        profile_json = profile.model_dump_json(exclude={"field_history", "withheld_fields"})
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
                if name != current:
                    opener = b"" if current is None else b"],"
                    parts.append(opener + _TEXT.dump_json(name) + b":[")
                    current = name
                else:
                    parts.append(b",")
                parts.append(ProfileField.model_validate_json(doc).model_dump_json().encode())
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
        # Consents are kept as the customer's current answer per type (no history table
        # exists); identities as linked. The audit log does not exist yet (issue 13.5):
        # its entries will join the export when it does.
        yield (
            b'],"consents":'
            + _CONSENTS.dump_json(profile.consents)
            + b',"channel_identities":'
            + _IDENTITIES.dump_json(profile.channel_identities)
            + b',"audit":[]}'
        )
