"""The schema layer: per-agent field definitions and per-scenario requirements."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ccvault.domain.bounds import INT4_MAX
from ccvault.domain.conditions import parse_condition
from ccvault.domain.inputs import Input
from ccvault.domain.models import CALLER_ID_PATTERN, FIELD_NAME_PATTERN, ValueType
from ccvault.domain.patterns import MAX_PATTERN_LENGTH
from ccvault.domain.validation import Rules, check_value

FieldNameStr = Annotated[str, StringConstraints(pattern=FIELD_NAME_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=4000)]


class DefinitionStatus(StrEnum):
    """`suggested` definitions come from the extractor and wait for a caller's PUT."""

    active = "active"
    suggested = "suggested"


class RequiredLevel(StrEnum):
    """A hard requirement can block a scenario; a soft one only informs."""

    hard = "hard"
    soft = "soft"


class FallbackAction(StrEnum):
    """What the agent should do while the field is missing."""

    ask = "ask"
    skip = "skip"
    block = "block"
    extract = "extract"


class ReviewStatus(StrEnum):
    """Human review of an extracted requirement."""

    none = "none"
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class Origin(StrEnum):
    """Who made a requirement."""

    manual = "manual"
    extracted = "extracted"


class MissingReason(StrEnum):
    """Why a required field does not count as present."""

    missing = "missing"
    expired = "expired"
    orphaned = "orphaned"
    stale = "stale"
    unverified = "unverified"


class DefinitionAttributes(BaseModel):
    """Everything a definition says about its field."""

    model_config = ConfigDict(frozen=True)

    display_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Text | None = None
    value_type: ValueType
    # Compiled (RE2, bounded memory) by SchemaStore.put_definition, not by the parser.
    validation_regex: Annotated[str, StringConstraints(max_length=MAX_PATTERN_LENGTH)] | None = None
    allowed_values: list[Any] | None = Field(default=None, max_length=1000)
    required_verification: StrictBool = False
    verification_methods: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list, max_length=50
    )
    collection_prompt: Text | None = None
    extraction_examples: list[Text] = Field(default_factory=list, max_length=100)
    extraction_prompt_hint: Text | None = None
    is_pii: StrictBool = False
    encryption_required: StrictBool = False
    # A century at most; freshness up to what its integer column holds (about 68 years).
    retention_days: StrictInt | None = Field(default=None, ge=1, le=36500)
    freshness_seconds: StrictInt | None = Field(default=None, ge=1, le=INT4_MAX)
    enabled: StrictBool = True


class DefinitionBody(Input, DefinitionAttributes):
    """PUT /v1/agents/{agent_id}/field-definitions/{name} body, checked when saved (its
    pattern by `SchemaStore.put_definition`: compiling is no work for a request parser)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """A definition that could never accept a value is refused when saved."""
        if self.allowed_values is not None:
            rules = Rules(self.value_type)
            normalized = []
            for value in self.allowed_values:
                checked = check_value(value, rules)
                if checked.problems:
                    raise PydanticCustomError(
                        "config_error",
                        "allowed value {value} is not a {type}: {why}",
                        {
                            "value": repr(value),
                            "type": self.value_type.value,
                            "why": checked.problems[0].msg,
                            "key": "allowed_values",
                        },
                    )
                normalized.append(checked.value)
            object.__setattr__(self, "allowed_values", normalized)
        return self


class FieldDefinition(DefinitionAttributes):
    """A stored definition (checked when it was saved, so not again when read)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    agent_id: str
    name: str
    status: DefinitionStatus
    created_at: datetime
    updated_at: datetime

    @property
    def rules(self) -> Rules:
        """What a value must satisfy beyond its type."""
        return Rules(self.value_type, self.validation_regex, self.allowed_values)


class RequirementBody(Input):
    """PUT .../requirements/{field_name} body (a manual requirement)."""

    required_level: RequiredLevel = RequiredLevel.hard
    fallback_action: FallbackAction = FallbackAction.ask
    rule_id: Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)] | None = None
    when_condition: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    depends_on_fields: list[FieldNameStr] = Field(default_factory=list, max_length=50)
    collection_order: StrictInt = Field(default=0, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _condition_parses(self) -> Self:
        if self.when_condition is not None:
            parse_condition(self.when_condition)
        return self


class Requirement(BaseModel):
    """A field a scenario (or a step, or a rule) needs."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: UUID
    field_name: str
    step_id: str | None = None
    rule_id: str | None = None
    required_level: RequiredLevel
    fallback_action: FallbackAction
    when_condition: str | None = None
    depends_on_fields: list[str] = Field(default_factory=list)
    collection_order: int
    confidence: float | None = None
    needs_human_review: bool
    review_status: ReviewStatus
    origin: Origin


class ReviewItem(BaseModel):
    """A requirement waiting for a person's decision, beside the text it came from."""

    model_config = ConfigDict(frozen=True)

    requirement: Requirement
    scenario_id: str | None = None
    rule_id: str | None = None
    source_text: str = Field(description="the scenario's or rule's text, as the extractor read it")


class ReviewQueue(BaseModel):
    """A page of the review queue; `next_cursor` is null on the last page."""

    items: list[ReviewItem]
    next_cursor: str | None = None


class DefinitionHints(BaseModel):
    """The attributes of a definition that missing-fields uses."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    display_name: str | None = None
    collection_prompt: str | None = None
    required_verification: bool = False
    freshness_seconds: int | None = None


class CurrentValue(BaseModel):
    """The current (non-superseded, non-deleted) version of a field, as missing-fields
    needs it."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: Any
    status: str
    verified: bool
    collected_at: datetime


class MissingField(BaseModel):
    """One thing the agent still has to collect, with how to ask for it."""

    model_config = ConfigDict(frozen=True)

    field_name: str
    required_level: RequiredLevel
    fallback_action: FallbackAction
    reason: MissingReason
    collection_prompt: str | None = None
    display_name: str | None = None
    collection_order: int


class MissingFields(BaseModel):
    """The answer to "can this scenario run, and what do I ask next?"."""

    model_config = ConfigDict(frozen=True)

    can_proceed: bool
    missing: list[MissingField]
