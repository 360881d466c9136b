"""What an extractor reads and what it proposes."""

from __future__ import annotations

from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ccvault.domain.models import CALLER_ID_PATTERN, FIELD_NAME_PATTERN, ValueType
from ccvault.domain.scenarios import SourceKind, SourceText, TextPart
from ccvault.domain.schema import FieldDefinition, RequiredLevel

__all__ = ["Extractor", "Proposals", "ProposedField", "SourceKind", "SourceText", "TextPart"]


class ProposedField(BaseModel):
    """A field the text needs, with how sure the extractor is and why."""

    model_config = ConfigDict(extra="ignore")

    field_name: Annotated[str, StringConstraints(pattern=FIELD_NAME_PATTERN)]
    confidence: float = Field(ge=0.0, le=1.0)
    reason: Annotated[str, StringConstraints(max_length=500)] = ""
    required_level: RequiredLevel | None = Field(
        default=None, description="hint only: the level follows the confidence"
    )
    step_id: Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)] | None = None
    value_type: ValueType | None = Field(default=None, description="for a new field")
    display_name: Annotated[str, StringConstraints(max_length=200)] | None = None


class Proposals(BaseModel):
    """The extractor's whole answer."""

    fields: list[ProposedField] = Field(default_factory=list, max_length=100)


class Extractor(Protocol):
    """Reads text and proposes fields; raises when it cannot answer."""

    name: str

    async def extract(
        self, source: SourceText, definitions: list[FieldDefinition]
    ) -> list[ProposedField]:
        """The fields the text needs, most important first."""
        ...
