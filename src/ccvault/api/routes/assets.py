"""Assets: document references with the same lifecycle rules as fields."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import CustomerId, IfMatchDep, ItemList, VaultDep, json_response
from ccvault.api.errors import responses
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
    vault: VaultDep,
    caller: CurrentCaller,
    if_match: IfMatchDep,
) -> Response:
    """Add an asset; a current asset of the same name becomes superseded."""
    asset = await vault.profiles.save_asset(
        caller.tenant_id, customer_id, body, key_id=caller.key_id, if_match=if_match
    )
    return json_response(asset, 201)


@router.get(
    "/v1/profiles/{customer_id}/assets",
    response_model=ItemList[ProfileAsset],
    responses=responses(404, 422),
)
async def list_assets(
    customer_id: CustomerId,
    vault: VaultDep,
    caller: CurrentCaller,
    include: Annotated[Literal["history"] | None, Query()] = None,
) -> Response:
    """Active assets (every version, deleted ones included, with ?include=history)."""
    assets = await vault.profiles.list_assets(
        caller.tenant_id, customer_id, include_history=include == "history"
    )
    return json_response(ItemList[ProfileAsset](items=assets))


@router.get("/v1/assets/{asset_id}", response_model=ProfileAsset, responses=responses(404, 422))
async def get_asset(asset_id: UUID, vault: VaultDep, caller: CurrentCaller) -> Response:
    """One asset version by id; deleted ones are still returned for audit."""
    return json_response(await vault.profiles.get_asset(caller.tenant_id, asset_id))


@router.delete("/v1/assets/{asset_id}", status_code=204, responses=responses(404, 422))
async def delete_asset(asset_id: UUID, vault: VaultDep, caller: CurrentCaller) -> Response:
    """Soft-delete an asset; items derived from it become orphaned. 404 the second time."""
    await vault.profiles.delete_asset(caller.tenant_id, asset_id)
    return Response(status_code=204)
