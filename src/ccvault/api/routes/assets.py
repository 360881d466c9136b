"""Assets: document references with the same lifecycle rules as fields."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import CustomerId, IfMatchDep, ServicesDep, json_response
from ccvault.api.errors import responses
from ccvault.domain.answers import ItemList
from ccvault.domain.models import ProfileAsset
from ccvault.domain.writes import NewAsset

router = APIRouter(tags=["assets"])


@router.post(
    "/v1/profiles/{customer_id}/assets",
    status_code=201,
    response_model=ProfileAsset,
    responses=responses(412, 422),
)
async def create_asset(
    customer_id: CustomerId,
    body: NewAsset,
    services: ServicesDep,
    caller: CurrentCaller,
    if_match: IfMatchDep,
) -> Response:
    """Add an asset; a current asset of the same name becomes superseded."""
    asset = await services.assets.add(caller, customer_id, body, if_match=if_match)
    return json_response(asset, 201)


@router.get(
    "/v1/profiles/{customer_id}/assets",
    response_model=ItemList[ProfileAsset],
    responses=responses(404, 422),
)
async def list_assets(
    customer_id: CustomerId,
    services: ServicesDep,
    caller: CurrentCaller,
    include: Annotated[Literal["history"] | None, Query()] = None,
) -> Response:
    """Active assets (every version, deleted ones included, with ?include=history)."""
    assets = await services.assets.list(caller, customer_id, include_history=include == "history")
    return json_response(ItemList[ProfileAsset](items=assets))


@router.get("/v1/assets/{asset_id}", response_model=ProfileAsset, responses=responses(404, 422))
async def get_asset(asset_id: UUID, services: ServicesDep, caller: CurrentCaller) -> Response:
    """One asset version by id; deleted ones are still returned for audit."""
    return json_response(await services.assets.get(caller, asset_id))


@router.delete("/v1/assets/{asset_id}", status_code=204, responses=responses(404, 422))
async def delete_asset(asset_id: UUID, services: ServicesDep, caller: CurrentCaller) -> Response:
    """Soft-delete an asset; items derived from it become orphaned. 404 the second time."""
    await services.assets.delete(caller, asset_id)
    return Response(status_code=204)
