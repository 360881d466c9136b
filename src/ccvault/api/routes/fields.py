"""Fields: write a new version, read the active one, history, soft delete."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import CustomerId, FieldName, IfMatchDep, ItemList, VaultDep, json_response
from ccvault.api.errors import responses
from ccvault.api.problems import ValidationIssue
from ccvault.config import ValidationMode
from ccvault.domain.models import ProfileField
from ccvault.domain.writes import NewField
from ccvault.field_writes import write_field

router = APIRouter(prefix="/v1/profiles/{customer_id}/fields", tags=["fields"])


class WrittenField(ProfileField):
    """The new active version, with the validation warnings in warn mode."""

    validation_warnings: list[ValidationIssue] | None = None
    """Only in the tenant's warn mode: what failed validation (the value was stored anyway);
    empty when all is well."""


@router.put("/{name}", status_code=201, response_model=WrittenField, responses=responses(412, 422))
async def put_field(
    customer_id: CustomerId,
    name: FieldName,
    body: NewField,
    vault: VaultDep,
    caller: CurrentCaller,
    if_match: IfMatchDep,
) -> Response:
    """Write a new active version; the previous one becomes superseded atomically.

    In warn mode the answer carries `validation_warnings` (empty when all is well).
    """
    mode = ValidationMode(caller.validation_mode)
    written = await write_field(
        vault.profiles,
        vault.schema,
        mode,
        caller.tenant_id,
        customer_id,
        name,
        body,
        key_id=caller.key_id,
        if_match=if_match,
    )
    if mode is not ValidationMode.warn:
        return json_response(written.field, 201)
    warnings = [{"loc": list(p.loc), "msg": p.msg, "code": p.code} for p in written.warnings]
    return json_response(written.field, 201, extra={"validation_warnings": warnings})


@router.get("/{name}", response_model=ProfileField, responses=responses(404, 422))
async def get_field(
    customer_id: CustomerId, name: FieldName, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """The active version (404 when absent, deleted, or past its expires_at)."""
    return json_response(await vault.profiles.get_field(caller.tenant_id, customer_id, name))


@router.get("/{name}/history", response_model=ItemList[ProfileField], responses=responses(404, 422))
async def field_history(
    customer_id: CustomerId, name: FieldName, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """Every version of the field, newest first, whatever its status."""
    versions = await vault.profiles.field_history(caller.tenant_id, customer_id, name)
    return json_response(ItemList[ProfileField](items=versions))


@router.delete("/{name}", status_code=204, responses=responses(404, 412, 422))
async def delete_field(
    customer_id: CustomerId,
    name: FieldName,
    vault: VaultDep,
    caller: CurrentCaller,
    if_match: IfMatchDep,
) -> Response:
    """Soft-delete the current version; items derived from it become orphaned."""
    await vault.profiles.delete_field(caller.tenant_id, customer_id, name, if_match=if_match)
    return Response(status_code=204)
