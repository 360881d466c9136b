"""The prompt-ready context view (DESIGN §8): what one agent may know about a customer, in
the agent's own words (its definitions' display names), with how far each fact can be
trusted (verified or not, how old), what is withheld, and what is still missing.

Built from a profile, the agent's definitions and, for a scenario, its missing fields;
pure, so the HTTP route, the MCP tool and the console show the same view.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from ccvault.domain.models import (
    Profile,
    ProfileField,
    ValueType,
    VerificationLevel,
    WithheldField,
)
from ccvault.domain.schema import FieldDefinition, MissingFields

# A value longer than this is cut in the text view (a prompt has a budget; the JSON view
# and the profile keep the whole value).
TEXT_VALUE_CHARS = 300
_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600))


class ContextFact(BaseModel):
    """One active fact, as the agent should read it."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    name: str
    """The field name."""
    display_name: str
    """The agent's definition's display name (the field name, humanized, without one)."""
    value: Any
    """The active value."""
    value_type: ValueType
    """Its type."""
    verified: bool
    """Whether the value was verified."""
    verification_method: str | None = None
    """How it was verified, when it was."""
    source: str
    """Where the value came from (`user_provided`, `document_extraction`...)."""
    confidence: float
    """How sure the source was (0..1)."""
    collected_at: datetime
    """When the value was collected."""
    age: str
    """How old the value is, for people: `just now`, `5 minutes`, `3 days`, `1 year`."""
    expires_at: datetime | None = None
    """When the value stops counting, if ever."""
    defined: bool
    """Whether the agent has a definition for this field."""


class ContextView(BaseModel):
    """GET /v1/profiles/{customer_id}/context: one agent's view of a customer."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    customer_id: str
    """The customer (the target's id when addressed through an alias)."""
    agent_id: str
    """The agent whose view this is."""
    generated_at: datetime
    """When the view was built (ages count to this instant)."""
    verification_level: VerificationLevel
    """The profile's verification level."""
    facts: list[ContextFact]
    """Active facts: the agent's defined fields first (by display name), then the others
    (by name)."""
    withheld_fields: list[WithheldField]
    """Fields left out of this read, and why."""
    scenario_id: str | None = None
    """The scenario `missing` is about, when one was named."""
    missing: MissingFields | None = None
    """What is still missing for the scenario (null without `scenario_id`)."""


def _humanize(name: str) -> str:
    return name.replace("_", " ").capitalize()


def age_of(moment: datetime, now: datetime) -> str:
    """`just now`, `5 minutes`, `1 hour`, `3 days`... (a future instant counts as now)."""
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in _UNITS:
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    minutes = seconds // 60
    if minutes == 0:
        return "just now"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _fact(field: ProfileField, definition: FieldDefinition | None, now: datetime) -> ContextFact:
    return ContextFact(
        name=field.name,
        display_name=definition.display_name if definition else _humanize(field.name),
        value=field.value,
        value_type=field.value_type,
        verified=field.verified,
        verification_method=field.verification_method,
        source=field.source,
        confidence=field.confidence,
        collected_at=field.collected_at,
        age=age_of(field.collected_at, now),
        expires_at=field.expires_at,
        defined=definition is not None,
    )


def build_view(
    profile: Profile,
    agent_id: str,
    definitions: list[FieldDefinition],
    now: datetime,
    *,
    withheld: list[WithheldField] | None = None,
    scenario_id: str | None = None,
    missing: MissingFields | None = None,
) -> ContextView:
    """The view of `profile` for `agent_id`: active fields only (not expired, deleted,
    superseded or orphaned), none of those in `withheld`."""
    by_name = {d.name: d for d in definitions if d.enabled}
    hidden = {w.name for w in withheld or ()}
    facts = [
        _fact(field, by_name.get(name), now)
        for name, field in profile.fields.items()
        if field.status == "active" and name not in hidden
    ]
    facts.sort(key=lambda f: (not f.defined, f.display_name.casefold() if f.defined else f.name))
    return ContextView(
        customer_id=profile.customer_id,
        agent_id=agent_id,
        generated_at=now,
        verification_level=profile.verification_level,
        facts=facts,
        withheld_fields=list(withheld or ()),
        scenario_id=scenario_id,
        missing=missing,
    )


def _text_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    # One fact a line: a value's own line breaks would read as further facts.
    text = " ".join(text.split())
    if len(text) > TEXT_VALUE_CHARS:
        cut = len(text) - TEXT_VALUE_CHARS
        text = f"{text[:TEXT_VALUE_CHARS]}… ({cut} more characters)"
    return text


def render_text(view: ContextView) -> str:
    """Compact lines for a prompt, one fact a line:
    `Display name: value (verified, 3 days old)`."""
    lines = [f"Customer {view.customer_id} (verification level: {view.verification_level})"]
    if not view.facts:
        lines.append("Known facts: none yet.")
    for fact in view.facts:
        trust = "verified" if fact.verified else "unverified"
        age = "collected just now" if fact.age == "just now" else f"{fact.age} old"
        lines.append(f"{fact.display_name}: {_text_value(fact.value)} ({trust}, {age})")
    if view.withheld_fields:
        names = ", ".join(f"{w.name} ({w.reason})" for w in view.withheld_fields)
        lines.append(f"Withheld for this read: {names}")
    if view.missing is not None:
        if view.missing.missing:
            lines.append(f"Still missing for scenario {view.scenario_id}, in order:")
            for item in view.missing.missing:
                label = item.display_name or _humanize(item.field_name)
                ask = f' Ask: "{item.collection_prompt}"' if item.collection_prompt else ""
                lines.append(
                    f"- {label} [{item.field_name}] ({item.required_level}, {item.reason}).{ask}"
                )
        else:
            lines.append(f"Nothing is missing for scenario {view.scenario_id}.")
        lines.append(f"Can proceed: {'yes' if view.missing.can_proceed else 'no'}")
    return "\n".join(lines) + "\n"
