"""What a caller may write: new field and asset versions, identities, consents."""

from __future__ import annotations

from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import (
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ccvault.domain.bounds import JSON_SAFE_INT_MAX, MAX_VALUE_BYTES, Instant, json_size
from ccvault.domain.inputs import Input
from ccvault.domain.models import (
    CALLER_ID_PATTERN,
    CHANNEL_PATTERN,
    Source,
    SourceItemType,
    ValueType,
    VerificationLevel,
)
from ccvault.domain.values import is_json_safe

CallerId = Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)]
# References that only ever travel in bodies (DESIGN §8): any text a caller's own system
# uses (session ids often hold `/`), short, and without control characters (C0, DEL, C1)
# that would corrupt logs and displays.
BODY_REF_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]{1,256}$"
BodyRef = Annotated[str, StringConstraints(pattern=BODY_REF_PATTERN)]
# What an operator calls an API key ("billing agent", "rotated 2026-12"): text for people.
KEY_LABEL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]{1,100}$"
# A provenance attribute: a reference, or a plain number or flag (`"turn": 3`); nothing
# nested, nothing null.
MetadataValue = BodyRef | int | float | bool
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
PathText = Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class _Write(Input):
    """Unknown keys are refused: a typo in a provenance attribute must not vanish silently."""


class _SourceLink(_Write):
    source_item_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    """What this derives from: the UUID of a field or asset of this vault (`profile_field`,
    `profile_asset`: checked to exist in this tenant), or an outside reference (`session`,
    `tool`, `external`). Give it with `source_item_type`."""
    source_item_type: SourceItemType | None = None
    """What `source_item_id` refers to; given together with it."""

    @model_validator(mode="after")
    def _link_is_complete(self) -> Self:
        if (self.source_item_id is None) != (self.source_item_type is None):
            raise ValueError("source_item_id and source_item_type go together")
        if self.source_item_type is not None and self.source_item_type.is_vault_item:
            try:
                UUID(str(self.source_item_id))
            except ValueError:
                raise ValueError(
                    f"source_item_id must be the UUID of a {self.source_item_type.value}"
                ) from None
        return self

    @property
    def source_uuid(self) -> UUID | None:
        """The vault item this derives from, when it derives from one."""
        if self.source_item_type is not None and self.source_item_type.is_vault_item:
            return UUID(str(self.source_item_id))
        return None


class NewField(_SourceLink):
    """A new version of a field value (PUT /v1/profiles/{customer_id}/fields/{name})."""

    value: Any
    """The value (not null: DELETE the field to remove it). Stored normalized to its type; see
    ProfileField.value."""
    value_type: ValueType | None = None
    """The type to check the value as; without it the agent's definition decides, else the JSON
    type of the value (string, number, boolean, json)."""
    source: Source
    """Where the value came from."""
    source_metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    """Free-form details about the source: an object of strings (1..256 characters, no
    control characters), numbers or booleans."""
    source_session_id: BodyRef | None = None
    """The conversation or session the value was collected in (1..256 characters, no
    control characters)."""
    source_scenario_id: CallerId | None = None
    """The scenario that asked for the value."""
    source_step_id: CallerId | None = None
    """The step of that scenario."""
    confidence: StrictFloat = Field(default=1.0, ge=0.0, le=1.0, allow_inf_nan=False)
    """How sure the writer is, from 0 to 1 (default 1)."""
    verified: StrictBool = False
    """Whether the value has been verified."""
    verification_method: ShortText | None = None
    """How it was verified (e.g. `otp`)."""
    verified_at: Instant | None = None
    """When it was verified; defaults to now when `verified` is true. Without an offset it is read
    as UTC."""
    expires_at: Instant | None = None
    """When the value stops counting as current; without an offset it is read as UTC. Defaults to
    the definition's `retention_days` when `agent_id` names one."""
    requires_confirmation: StrictBool = False
    """Whether the agent should confirm the value with the customer before relying on it."""
    agent_id: CallerId | None = None
    """Validate against this agent's definition of the field (and apply its retention)."""

    @model_validator(mode="after")
    def _value_present(self) -> Self:
        if self.value is None:
            raise ValueError("value must not be null; DELETE the field to remove it")
        if not is_json_safe(self.value) or not is_json_safe(self.source_metadata):
            raise ValueError("values must be JSON: finite numbers, at most 64 levels deep")
        return self

    @field_validator("value", "source_metadata")
    @classmethod
    def _not_too_large(cls, value: Any) -> Any:
        """One value must not make a profile heavy to read (the body limit is per request)."""
        if is_json_safe(value) and json_size(value) > MAX_VALUE_BYTES:
            raise PydanticCustomError(
                "too_large",
                "limited to {limit} bytes as compact JSON",
                {"limit": MAX_VALUE_BYTES},
            )
        return value


class NewAsset(_SourceLink):
    """A new version of a document reference (POST /v1/profiles/{customer_id}/assets)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    """The asset's name in the profile; a current asset of the same name becomes superseded."""
    asset_type: ShortText
    """The kind of document (e.g. `document`, `image`)."""
    storage_provider: ShortText
    """Where the bytes are kept (e.g. `s3`)."""
    storage_path: PathText
    """The location of the bytes with that provider."""
    mime_type: Annotated[str, StringConstraints(pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=255)]
    """The media type of the bytes (`type/subtype`)."""
    size_bytes: StrictInt = Field(ge=0, le=JSON_SAFE_INT_MAX)
    """The size of the bytes."""
    checksum: ShortText
    """The checksum of the bytes (e.g. `sha256:...`)."""
    derived_from_tool: ShortText | None = None
    """The tool that produced the asset, if a tool did."""
    expires_at: Instant | None = None
    """When the asset stops counting as current; without an offset it is read as UTC."""
    retention_policy: ShortText = "permanent"
    """How long the document is to be kept (default `permanent`)."""
    # Recorded as the version's written_by.agent_id (as a field write's agent_id is).
    agent_id: CallerId | None = None
    """The agent on whose behalf the asset is added (recorded in `written_by`)."""


class NewIdentity(_Write):
    """A channel handle to link to a profile."""

    channel: Annotated[str, StringConstraints(pattern=CHANNEL_PATTERN)]
    """The channel (`^[a-z][a-z0-9_]{0,31}$`, e.g. `whatsapp`)."""
    channel_user_id: Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{1,256}$")]
    """The customer's handle on that channel (no control characters)."""
    verified: StrictBool = False
    """Whether the customer has proven they own the handle."""
    primary: StrictBool = False
    """Whether this is the customer's preferred handle on that channel."""


class ConsentAnswer(_Write):
    """The customer's answer for one consent type."""

    granted: StrictBool
    """Whether the customer grants this kind of consent."""
    source_session_id: BodyRef | None = None
    """The session in which the customer answered (1..256 characters, no control
    characters)."""


class NewProfile(Input):
    """POST /v1/profiles body."""

    customer_id: CallerId | None = None
    """The caller's id for the customer; minted when absent."""
    channel_identities: list[NewIdentity] = Field(default_factory=list, max_length=100)
    """Handles to link to the new profile."""


class MergeRequest(Input):
    """POST /v1/profiles/{customer_id}/merge body."""

    source_customer_id: Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)]
    """The profile to fold into this one; its id becomes an alias of this one."""


class ProfilePatch(Input):
    """PATCH /v1/profiles/{customer_id} body."""

    verification_level: VerificationLevel
    """The new level: `unverified`, `email_verified`, `phone_verified`, `document_verified`
    or `kyc_complete`."""
