"""Webhooks (DESIGN §8 "Events"): register, list and delete endpoints, and read an
endpoint's delivery log."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import ServicesDep, json_response
from ccvault.api.errors import responses
from ccvault.domain.answers import ItemList
from ccvault.domain.webhooks import Delivery, NewWebhook, Webhook
from ccvault.services.webhooks import MAX_DELIVERIES

router = APIRouter(prefix="/v1/webhooks", tags=["events"])


@router.post("", status_code=201, response_model=Webhook, responses=responses(409, 422))
async def create_webhook(
    body: NewWebhook, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """Register an endpoint: each event of the listed types (all when none) is POSTed to
    it, signed with `secret` (`CCV-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t +
    "." + body)>`), retried with exponential backoff until it answers 2xx."""
    return json_response(await services.webhooks.create(caller, body), 201)


@router.get("", response_model=ItemList[Webhook], responses=responses(422))
async def list_webhooks(services: ServicesDep, caller: CurrentCaller) -> Response:
    """The tenant's endpoints (never their secrets)."""
    return json_response(ItemList[Webhook](items=await services.webhooks.list_all(caller)))


@router.delete("/{webhook_id}", status_code=204, responses=responses(404, 422))
async def delete_webhook(
    webhook_id: UUID, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """Remove an endpoint and its delivery log; deliveries still queued are dropped."""
    await services.webhooks.delete(caller, webhook_id)
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries", response_model=ItemList[Delivery], responses=responses(404, 422)
)
async def list_webhook_deliveries(
    webhook_id: UUID,
    services: ServicesDep,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=MAX_DELIVERIES)] = 100,
) -> Response:
    """Every attempt to deliver to the endpoint, newest first."""
    found = await services.webhooks.deliveries(caller, webhook_id, limit)
    return json_response(ItemList[Delivery](items=found))
