"""The change feed's shapes (DESIGN §8 "Events"): the event types, an event as the feed
shows it, and the `types` filter a reader gives."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from ccvault.domain.errors import InvalidInput, Problem

EVENT_TYPES = (
    "field.written",
    "field.expired",
    "field.orphaned",
    "field.deleted",
    "asset.added",
    "asset.deleted",
    "profile.created",
    "profile.merged",
    "profile.erased",
    "consent.changed",
    "requirements.extracted",
)
FEED_LIST = "events"


class Event(BaseModel):
    """One change, as the feed and webhooks carry it."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    id: UUID
    """The event's own id (a webhook delivery names it)."""
    type: str
    """One of the event types of DESIGN §8 (`field.written`, `profile.merged`, ...)."""
    at: datetime
    """When the change was made."""
    customer_id: str | None
    """The profile changed; null for tenant-wide events and for `profile.erased`."""
    data: dict[str, Any]
    """What changed, by id and name (`{"id", "name"}` for items, `source_customer_id` for
    merges); never a value."""


class EventPage(BaseModel):
    """A page of the feed: `next_cursor` is always given (an empty page means nothing new
    yet: ask again with the same cursor later)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    items: list[Event]
    """The events after the cursor, in commit order."""
    next_cursor: str
    """Pass it as `after` for the next page."""


def parse_types(types: str | None, loc: tuple[str, ...] = ("query", "types")) -> list[str] | None:
    """The `types` filter (`a,b`) as a list; None for no filter; 422 for a type the
    vault does not know."""
    if not types:
        return None
    wanted = [t.strip() for t in types.split(",") if t.strip()]
    unknown = sorted({t for t in wanted if t not in EVENT_TYPES})
    if unknown:
        raise InvalidInput(
            "Unknown event type.",
            [Problem(loc, f"unknown event type(s): {', '.join(unknown)}", "invalid_type")],
        )
    return sorted(set(wanted)) or None
