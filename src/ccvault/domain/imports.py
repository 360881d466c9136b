"""Bulk import and export shapes (DESIGN §8 "Scale"): one line of NDJSON per profile.

A line is `{customer_id, fields: {name: value | {value, ...}}, channel_identities?,
consents?}`. A field given as a bare value is a value of its JSON type, as a field write
without `value_type`; given as an object it is a field write's body (without the vault
links an import cannot resolve) plus `collected_at`. An object value must therefore use
the object form: `{"value": {...}}`. Export writes the object form, so export → import
round-trips.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import Field, StringConstraints, field_validator, model_validator

from ccvault.domain.bounds import MAX_VALUE_BYTES, Instant
from ccvault.domain.inputs import Input
from ccvault.domain.models import CALLER_ID_PATTERN, FIELD_NAME_PATTERN, Source
from ccvault.domain.writes import ConsentAnswer, NewField, NewIdentity

FieldNameKey = Annotated[str, StringConstraints(pattern=FIELD_NAME_PATTERN)]
# A line is one profile: past this it is refused without being parsed (it could not be
# stored anyway: a profile holds at most 1 MiB of current values).
MAX_LINE_BYTES = 2 * 1024 * 1024
# Clocks of the importing system and ours may differ a little.
_CLOCK_SKEW = timedelta(minutes=5)
# Fields of a line at most (a profile holds at most 200 current fields).
MAX_LINE_FIELDS = 200


class ImportedField(NewField):
    """One field of an imported line, in its object form: a field write's body with
    `collected_at`; `source` defaults to `human_entered` (a CRM's data was typed in)."""

    source: Source = Source.human_entered
    """Where the value came from (default `human_entered`)."""
    collected_at: Instant | None = None
    """When the value was collected (default: the time of the import); not in the future.
    Without an offset it is read as UTC."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # Replaces Input's check: the line holding this field was checked whole.
        return data

    @field_validator("collected_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value > datetime.now(UTC) + _CLOCK_SKEW:
            raise ValueError("collected_at must not be in the future")
        return value

    @model_validator(mode="after")
    def _no_vault_links(self) -> Self:
        # Item ids are minted per vault: an imported file cannot name this vault's items
        # (export leaves such links out).
        if self.source_item_type is not None and self.source_item_type.is_vault_item:
            raise ValueError(
                "an import cannot link to a vault item (profile_field, profile_asset); "
                "session, tool and external sources are kept"
            )
        return self


class ImportLine(Input):
    """One line of `POST /v1/profiles/import`: a profile and what to write to it. Every
    field is validated and normalized as a field write is; a line is stored whole or not
    at all."""

    customer_id: Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)]
    """The profile (created when absent; an alias writes to its target)."""
    fields: dict[FieldNameKey, Any] = Field(default_factory=dict, max_length=MAX_LINE_FIELDS)
    """Field name → a bare value, or an object `{value, value_type?, source?, confidence?,
    verified?, verification_method?, verified_at?, collected_at?, expires_at?,
    source_metadata?, source_session_id?, agent_id?, ...}` (a field write's body)."""
    channel_identities: list[NewIdentity] = Field(default_factory=list, max_length=50)
    """Channel handles to link to the profile (a handle of another profile fails the line)."""
    consents: dict[FieldNameKey, bool | ConsentAnswer] = Field(default_factory=dict, max_length=50)
    """Consent type → granted (a boolean) or `{granted, source_session_id?}`."""

    @model_validator(mode="after")
    def _identities_consistent(self) -> Self:
        if sum(i.primary for i in self.channel_identities) > 1:
            raise ValueError("at most one identity of a profile is primary")
        seen = {(i.channel, i.channel_user_id) for i in self.channel_identities}
        if len(seen) != len(self.channel_identities):
            raise ValueError("an identity is listed twice")
        return self


def field_of(raw: Any) -> ImportedField:
    """The object form of a line's field (a bare value becomes `{"value": raw}`)."""
    if isinstance(raw, dict):
        return ImportedField.model_validate(raw)
    if _plain(raw):
        # What validating `{"value": raw}` gives, at half the cost: every other attribute
        # is its default, and no validator can refuse such a value (not null, finite,
        # far below the size limit: a character is at most 6 bytes of JSON).
        return _BARE.model_copy(update={"value": raw})
    return ImportedField.model_validate({"value": raw})


def _plain(raw: Any) -> bool:
    """A bare value no validator of ImportedField can refuse."""
    kind = type(raw)
    if kind is str:
        return len(raw) <= _PLAIN_CHARS
    if kind is bool:
        return True
    if kind is int:
        return bool(-_PLAIN_INT < raw < _PLAIN_INT)
    return kind is float and math.isfinite(raw)


_PLAIN_CHARS = (MAX_VALUE_BYTES - 2) // 6
_PLAIN_INT = 10**18
_BARE = ImportedField.model_validate({"value": True})


def consent_of(raw: bool | ConsentAnswer) -> ConsentAnswer:
    """The object form of a line's consent."""
    return ConsentAnswer(granted=raw) if isinstance(raw, bool) else raw
