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
    source_item_type: SourceItemType | None = None

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
    value_type: ValueType | None = None
    source: Source
    source_metadata: dict[str, MetadataValue] = Field(default_factory=dict)
    source_session_id: BodyRef | None = None
    source_scenario_id: CallerId | None = None
    source_step_id: CallerId | None = None
    confidence: StrictFloat = Field(default=1.0, ge=0.0, le=1.0, allow_inf_nan=False)
    verified: StrictBool = False
    verification_method: ShortText | None = None
    verified_at: Instant | None = None
    expires_at: Instant | None = None
    requires_confirmation: StrictBool = False
    agent_id: CallerId | None = None

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
    asset_type: ShortText
    storage_provider: ShortText
    storage_path: PathText
    mime_type: Annotated[str, StringConstraints(pattern=r"^[\w.+-]+/[\w.+-]+$", max_length=255)]
    size_bytes: StrictInt = Field(ge=0, le=JSON_SAFE_INT_MAX)
    checksum: ShortText
    derived_from_tool: ShortText | None = None
    expires_at: Instant | None = None
    retention_policy: ShortText = "permanent"
    # Recorded as the version's written_by.agent_id (as a field write's agent_id is).
    agent_id: CallerId | None = None


class NewIdentity(_Write):
    """A channel handle to link to a profile."""

    channel: Annotated[str, StringConstraints(pattern=CHANNEL_PATTERN)]
    channel_user_id: Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{1,256}$")]
    verified: StrictBool = False
    primary: StrictBool = False


class ConsentAnswer(_Write):
    """The customer's answer for one consent type."""

    granted: StrictBool
    source_session_id: BodyRef | None = None
