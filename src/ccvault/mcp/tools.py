"""The arguments of the seven tools, as models: their JSON schemas are the tools' input
schemas, and the same models check what a client sends."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from ccvault.domain.models import CALLER_ID_PATTERN, CHANNEL_PATTERN, Source

Id = Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class GetCustomerProfile(_Args):
    """Who the customer is: what is known about them, by either id."""

    customer_id: Id | None = None
    """The customer's id in the vault."""
    channel: Annotated[str, StringConstraints(pattern=CHANNEL_PATTERN)] | None = None
    """Instead of the id: the channel the customer writes from (e.g. `whatsapp`)..."""
    channel_user_id: str | None = Field(default=None, min_length=1, max_length=256)
    """...and their handle on it."""
    scenario_id: Id | None = None
    """Also say what is still missing for this scenario."""


class WhatToAskNext(_Args):
    """What is still missing before a scenario can run, in the order to ask for it."""

    customer_id: Id
    """The customer's id."""
    scenario_id: Id
    """The scenario (e.g. `open_account`)."""
    step_id: Id | None = None
    """Only this step of the scenario."""


class RememberFact(_Args):
    """Store one fact the customer gave (or a tool found), with where it came from."""

    customer_id: Id
    """The customer's id (a new id starts a new profile)."""
    field_name: str = Field(min_length=1, max_length=200)
    """The field to store."""
    value: Any
    """The value, as the customer gave it (the vault normalizes it to the field's type)."""
    source: Source = Source.user_provided
    """Where the value came from (default: the customer said it)."""
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    """How sure you are, 0 to 1 (default 1)."""
    verified: StrictBool = False
    """Whether the value has been verified (e.g. by a one-time code)."""
    verification_method: str | None = Field(default=None, min_length=1, max_length=256)
    """How it was verified (e.g. `otp`)."""
    session_id: str | None = Field(default=None, min_length=1, max_length=256)
    """The conversation the value was collected in."""
    derived_from_item_id: str | None = None
    """The id of a field or document version this value was derived from."""


class ForgetFact(_Args):
    """Remove a field's current value (its history stays)."""

    customer_id: Id
    """The customer's id."""
    field_name: str = Field(min_length=1, max_length=200)
    """The field to forget."""


class LinkChannelIdentity(_Args):
    """Remember that a channel handle belongs to a customer."""

    customer_id: Id
    """The customer's id."""
    channel: Annotated[str, StringConstraints(pattern=CHANNEL_PATTERN)]
    """The channel (e.g. `whatsapp`, `email`)."""
    channel_user_id: str = Field(min_length=1, max_length=256)
    """The customer's handle on it."""


class RecordConsent(_Args):
    """Record whether the customer grants a kind of consent."""

    customer_id: Id
    """The customer's id."""
    consent_type: Id
    """The kind of consent (e.g. `marketing_email`)."""
    granted: StrictBool
    """Whether they grant it."""


class ExplainFact(_Args):
    """Where a fact came from: every version, and what the current one was derived from."""

    customer_id: Id
    """The customer's id."""
    field_name: str = Field(min_length=1, max_length=200)
    """The field to explain."""


TOOLS: dict[str, type[_Args]] = {
    "get_customer_profile": GetCustomerProfile,
    "what_to_ask_next": WhatToAskNext,
    "remember_fact": RememberFact,
    "forget_fact": ForgetFact,
    "link_channel_identity": LinkChannelIdentity,
    "record_consent": RecordConsent,
    "explain_fact": ExplainFact,
}

READ_ONLY = {"get_customer_profile", "what_to_ask_next", "explain_fact"}


def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, flattened for tool listings (no `title` noise)."""
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema
