"""Per-agent field definitions and per-scenario requirements."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import AgentId, FieldName, ItemList, VaultDep, json_response
from ccvault.api.errors import responses
from ccvault.domain.inputs import Input
from ccvault.domain.models import CALLER_ID_PATTERN
from ccvault.domain.schema import (
    DefinitionBody,
    DefinitionStatus,
    FieldDefinition,
    Requirement,
    RequirementBody,
)

router = APIRouter(prefix="/v1/agents/{agent_id}", tags=["schema"])
StepQuery = Annotated[str | None, Query(pattern=CALLER_ID_PATTERN)]


class ReviewDecision(Input):
    """POST .../requirements/{id}/review body."""

    decision: Literal["approve", "reject"]
    """`approve` clears `needs_human_review`; `reject` keeps the requirement listed but no longer
    enforced."""


@router.put(
    "/field-definitions/{name}",
    response_model=FieldDefinition,
    status_code=200,
    responses={201: {"description": "Created"}, **responses(422)},
)
async def put_definition(
    agent_id: AgentId,
    name: FieldName,
    body: DefinitionBody,
    vault: VaultDep,
    caller: CurrentCaller,
) -> Response:
    """Create (201) or replace (200) a definition; a suggestion becomes active."""
    definition, created = await vault.schema.put_definition(caller.tenant_id, agent_id, name, body)
    return json_response(definition, 201 if created else 200)


@router.get(
    "/field-definitions/{name}", response_model=FieldDefinition, responses=responses(404, 422)
)
async def get_definition(
    agent_id: AgentId, name: FieldName, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """One definition (active or suggested)."""
    return json_response(await vault.schema.get_definition(caller.tenant_id, agent_id, name))


@router.get(
    "/field-definitions", response_model=ItemList[FieldDefinition], responses=responses(422)
)
async def list_definitions(
    agent_id: AgentId,
    vault: VaultDep,
    caller: CurrentCaller,
    status: DefinitionStatus = DefinitionStatus.active,
) -> Response:
    """The agent's definitions (`?status=suggested` lists the extractor's suggestions)."""
    items = await vault.schema.list_definitions(caller.tenant_id, agent_id, status)
    return json_response(ItemList[FieldDefinition](items=items))


@router.delete("/field-definitions/{name}", status_code=204, responses=responses(404, 422))
async def delete_definition(
    agent_id: AgentId, name: FieldName, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """Retire a definition; field versions that used it keep their reference."""
    await vault.schema.delete_definition(caller.tenant_id, agent_id, name)
    return Response(status_code=204)


@router.get(
    "/scenarios/{scenario_id}/requirements",
    response_model=ItemList[Requirement],
    responses=responses(422),
)
async def list_requirements(
    agent_id: AgentId, scenario_id: AgentId, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """A scenario's requirements, by collection order then field name."""
    items = await vault.schema.list_requirements(caller.tenant_id, agent_id, scenario_id)
    return json_response(ItemList[Requirement](items=items))


@router.put(
    "/scenarios/{scenario_id}/requirements/{field_name}",
    response_model=Requirement,
    status_code=200,
    responses={201: {"description": "Created"}, **responses(422)},
)
async def put_requirement(
    agent_id: AgentId,
    scenario_id: AgentId,
    field_name: FieldName,
    body: RequirementBody,
    vault: VaultDep,
    caller: CurrentCaller,
    step_id: StepQuery = None,
) -> Response:
    """Create (201) or replace (200) a manual requirement; no step_id = scenario-wide."""
    requirement, created = await vault.schema.put_requirement(
        caller.tenant_id, agent_id, scenario_id, field_name, step_id, body
    )
    return json_response(requirement, 201 if created else 200)


@router.delete(
    "/scenarios/{scenario_id}/requirements/{field_name}",
    status_code=204,
    responses=responses(404, 422),
)
async def delete_requirement(
    agent_id: AgentId,
    scenario_id: AgentId,
    field_name: FieldName,
    vault: VaultDep,
    caller: CurrentCaller,
    step_id: StepQuery = None,
) -> Response:
    """Remove the requirement(s) for that field and step."""
    await vault.schema.delete_requirement(
        caller.tenant_id, agent_id, scenario_id, field_name, step_id
    )
    return Response(status_code=204)


@router.post(
    "/requirements/{requirement_id}/review",
    response_model=Requirement,
    responses=responses(404, 422),
)
async def review_requirement(
    agent_id: AgentId,
    requirement_id: UUID,
    body: ReviewDecision,
    vault: VaultDep,
    caller: CurrentCaller,
) -> Response:
    """Approve (clears needs_human_review) or reject (listed, no longer enforced)."""
    decision = "approved" if body.decision == "approve" else "rejected"
    requirement = await vault.schema.review_requirement(
        caller.tenant_id, agent_id, requirement_id, decision
    )
    return json_response(requirement)
