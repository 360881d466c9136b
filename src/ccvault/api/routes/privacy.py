"""Privacy (DESIGN §8): erasure, export, and the operators' list of erasure receipts."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from ccvault.api.auth import AdminOnly, CurrentCaller
from ccvault.api.deps import CustomerId, PurposeQuery, ServicesDep, json_response
from ccvault.api.errors import responses
from ccvault.domain.answers import ItemList
from ccvault.domain.privacy import EraseRequest, Erasure, ErasureReceipt, ProfileExport
from ccvault.services.erasure import MAX_RECEIPTS

router = APIRouter(prefix="/v1/profiles", tags=["privacy"])
admin_router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminOnly])
# The body is optional: no body is an erasure without a reason.
_NO_REASON = EraseRequest()


@router.post("/{customer_id}/erase", response_model=Erasure, responses=responses(404, 409, 422))
async def erase_profile(
    customer_id: CustomerId,
    services: ServicesDep,
    caller: CurrentCaller,
    body: EraseRequest = _NO_REASON,
) -> Response:
    """Delete everything held about the customer (an alias erases its target), and every
    item of the tenant derived from it, in one transaction; a receipt is kept. The id
    answers 404 everywhere afterwards (a second erasure too) and may start a new profile."""
    return json_response(await services.erasure.erase(caller, customer_id, body))


@router.get("/{customer_id}/export", response_model=ProfileExport, responses=responses(404, 422))
async def export_profile(
    customer_id: CustomerId,
    services: ServicesDep,
    caller: CurrentCaller,
    purpose: PurposeQuery = None,
) -> Response:
    """Everything held about the customer: the profile with every field version, every
    asset version, consents, identities (streamed as it is read). Naming a `purpose`
    leaves out every version of the fields it may not see and lists them in the
    profile's `withheld_fields`."""
    chunks = await services.export.open(caller, customer_id, purpose)
    return StreamingResponse(chunks, media_type="application/json")


@admin_router.get(
    "/erasures", response_model=ItemList[ErasureReceipt], responses=responses(403, 404, 422)
)
async def list_erasures(
    tenant_id: Annotated[UUID, Query()],
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_RECEIPTS)] = 100,
) -> Response:
    """A tenant's erasure receipts, newest first."""
    receipts = await services.erasure.receipts(tenant_id, limit)
    return json_response(ItemList[ErasureReceipt](items=receipts))
