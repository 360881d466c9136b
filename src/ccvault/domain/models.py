"""The vault's vocabulary: items, their lifecycle and provenance, profiles and lineage."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
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
    model_config = ConfigDict(frozen=True, extra="ignore")


class WrittenBy(_Record):
    """Who wrote a version: the API key (None when no key applied, e.g. a library call)
    and the agent the request named (None when it named none)."""

    key_id: UUID | None = None
    agent_id: str | None = None


class ProfileField(_Record):
    """One version of a typed value about a customer, with its provenance and lifecycle."""

    id: UUID
    name: str
    value: Any
    value_type: ValueType
    status: ItemStatus
    source: Source
    source_item_id: str | None = None
    source_item_type: SourceItemType | None = None
    source_metadata: dict[str, Any] = Field(default_factory=dict)
    source_session_id: str | None = None
    source_scenario_id: str | None = None
    source_step_id: str | None = None
    confidence: float
    verified: bool
    verification_method: str | None = None
    verified_at: datetime | None = None
    requires_confirmation: bool
    collected_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    superseded_by_id: UUID | None = None
    superseded_at: datetime | None = None
    deleted_at: datetime | None = None
    is_orphaned: bool
    field_definition_id: UUID | None = None
    written_by: WrittenBy = Field(default_factory=WrittenBy)


class ProfileAsset(_Record):
    """One version of a document reference (the bytes live in the caller's storage)."""

    id: UUID
    name: str
    asset_type: str
    storage_provider: str
    storage_path: str
    mime_type: str
    size_bytes: int
    checksum: str
    status: ItemStatus
    source_item_id: str | None = None
    source_item_type: SourceItemType | None = None
    derived_from_tool: str | None = None
    verified: bool
    verification_result: Any = None
    retention_policy: str
    uploaded_at: datetime
    expires_at: datetime | None = None
    superseded_by_id: UUID | None = None
    superseded_at: datetime | None = None
    deleted_at: datetime | None = None
    is_orphaned: bool
    analysis_field_ids: list[UUID] = Field(default_factory=list)
    written_by: WrittenBy = Field(default_factory=WrittenBy)


class ChannelIdentity(_Record):
    """A handle under which the customer reaches the agent (phone number, chat user...)."""

    channel: str
    channel_user_id: str
    verified: bool
    primary: bool
    created_at: datetime


class Consent(_Record):
    """The customer's current answer for one kind of consent."""

    consent_type: str
    granted: bool
    granted_at: datetime | None = None
    revoked_at: datetime | None = None
    source_session_id: str | None = None
    updated_at: datetime


class StatusSummary(_Record):
    """How many non-deleted field versions the profile has in each status."""

    active: int = 0
    superseded: int = 0
    expired: int = 0
    orphaned: int = 0


class Profile(_Record):
    """Everything currently known about one customer of one tenant."""

    customer_id: str
    created_at: datetime
    updated_at: datetime
    verification_level: VerificationLevel
    channel_identities: list[ChannelIdentity]
    consents: list[Consent]
    fields: dict[str, ProfileField]
    assets: list[ProfileAsset]
    field_status_summary: StatusSummary
    field_history: dict[str, list[ProfileField]] | None = None


class ProfileSummary(_Record):
    """One line of the operators' profile list."""

    customer_id: str
    created_at: datetime
    updated_at: datetime
    verification_level: VerificationLevel
    active_fields: int


class LineageEntry(_Record):
    """One step of a lineage chain; depth 0 is the item itself."""

    depth: int
    item_id: UUID
    item_type: SourceItemType
    name: str
    status: ItemStatus
    deleted_at: datetime | None = None
    source_item_id: str | None = None


class Lineage(_Record):
    """An item and the chain of its ancestors or descendants."""

    # Left to right: a field (the common case) parses at the first try, with no failed
    # attempt at an asset; an asset document lacks a field's required keys.
    item: Annotated[ProfileField | ProfileAsset, Field(union_mode="left_to_right")]
    chain: list[LineageEntry]
    truncated: bool
    cycle_detected: bool


class Tenant(_Record):
    """A customer of the vault: its own profiles, keys and validation mode."""

    tenant_id: UUID
    name: str
    validation_mode: str
    created_at: datetime


class ApiKey(_Record):
    """One of a tenant's API keys as operators see it (never the key itself)."""

    key_id: UUID
    label: str | None = None
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
