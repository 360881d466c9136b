"""Fields: write a new version, read the active one, history, soft delete."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import (
    AsOfQuery,
    CustomerId,
    FieldName,
    IfMatchDep,
    PurposeQuery,
    ServicesDep,
    json_response,
)
from ccvault.api.errors import responses
from ccvault.domain.answers import ItemList, WrittenField
from ccvault.domain.models import ProfileField, ValidationMode
from ccvault.domain.writes import NewField

router = APIRouter(prefix="/v1/profiles/{customer_id}/fields", tags=["fields"])


@router.put("/{name}", status_code=201, response_model=WrittenField, responses=responses(412, 422))
async def put_field(
    customer_id: CustomerId,
    name: FieldName,
    body: NewField,
    services: ServicesDep,
    caller: CurrentCaller,
    if_match: IfMatchDep,
) -> Response:
    """Write a new active version; the previous one becomes superseded atomically.

    In warn mode the answer carries `validation_warnings` (empty when all is well).
    """
    written = await services.fields.write(caller, customer_id, name, body, if_match=if_match)
    if caller.validation_mode != ValidationMode.warn:
        return json_response(written.field, 201)
    warnings = [{"loc": list(p.loc), "msg": p.msg, "code": p.code} for p in written.warnings]
    return json_response(written.field, 201, extra={"validation_warnings": warnings})


@router.get("/{name}", response_model=ProfileField, responses=responses(403, 404, 422))
async def get_field(
    customer_id: CustomerId,
    name: FieldName,
    services: ServicesDep,
    caller: CurrentCaller,
    purpose: PurposeQuery = None,
    as_of: AsOfQuery = None,
) -> Response:
    """The active version (404 when absent, deleted, or past its expires_at; 403 when a
    read for `purpose` may not see it). With `as_of`, the version active at that instant."""
    if as_of is not None:
        field = await services.asof.field(caller, customer_id, name, as_of, purpose=purpose)
        return json_response(field)
    return json_response(await services.fields.get(caller, customer_id, name, purpose=purpose))


@router.get("/{name}/history", response_model=ItemList[ProfileField], responses=responses(404, 422))
async def field_history(
    customer_id: CustomerId, name: FieldName, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """Every version of the field, newest first, whatever its status."""
    versions = await services.fields.history(caller, customer_id, name)
    return json_response(ItemList[ProfileField](items=versions))


@router.delete("/{name}", status_code=204, responses=responses(404, 412, 422))
async def delete_field(
    customer_id: CustomerId,
    name: FieldName,
    services: ServicesDep,
    caller: CurrentCaller,
    if_match: IfMatchDep,
) -> Response:
    """Soft-delete the current version; items derived from it become orphaned."""
    await services.fields.delete(caller, customer_id, name, if_match=if_match)
    return Response(status_code=204)
