"""The schema layer: per-agent field definitions and per-scenario requirements."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ccvault.domain.bounds import INT4_MAX, MAX_PATTERN_LENGTH
from ccvault.domain.inputs import Input
from ccvault.domain.models import CALLER_ID_PATTERN, FIELD_NAME_PATTERN, ValueType

if TYPE_CHECKING:
    # Value checks and conditions need the server's libraries (RE2, phonenumbers,
    # email-validator, simpleeval); the client imports these models with pydantic alone,
    # so they are imported where a validator first needs them.
    from ccvault.domain.validation import Rules

FieldNameStr = Annotated[str, StringConstraints(pattern=FIELD_NAME_PATTERN)]
# What a read is for, e.g. `onboarding`, `fraud.check`, `marketing:email`.
PURPOSE_PATTERN = r"^[a-z][a-z0-9_.:-]{0,63}$"
MAX_PURPOSES = 50
PurposeStr = Annotated[str, StringConstraints(pattern=PURPOSE_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=4000)]
# Keep MAX_AGE equal to migration 0013's CHECK.
MAX_AGE = 200
Age = Annotated[StrictInt, Field(ge=0, le=MAX_AGE)]
_INT64 = 2**63


def _bound(value: int | float) -> int | float:
    """A bound a 64-bit integer could hold: exact when stored (numeric) and read back."""
    if not -_INT64 < value < _INT64:
        raise PydanticCustomError(
            "bound_range", "bounds are limited to ±{limit}", {"limit": _INT64 - 1}
        )
    return value


# A finite JSON number (an integer stays an integer).
Bound = Annotated[
    StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)],
    Field(union_mode="left_to_right"),
    AfterValidator(_bound),
    WithJsonSchema({"type": "number", "exclusiveMinimum": -_INT64, "exclusiveMaximum": _INT64}),
]


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
    range = "range"
    """The value is outside the definition's `min`/`max` or `min_age`/`max_age` (written
    in warn mode, or before the constraint was set)."""


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
    purposes: list[PurposeStr] = Field(default_factory=list, max_length=MAX_PURPOSES)
    """The purposes a read may name to see this field (`?purpose=`); empty means any
    purpose. Reads naming another purpose list the field in `withheld_fields`."""
    consent_type: FieldNameStr | None = None
    """A consent the customer must have granted for a read naming a purpose to see this
    field (e.g. `marketing_email`)."""
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
    min: Bound | None = None
    """The smallest value accepted (inclusive); `number` and `integer` fields only. A value
    below it is a `range_error`."""
    max: Bound | None = None
    """The largest value accepted (inclusive); `number` and `integer` fields only."""
    min_age: Age | None = None
    """For a `date` (such as a birth date): at least this many whole years before today's
    UTC date (inclusive: on the 18th birthday, `min_age: 18` is met)."""
    max_age: Age | None = None
    """For a `date`: at most this many whole years before today's UTC date (inclusive)."""
    default_region: Annotated[str, StringConstraints(min_length=1, max_length=8)] | None = None
    """For a `phone`: the region (ISO 3166 alpha-2, e.g. `DE`) national numbers are read in;
    they are stored in E.164 (`030 1234567` → `+49301234567`). Without it, only numbers in
    international form (`+49...`) are accepted."""

    @property
    def rules(self) -> Rules:
        """What a value must satisfy beyond its type."""
        from ccvault.domain.validation import Rules

        return Rules(
            self.value_type,
            self.validation_regex,
            self.allowed_values,
            min=self.min,
            max=self.max,
            min_age=self.min_age,
            max_age=self.max_age,
            default_region=self.default_region,
        )


_RANGE_TYPES = (ValueType.number, ValueType.integer)


def _config_error(key: str, msg: str) -> PydanticCustomError:
    """A definition that does not make sense, at `["body", key]`."""
    return PydanticCustomError("config_error", msg, {"key": key})


class DefinitionBody(Input, DefinitionAttributes):
    """PUT /v1/agents/{agent_id}/field-definitions/{name} body, checked when saved (its
    pattern by `SchemaStore.put_definition`: compiling is no work for a request parser)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """A definition that could never accept a value, or whose constraints do not
        apply to its type, is refused when saved."""
        self._constraints_fit()
        if self.allowed_values is not None:
            # Type and region only: the value's own checks (pattern, range) are the
            # definition's business, a list of values is the caller's.
            from ccvault.domain.validation import Rules, check_value

            rules = Rules(self.value_type, default_region=self.default_region)
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

    def _constraints_fit(self) -> None:
        vtype = self.value_type.value
        for key in ("min", "max"):
            bound = getattr(self, key)
            if bound is None:
                continue
            if self.value_type not in _RANGE_TYPES:
                raise _config_error(key, f"{key} applies to number and integer fields, not {vtype}")
            if self.value_type is ValueType.integer and not float(bound).is_integer():
                raise _config_error(key, f"{key} of an integer field must be a whole number")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise _config_error("min", "min must not be greater than max")
        for key in ("min_age", "max_age"):
            if getattr(self, key) is not None and self.value_type is not ValueType.date:
                raise _config_error(key, f"{key} applies to date fields, not {vtype}")
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise _config_error("min_age", "min_age must not be greater than max_age")
        if self.default_region is not None:
            if self.value_type is not ValueType.phone:
                raise _config_error(
                    "default_region", f"default_region applies to phone fields, not {vtype}"
                )
            import phonenumbers

            region = self.default_region.upper()
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise _config_error(
                    "default_region",
                    f"{self.default_region!r} is not a region with phone numbers "
                    "(use an ISO 3166 alpha-2 code such as DE or PT)",
                )
            object.__setattr__(self, "default_region", region)


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
            from ccvault.domain.conditions import parse_condition

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
    value_type: ValueType = ValueType.json
    min: int | float | None = None
    max: int | float | None = None
    min_age: int | None = None
    max_age: int | None = None

    @property
    def rules(self) -> Rules:
        """The bounds a present value must keep to count as collected."""
        from ccvault.domain.validation import Rules

        return Rules(
            self.value_type, min=self.min, max=self.max, min_age=self.min_age, max_age=self.max_age
        )


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
    """Why it counts as missing: absent, expired, orphaned, stale, unverified, or out of the
    definition's range."""
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


# Context is a handful of facts of the conversation, not a document.
MAX_CONTEXT_KEYS = 50
MAX_CONTEXT_TEXT = 1000


def _context_value(value: Any) -> Any:
    """A fact a condition can compare: text, a finite number, a boolean or null."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise PydanticCustomError(
                "context_value", "integers in context must fit in 64 bits (use a string)"
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PydanticCustomError("context_value", "numbers in context must be finite")
        return value
    if isinstance(value, str):
        if len(value) > MAX_CONTEXT_TEXT:
            raise PydanticCustomError(
                "context_value",
                "text in context is limited to {limit} characters",
                {"limit": MAX_CONTEXT_TEXT},
            )
        return value
    raise PydanticCustomError(
        "context_value",
        "a context value is text, a number, a boolean or null, not a list or an object",
    )


ContextValue = Annotated[
    Any,
    AfterValidator(_context_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_CONTEXT_TEXT},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "null"},
            ]
        }
    ),
]


class MissingFieldsRequest(Input):
    """POST /v1/profiles/{customer_id}/missing-fields body: the GET's question, plus facts
    of the conversation the requirements' conditions may read."""

    agent_id: Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)]
    """The agent whose requirements and definitions apply."""
    scenario_id: Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)] | None = None
    """The scenario to check (its requirements without a `rule_id`); this or `rule_id` is
    required."""
    rule_id: Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)] | None = None
    """A rule being asked for: its requirements apply too (alone, only they do)."""
    step_id: Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)] | None = None
    """A step of the scenario: its requirements apply beside the scenario-wide ones."""
    context: dict[FieldNameStr, ContextValue] = Field(
        default_factory=dict, max_length=MAX_CONTEXT_KEYS
    )
    """Facts of the conversation, not of the customer (e.g. `{"transfer_amount": 1500}`),
    by name: `when_condition` sees them beside the profile's active values, and the
    profile's value wins on a name in both. They never satisfy a requirement themselves.
    At most 50 names (field-name syntax); each value text (up to 1000 characters), a
    finite number, a boolean or null."""

    @model_validator(mode="after")
    def _names_a_scope(self) -> Self:
        if self.scenario_id is None and self.rule_id is None:
            raise PydanticCustomError(
                "missing", "scenario_id or rule_id is required", {"key": "scenario_id"}
            )
        return self
