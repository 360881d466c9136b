"""The vault's vocabulary: items, their lifecycle and provenance, profiles and lineage."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

CALLER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$"
FIELD_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,49}$"
CHANNEL_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class ItemStatus(StrEnum):
    """Lifecycle of a field or asset version; `superseded` wins over the others."""

    active = "active"
    superseded = "superseded"
    expired = "expired"
    orphaned = "orphaned"


class Source(StrEnum):
    """Where a value came from."""

    user_provided = "user_provided"
    llm_extracted = "llm_extracted"
    tool_result = "tool_result"
    document_extracted = "document_extracted"
    human_entered = "human_entered"
    system_inferred = "system_inferred"


class SourceItemType(StrEnum):
    """What `source_item_id` refers to; only our own items are checked and can orphan."""

    profile_field = "profile_field"
    profile_asset = "profile_asset"
    session = "session"
    tool = "tool"
    external = "external"

    @property
    def is_vault_item(self) -> bool:
        """True when the source is a field or asset of this vault (a UUID we can follow)."""
        return self in (SourceItemType.profile_field, SourceItemType.profile_asset)


class ValueType(StrEnum):
    """Types a field value can be declared as."""

    string = "string"
    email = "email"
    phone = "phone"
    date = "date"
    datetime = "datetime"
    number = "number"
    integer = "integer"
    boolean = "boolean"
    url = "url"
    json = "json"


class VerificationLevel(StrEnum):
    """How far the customer's identity has been verified (DESIGN §8), weakest first."""

    unverified = "unverified"
    email_verified = "email_verified"
    phone_verified = "phone_verified"
    document_verified = "document_verified"
    kyc_complete = "kyc_complete"


class Direction(StrEnum):
    """Which way a lineage traversal walks."""

    ancestors = "ancestors"
    descendants = "descendants"


class _Record(BaseModel):
    # Attribute docstrings become the fields' descriptions in the OpenAPI document.
    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)


class WrittenBy(_Record):
    """Who wrote a version: the API key (None when no key applied, e.g. a library call)
    and the agent the request named (None when it named none)."""

    key_id: UUID | None = None
    """The id of the API key that wrote it (null for writes made without a key)."""
    agent_id: str | None = None
    """The agent the write named (null when it named none)."""


class ProfileField(_Record):
    """One version of a typed value about a customer, with its provenance and lifecycle."""

    id: UUID
    """The id of this version, minted by the vault; a later version gets a new one."""
    name: str
    """The field name (`^[a-z_][a-z0-9_]{0,49}$`)."""
    value: Any
    """The value, stored normalized to its type: numbers from numeric strings, dates as YYYY-MM-DD,
    datetimes in ISO 8601 UTC, emails with a lowercased domain, phones in E.164, JSON text
    parsed."""
    value_type: ValueType
    """The type the value was checked and normalized as."""
    status: ItemStatus
    """Where this version is in its lifecycle; reads report `expired` once `expires_at` has passed.
    Where this version is in its lifecycle; reads report `expired` once `expires_at` has passed."""
    source: Source
    """Where the value came from."""
    source_item_id: str | None = None
    """The item this value derives from: a field or asset id of this vault, or an outside reference
    (session, tool, external)."""
    source_item_type: SourceItemType | None = None
    """What `source_item_id` refers to; only `profile_field` and `profile_asset` sources are
    followed by lineage and can orphan this item."""
    source_metadata: dict[str, Any] = Field(default_factory=dict)
    """Free-form details about the source, as the writer gave them."""
    source_session_id: str | None = None
    """The conversation or session the value was collected in."""
    source_scenario_id: str | None = None
    """The scenario that asked for the value."""
    source_step_id: str | None = None
    """The step of that scenario."""
    confidence: float
    """How sure the writer was, from 0 to 1."""
    verified: bool
    """Whether the value has been verified."""
    verification_method: str | None = None
    """How it was verified (e.g. `otp`, `document_check`)."""
    verified_at: datetime | None = None
    """When it was verified (set to the write time when `verified` came without it)."""
    requires_confirmation: bool
    """Whether the agent should confirm the value with the customer before relying on it."""
    collected_at: datetime
    """When this version was written."""
    updated_at: datetime
    """When this version last changed (status, deletion)."""
    expires_at: datetime | None = None
    """When the value stops counting as current (from the request, or the definition's
    `retention_days`)."""
    superseded_by_id: UUID | None = None
    """The version that replaced this one, once superseded."""
    superseded_at: datetime | None = None
    """When this version was superseded."""
    deleted_at: datetime | None = None
    """When this version was soft-deleted; it stays in history and lineage."""
    is_orphaned: bool
    """True when the vault item this value derives from was deleted."""
    field_definition_id: UUID | None = None
    """The agent's definition the value was validated against, if any."""
    written_by: WrittenBy = Field(default_factory=WrittenBy)
    """Which API key wrote this version, and for which agent."""


class ProfileAsset(_Record):
    """One version of a document reference (the bytes live in the caller's storage)."""

    id: UUID
    """The id of this version, minted by the vault."""
    name: str
    """The asset's name in the profile; a new asset of the same name supersedes this one."""
    asset_type: str
    """The kind of document (e.g. `document`, `image`)."""
    storage_provider: str
    """Where the bytes are kept (e.g. `s3`): the vault stores only the reference."""
    storage_path: str
    """The location of the bytes with that provider."""
    mime_type: str
    """The media type of the bytes."""
    size_bytes: int
    """The size of the bytes."""
    checksum: str
    """The checksum of the bytes, as the writer computed it (e.g. `sha256:...`)."""
    status: ItemStatus
    """Where this version is in its lifecycle; reads report `expired` once `expires_at` has passed.
    Where this version is in its lifecycle; reads report `expired` once `expires_at` has passed."""
    source_item_id: str | None = None
    """The item this asset derives from, as for fields."""
    source_item_type: SourceItemType | None = None
    """What `source_item_id` refers to."""
    derived_from_tool: str | None = None
    """The tool that produced the asset, if a tool did."""
    verified: bool
    """Whether the document has been verified."""
    verification_result: Any = None
    """The outcome of the verification, in the verifier's own shape."""
    retention_policy: str
    """How long the document is to be kept (`permanent` unless the writer said otherwise)."""
    uploaded_at: datetime
    """When this version was written."""
    expires_at: datetime | None = None
    """When the asset stops counting as current."""
    superseded_by_id: UUID | None = None
    """The version that replaced this one, once superseded."""
    superseded_at: datetime | None = None
    """When this version was superseded."""
    deleted_at: datetime | None = None
    """When this version was soft-deleted; `GET /v1/assets/{asset_id}` still returns it."""
    is_orphaned: bool
    """True when the vault item this asset derives from was deleted."""
    analysis_field_ids: list[UUID] = Field(default_factory=list)
    """Fields whose values were extracted from this document."""
    written_by: WrittenBy = Field(default_factory=WrittenBy)
    """Which API key wrote this version, and for which agent."""


class ChannelIdentity(_Record):
    """A handle under which the customer reaches the agent (phone number, chat user...)."""

    channel: str
    """The channel (`^[a-z][a-z0-9_]{0,31}$`, e.g. `whatsapp`)."""
    channel_user_id: str
    """The customer's handle on that channel (a phone number, a chat user id...)."""
    verified: bool
    """Whether the customer has proven they own the handle."""
    primary: bool
    """Whether this is the customer's preferred handle on that channel."""
    created_at: datetime
    """When the identity was linked to the profile."""


class Consent(_Record):
    """The customer's current answer for one kind of consent."""

    consent_type: str
    """The kind of consent (e.g. `marketing_email`)."""
    granted: bool
    """The customer's current answer."""
    granted_at: datetime | None = None
    """When consent was last granted."""
    revoked_at: datetime | None = None
    """When consent was last revoked."""
    source_session_id: str | None = None
    """The session in which the customer answered."""
    updated_at: datetime
    """When the answer was last recorded."""


class WithheldField(_Record):
    """A field held but left out of a read naming a purpose (never its value)."""

    name: str
    """The field name."""
    reason: Literal["purpose", "consent"]
    """`purpose`: its definition lists purposes without the read's; `consent`: the
    customer has not granted the consent its definition names."""


class StatusSummary(_Record):
    """How many non-deleted field versions the profile has in each status."""

    active: int = 0
    """Current versions."""
    superseded: int = 0
    """Versions replaced by a later one."""
    expired: int = 0
    """Versions past their `expires_at`."""
    orphaned: int = 0
    """Versions whose source was deleted."""


class Profile(_Record):
    """Everything currently known about one customer of one tenant."""

    customer_id: str
    """The customer's id (the target's, when the request named an alias left by a merge)."""
    created_at: datetime
    """When the profile was created."""
    updated_at: datetime
    """When anything in the profile last changed."""
    verification_level: VerificationLevel
    """How well the customer's identity is established."""
    channel_identities: list[ChannelIdentity]
    """The handles the customer reaches the agent under."""
    consents: list[Consent]
    """The customer's answer for each kind of consent."""
    fields: dict[str, ProfileField]
    """The current value of each field, by name (active, non-deleted versions only)."""
    assets: list[ProfileAsset]
    """The current assets."""
    field_status_summary: StatusSummary
    """How many non-deleted field versions are in each status."""
    field_history: dict[str, list[ProfileField]] | None = None
    """Every version of each field, newest first (only with `?include=history`)."""
    withheld_fields: list[WithheldField] | None = None
    """Only in answers to reads naming a `purpose`: the fields left out, and why."""


class ProfileSummary(_Record):
    """One line of the operators' profile list."""

    customer_id: str
    """The caller's id for the customer."""
    created_at: datetime
    """When the profile was created."""
    updated_at: datetime
    """When anything in the profile last changed."""
    verification_level: VerificationLevel
    """How well the customer's identity is established."""
    active_fields: int
    """How many fields hold an active value."""


class LineageEntry(_Record):
    """One step of a lineage chain; depth 0 is the item itself."""

    depth: int
    """Steps from the item asked about (0 is the item itself)."""
    item_id: UUID
    """The field or asset version."""
    item_type: SourceItemType
    """Whether it is a field or an asset."""
    name: str
    """Its field or asset name."""
    status: ItemStatus
    """Its lifecycle status."""
    deleted_at: datetime | None = None
    """When it was soft-deleted, if it was."""
    source_item_id: str | None = None
    """What it derives from in turn."""


class Lineage(_Record):
    """An item and the chain of its ancestors or descendants."""

    # Left to right: a field (the common case) parses at the first try, with no failed
    # attempt at an asset; an asset document lacks a field's required keys.
    item: Annotated[ProfileField | ProfileAsset, Field(union_mode="left_to_right")]
    """The item asked about, in full (a Field or an Asset)."""
    chain: list[LineageEntry]
    """The item (depth 0) and its ancestors or descendants, ordered by depth."""
    truncated: bool
    """True when more items lie beyond `max_depth`."""
    cycle_detected: bool
    """True when the chain loops back on itself (the walk stops there)."""


class Tenant(_Record):
    """A customer of the vault: its own profiles, keys and validation mode."""

    tenant_id: UUID
    """The tenant's id."""
    name: str
    """The tenant's name."""
    validation_mode: str
    """How field writes are validated: `strict` refuses, `warn` stores with warnings, `disabled`
    checks nothing."""
    created_at: datetime
    """When the tenant was created."""
    require_purpose: bool = False
    """Whether reads of profiles, fields, exports and context must name a `purpose`
    (422 otherwise)."""
    history_retention_days: int | None = None
    """Days its superseded, deleted and expired versions are kept before the daily
    retention job deletes them (null: forever)."""


class ApiKey(_Record):
    """One of a tenant's API keys as operators see it (never the key itself)."""

    key_id: UUID
    """The key's id."""
    label: str | None = None
    """The label given at creation, if any."""
    created_at: datetime
    """When the key was created."""
    last_used_at: datetime | None = None
    """When the key was last used (updated at most once a minute)."""
    revoked_at: datetime | None = None
    """When the key was revoked; a revoked key is refused."""


class ValidationMode(StrEnum):
    """How strictly field values are checked against their definitions."""

    strict = "strict"
    warn = "warn"
    disabled = "disabled"
