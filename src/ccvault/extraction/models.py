"""What an extractor reads and what it proposes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ccvault.domain.models import CALLER_ID_PATTERN, FIELD_NAME_PATTERN, ValueType
from ccvault.domain.schema import FieldDefinition, RequiredLevel


class SourceKind(StrEnum):
    """Where the text comes from."""

    scenario = "scenario"
    rule = "rule"


@dataclass(frozen=True)
class TextPart:
    """One piece of text; `step_id` is set for a step's description and conditions."""

    text: str
    step_id: str | None = None


@dataclass(frozen=True)
class SourceText:
    """A scenario's or rule's text, in pieces, as the extractor reads it."""

    kind: SourceKind
    name: str
    parts: list[TextPart] = field(default_factory=list)
    step_ids: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The text as a prompt shows it: one line per piece, steps labelled."""
        lines = [f"{self.kind.value}: {self.name}"]
        for part in self.parts:
            label = f"[step {part.step_id}] " if part.step_id else ""
            lines.append(f"- {label}{part.text}")
        return "\n".join(lines)


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
