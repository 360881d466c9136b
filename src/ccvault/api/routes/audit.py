"""The audit log of one customer (DESIGN §8 "Audit log"): who wrote and read their data,
and why, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import CustomerId, ServicesDep, json_response
from ccvault.api.errors import responses
from ccvault.domain.answers import Page
from ccvault.domain.audit import AuditEntry

router = APIRouter(prefix="/v1/profiles", tags=["privacy"])


@router.get("/{customer_id}/audit", response_model=Page[AuditEntry], responses=responses(422))
async def list_profile_audit(
    customer_id: CustomerId,
    services: ServicesDep,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """The customer's audit entries, newest first: every write and read of their data
    (`action`), by whom (`actor`: a key id, `admin` or `job:<name>`), for what `purpose`,
    in which request. Entries name no value and no customer id (`subject_hash`), so they
    outlive an erasure. Every entry committed before the request is listed."""
    page = await services.audit.list(caller, customer_id, limit=limit, cursor=cursor)
    return json_response(page)
