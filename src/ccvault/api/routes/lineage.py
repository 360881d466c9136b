"""Lineage: where an item came from, or what was derived from it."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import ServicesDep
from ccvault.api.errors import responses
from ccvault.domain.models import Direction, Lineage
from ccvault.services.lineage import MAX_DEPTH

router = APIRouter(tags=["lineage"])


@router.get("/v1/lineage/{item_id}", response_model=Lineage, responses=responses(404, 422))
async def get_lineage(
    item_id: UUID,
    services: ServicesDep,
    caller: CurrentCaller,
    direction: Direction = Direction.ancestors,
    max_depth: Annotated[int, Query(ge=0, le=MAX_DEPTH)] = MAX_DEPTH,
) -> Response:
    """The item (depth 0) and its ancestors or descendants, ordered by depth."""
    # The models' JSON, written without building them (the OpenAPI still says Lineage).
    body = await services.lineage.walk_json(caller, item_id, direction, max_depth)
    return Response(body, media_type="application/json")
