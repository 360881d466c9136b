"""Per-agent field definitions and per-scenario requirements."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import AgentId, FieldName, ServicesDep, json_response
from ccvault.api.errors import responses
from ccvault.domain.answers import ItemList
from ccvault.domain.models import CALLER_ID_PATTERN
from ccvault.domain.schema import (
    DefinitionBody,
    DefinitionStatus,
    FieldDefinition,
    Requirement,
    RequirementBody,
    ReviewDecision,
)

router = APIRouter(prefix="/v1/agents/{agent_id}", tags=["schema"])
StepQuery = Annotated[str | None, Query(pattern=CALLER_ID_PATTERN)]


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
    services: ServicesDep,
    caller: CurrentCaller,
) -> Response:
    """Create (201) or replace (200) a definition; a suggestion becomes active."""
    definition, created = await services.definitions.put(caller, agent_id, name, body)
    return json_response(definition, 201 if created else 200)


@router.get(
    "/field-definitions/{name}", response_model=FieldDefinition, responses=responses(404, 422)
)
async def get_definition(
    agent_id: AgentId, name: FieldName, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """One definition (active or suggested)."""
    return json_response(await services.definitions.get(caller, agent_id, name))


@router.get(
    "/field-definitions", response_model=ItemList[FieldDefinition], responses=responses(422)
)
async def list_definitions(
    agent_id: AgentId,
    services: ServicesDep,
    caller: CurrentCaller,
    status: DefinitionStatus = DefinitionStatus.active,
) -> Response:
    """The agent's definitions (`?status=suggested` lists the extractor's suggestions)."""
    items = await services.definitions.list(caller, agent_id, status)
    return json_response(ItemList[FieldDefinition](items=items))


@router.delete("/field-definitions/{name}", status_code=204, responses=responses(404, 422))
async def delete_definition(
    agent_id: AgentId, name: FieldName, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """Retire a definition; field versions that used it keep their reference."""
    await services.definitions.delete(caller, agent_id, name)
    return Response(status_code=204)


@router.get(
    "/scenarios/{scenario_id}/requirements",
    response_model=ItemList[Requirement],
    responses=responses(422),
)
async def list_requirements(
    agent_id: AgentId, scenario_id: AgentId, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """A scenario's requirements, by collection order then field name."""
    items = await services.requirements.list(caller, agent_id, scenario_id)
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
    services: ServicesDep,
    caller: CurrentCaller,
    step_id: StepQuery = None,
) -> Response:
    """Create (201) or replace (200) a manual requirement; no step_id = scenario-wide."""
    requirement, created = await services.requirements.put(
        caller, agent_id, scenario_id, field_name, body, step_id=step_id
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
    services: ServicesDep,
    caller: CurrentCaller,
    step_id: StepQuery = None,
) -> Response:
    """Remove the requirement(s) for that field and step."""
    await services.requirements.delete(caller, agent_id, scenario_id, field_name, step_id=step_id)
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
    services: ServicesDep,
    caller: CurrentCaller,
) -> Response:
    """Approve (clears needs_human_review) or reject (listed, no longer enforced)."""
    requirement = await services.requirements.review(caller, agent_id, requirement_id, body)
    return json_response(requirement)
