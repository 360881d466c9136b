"""Scenarios and rules: the texts callers store, what the extractor reads of them, and what
an extraction run plans to store (shared by storage, extraction and every entry point)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ccvault.domain.inputs import Input
from ccvault.domain.models import CALLER_ID_PATTERN, ValueType
from ccvault.domain.schema import FallbackAction, RequiredLevel, ReviewStatus

Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
CallerIdStr = Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)]


class Step(Input):
    """One step of a scenario."""

    step_id: CallerIdStr
    """The caller's id for the step."""
    description: Text | None = None
    """What happens in this step."""
    conditions: list[Text] = Field(default_factory=list, max_length=50)
    """Conditions of this step, in plain language (the extractor reads them)."""


class ScenarioBody(Input):
    """PUT /v1/agents/{agent_id}/scenarios/{scenario_id} body."""

    name: Name
    """The scenario's name."""
    description: Text | None = None
    """What the scenario is for, in plain language."""
    conditions: list[Text] = Field(default_factory=list, max_length=50)
    """Conditions of the whole scenario, in plain language."""
    steps: list[Step] = Field(default_factory=list, max_length=100)
    """The scenario's steps, in order."""


class RuleBody(Input):
    """PUT /v1/agents/{agent_id}/rules/{rule_id} body."""

    name: Name
    """The rule's name."""
    condition: Text
    """When the rule applies, in plain language."""
    action: Text | None = None
    """What the agent must do then."""
    scenario_id: CallerIdStr | None = None
    """The scenario the rule belongs to; without one, `missing-fields?rule_id=` checks its
    requirements."""


class Extraction(BaseModel):
    """The last extraction run of a scenario or rule."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    status: Literal["queued", "running", "done", "failed"]
    """`queued`, `running`, `done` or `failed`."""
    error: str | None = None
    """Why the last run failed."""
    finished_at: datetime | None = None
    """When the last run ended."""


class Scenario(BaseModel):
    """A stored scenario with its extraction status."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    agent_id: str
    """The agent the scenario belongs to."""
    scenario_id: str
    """The caller's id for the scenario."""
    name: str
    """The scenario's name."""
    description: str | None
    """What the scenario is for."""
    conditions: list[str]
    """Conditions of the whole scenario."""
    steps: list[dict[str, Any]]
    """The scenario's steps as stored (`step_id`, `description`, `conditions`)."""
    created_at: datetime
    """When the scenario was first stored."""
    updated_at: datetime
    """When it was last replaced."""
    extraction: Extraction
    """The state of its requirement extraction."""


class Rule(BaseModel):
    """A stored rule with its extraction status."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    agent_id: str
    """The agent the rule belongs to."""
    rule_id: str
    """The caller's id for the rule."""
    name: str
    """The rule's name."""
    condition: str
    """When the rule applies."""
    action: str | None
    """What the agent must do then."""
    scenario_id: str | None
    """The scenario the rule belongs to, if any."""
    created_at: datetime
    """When the rule was first stored."""
    updated_at: datetime
    """When it was last replaced."""
    extraction: Extraction
    """The state of its requirement extraction."""


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


@dataclass(frozen=True)
class PlannedRequirement:
    """An extracted requirement as it will be stored."""

    field_name: str
    step_id: str | None
    required_level: RequiredLevel
    collection_order: int
    confidence: float
    needs_human_review: bool
    review_status: ReviewStatus
    fallback_action: FallbackAction = FallbackAction.ask
    when_condition: str | None = None
    bounds: dict[str, float] = field(default_factory=dict)
    """Bounds the text sets on the value (`min`, `max`, `min_age`, `max_age`): carried by
    the suggested definition when the field is new; for an existing definition only a
    reason for review."""


@dataclass(frozen=True)
class Suggestion:
    """A definition proposed for a field the agent does not define yet."""

    name: str
    display_name: str
    value_type: ValueType
    description: str
    collection_prompt: str
    bounds: dict[str, float] = field(default_factory=dict)
    """Value constraints the text sets (`min`, `max`, `min_age`, `max_age`)."""
