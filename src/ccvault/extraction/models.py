"""What an extractor reads and what it proposes."""

from __future__ import annotations

from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ccvault.domain.conditions import parse_condition
from ccvault.domain.models import CALLER_ID_PATTERN, FIELD_NAME_PATTERN, ValueType
from ccvault.domain.scenarios import SourceKind, SourceText, TextPart
from ccvault.domain.schema import FallbackAction, FieldDefinition, RequiredLevel

__all__ = [
    "Extractor",
    "Proposals",
    "ProposedField",
    "SourceKind",
    "SourceText",
    "SuggestedConstraints",
    "TextPart",
]


class SuggestedConstraints(BaseModel):
    """Bounds the text sets on a field's value (DESIGN §8 value constraints; inclusive)."""

    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    min: float | None = None
    """Smallest allowed number ("income above 2000 EUR" → 2000)."""
    max: float | None = None
    """Largest allowed number."""
    min_age: int | None = Field(default=None, ge=0, le=150)
    """For a date of birth: the youngest allowed age in whole years ("over 18" → 18)."""
    max_age: int | None = Field(default=None, ge=0, le=150)
    """For a date of birth: the oldest allowed age in whole years ("under 70" → 69)."""

    def is_empty(self) -> bool:
        """True when no bound is set."""
        return all(v is None for v in (self.min, self.max, self.min_age, self.max_age))

    def merged(self, other: SuggestedConstraints | None) -> SuggestedConstraints:
        """These bounds, with the other's filling the ones not set here."""
        if other is None:
            return self
        mine = self.model_dump()
        return SuggestedConstraints(
            **{k: v if v is not None else getattr(other, k) for k, v in mine.items()}
        )

    def describe(self) -> str:
        """The bounds as a short phrase for people (no customer values in it)."""
        names = {"min": "min", "max": "max", "min_age": "min_age", "max_age": "max_age"}
        return ", ".join(f"{names[k]} {v:g}" for k, v in self.model_dump().items() if v is not None)


class ProposedField(BaseModel):
    """A field the text needs, with how sure the extractor is and why."""

    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    field_name: Annotated[str, StringConstraints(pattern=FIELD_NAME_PATTERN)]
    """snake_case: an existing definition's name, else a new name for the field."""
    confidence: float = Field(ge=0.0, le=1.0)
    """How sure the extractor is that the text needs this field (0-1)."""
    reason: Annotated[str, StringConstraints(max_length=500)] = ""
    """A short quote of the text that needs the field."""
    required_level: RequiredLevel | None = None
    """`hard` when the text cannot proceed without it (must, required, need), `soft` when
    it is optional (ideally, if possible, optional); unset: the confidence decides."""
    fallback_action: FallbackAction | None = None
    """What the agent should do while it is missing (`skip` for an optional field)."""
    when_condition: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    """When the field is needed only under a condition ("for transfers above 1000 EUR"): a
    condition over field or conversation-context names, e.g. `transfer_amount > 1000` or
    `customer_type == "business"`; null when always needed."""
    constraints: SuggestedConstraints | None = None
    """Bounds the text sets on the value ("must be over 18" → `min_age` 18 on the date of
    birth)."""
    needs_review: bool = False
    """True when a person should check it whatever the confidence (a condition, a
    document, a bound the existing definition lacks)."""
    step_id: Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)] | None = None
    """The step that needs it, when only one does."""
    value_type: ValueType | None = None
    """For a new field: its value type."""
    display_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    """For a new field: its name for people."""

    @field_validator("when_condition")
    @classmethod
    def _condition_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_condition(value)
        return value


class Proposals(BaseModel):
    """The extractor's whole answer."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    fields: list[ProposedField] = Field(default_factory=list, max_length=100)
    """The fields the text needs, in the order the agent should ask for them."""


class Extractor(Protocol):
    """Reads text and proposes fields; raises when it cannot answer."""

    name: str

    async def extract(
        self, source: SourceText, definitions: list[FieldDefinition]
    ) -> list[ProposedField]:
        """The fields the text needs, most important first."""
        ...
