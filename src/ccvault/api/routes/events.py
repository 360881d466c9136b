"""The change feed (DESIGN §8 "Events")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import ServicesDep
from ccvault.api.errors import responses
from ccvault.domain.events import EventPage, parse_types
from ccvault.services.events import MAX_PAGE

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.get("", response_model=EventPage, responses=responses(422))
async def list_events(
    services: ServicesDep,
    caller: CurrentCaller,
    after: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    types: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    """The tenant's events after the cursor, in commit order, never skipping or repeating
    one across pages; `next_cursor` is always given (an empty page: nothing new yet)."""
    page = await services.events.page(caller, after=after, limit=limit, types=parse_types(types))
    return Response(page.body(), media_type="application/json")
