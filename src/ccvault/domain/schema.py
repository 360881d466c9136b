"""The schema layer: per-agent field definitions and per-scenario requirements."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
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

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    display_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    """The field's name for people (shown with missing fields)."""
    description: Text | None = None
    """What the field means."""
    value_type: ValueType
    """The type values must have; it wins over a write's own `value_type`."""
    # Compiled (RE2, bounded memory) by SchemaStore.put_definition, not by the parser.
    validation_regex: Annotated[str, StringConstraints(max_length=MAX_PATTERN_LENGTH)] | None = None
    """A pattern the whole value must match (checked on write; RE2 syntax)."""
    allowed_values: list[Any] | None = Field(default=None, max_length=1000)
    """The only values accepted, normalized to `value_type` when saved."""
    required_verification: StrictBool = False
    """Whether missing-fields counts an unverified value as missing (`unverified`)."""
    verification_methods: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list, max_length=50
    )
    """The verification methods that count for this field."""
    collection_prompt: Text | None = None
    """What the agent should ask to collect the value."""
    extraction_examples: list[Text] = Field(default_factory=list, max_length=100)
    """Example phrasings an extractor can learn the field from."""
    extraction_prompt_hint: Text | None = None
    """A hint for the LLM extractor about this field."""
    is_pii: StrictBool = False
    """Whether values are personal data."""
    encryption_required: StrictBool = False
    """Whether values must be encrypted at rest."""
    # A century at most; freshness up to what its integer column holds (about 68 years).
    retention_days: StrictInt | None = Field(default=None, ge=1, le=36500)
    """Writes naming this agent without `expires_at` expire this many days after collection."""
    freshness_seconds: StrictInt | None = Field(default=None, ge=1, le=INT4_MAX)
    """Values older than this count as `stale` in missing-fields (they stay active)."""
    enabled: StrictBool = True
    """A disabled definition counts as absent for validation and missing-fields."""


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
    """The definition's id."""
    agent_id: str
    """The agent the definition belongs to."""
    name: str
    """The field name it defines."""
    status: DefinitionStatus
    """`active`, or `suggested` by the extractor until a caller PUTs it."""
    created_at: datetime
    """When the definition was created."""
    updated_at: datetime
    """When it last changed."""

    @property
    def rules(self) -> Rules:
        """What a value must satisfy beyond its type."""
        return Rules(self.value_type, self.validation_regex, self.allowed_values)


class RequirementBody(Input):
    """PUT .../requirements/{field_name} body (a manual requirement)."""

    required_level: RequiredLevel = RequiredLevel.hard
    """`hard` requirements can block the scenario; `soft` ones only inform (default `hard`)."""
    fallback_action: FallbackAction = FallbackAction.ask
    """What the agent should do while the field is missing (default `ask`)."""
    rule_id: Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)] | None = None
    """The rule this requirement comes from, if any."""
    when_condition: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    """A condition over the profile's field values (e.g. `order_type == "international"`); the
    requirement applies only when it holds. Checked when saved."""
    depends_on_fields: list[FieldNameStr] = Field(default_factory=list, max_length=50)
    """Fields that must be present before this one applies."""
    collection_order: StrictInt = Field(default=0, ge=0, le=1_000_000)
    """The order to collect fields in (lower first)."""

    @model_validator(mode="after")
    def _condition_parses(self) -> Self:
        if self.when_condition is not None:
            parse_condition(self.when_condition)
        return self


class Requirement(BaseModel):
    """A field a scenario (or a step, or a rule) needs."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)

    id: UUID
    """The requirement's id."""
    field_name: str
    """The field required."""
    step_id: str | None = None
    """The step it applies to; null means scenario-wide."""
    rule_id: str | None = None
    """The rule it comes from, if any."""
    required_level: RequiredLevel
    """`hard` requirements can block the scenario; `soft` ones only inform."""
    fallback_action: FallbackAction
    """What the agent should do while the field is missing: ask, skip, block or extract."""
    when_condition: str | None = None
    """The condition under which the requirement applies."""
    depends_on_fields: list[str] = Field(default_factory=list)
    """Fields that must be present before this one applies."""
    collection_order: int
    """The order to collect fields in (lower first)."""
    confidence: float | None = None
    """The extractor's confidence (null for manual requirements)."""
    needs_human_review: bool
    """True for extracted requirements below 0.8 confidence until approved."""
    review_status: ReviewStatus
    """`none`, `pending`, `approved` or `rejected` (rejected ones are listed but not enforced)."""
    origin: Origin
    """`manual` (PUT by a caller) or `extracted` (proposed by the extractor)."""


class ReviewItem(BaseModel):
    """A requirement waiting for a person's decision, beside the text it came from."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    requirement: Requirement
    """The requirement waiting for a decision."""
    scenario_id: str | None = None
    """The scenario it belongs to (null for a rule without a scenario)."""
    rule_id: str | None = None
    """The rule it was extracted from (null when it came from the scenario's text)."""
    source_text: str
    """The scenario's or rule's text, as the extractor read it."""


class ReviewQueue(BaseModel):
    """A page of the review queue; `next_cursor` is null on the last page."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    items: list[ReviewItem]
    """Pending requirements, oldest first."""
    next_cursor: str | None = None
    """Pass it as `cursor` for the next page; null on the last page."""


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

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    field_name: str
    """The field to collect."""
    required_level: RequiredLevel
    """`hard` or `soft`."""
    fallback_action: FallbackAction
    """What the agent should do about it."""
    reason: MissingReason
    """Why it counts as missing: absent, expired, orphaned, stale or unverified."""
    collection_prompt: str | None = None
    """What to ask, from the field's definition."""
    display_name: str | None = None
    """The field's name for people, from its definition."""
    collection_order: int
    """The order to collect fields in (lower first)."""


class MissingFields(BaseModel):
    """The answer to "can this scenario run, and what do I ask next?"."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    can_proceed: bool
    """False when an unmet `hard` requirement has fallback `block` or `ask`."""
    missing: list[MissingField]
    """Unmet requirements in collection order."""


class ReviewDecision(Input):
    """POST .../requirements/{id}/review body."""

    decision: Literal["approve", "reject"]
    """`approve` clears `needs_human_review`; `reject` keeps the requirement listed but no longer
    enforced."""
