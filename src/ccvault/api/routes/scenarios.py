"""Scenario and rule texts: stored at once, requirements extracted in the background."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import AgentId, ServicesDep, json_response
from ccvault.api.errors import responses
from ccvault.domain.cursors import MAX_CURSOR_CHARS
from ccvault.domain.scenarios import Rule, RuleBody, Scenario, ScenarioBody, SourceKind
from ccvault.domain.schema import ReviewQueue

router = APIRouter(prefix="/v1/agents/{agent_id}", tags=["scenarios"])


@router.put("/scenarios/{scenario_id}", response_model=Scenario, responses=responses(422))
async def put_scenario(
    agent_id: AgentId,
    scenario_id: AgentId,
    body: ScenarioBody,
    services: ServicesDep,
    caller: CurrentCaller,
) -> Response:
    """Store the scenario; its requirement extraction is queued (never blocks the write)."""
    return json_response(await services.scenarios.put_scenario(caller, agent_id, scenario_id, body))


@router.get("/scenarios/{scenario_id}", response_model=Scenario, responses=responses(404, 422))
async def get_scenario(
    agent_id: AgentId, scenario_id: AgentId, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """The stored scenario and its last extraction's status and error."""
    return json_response(await services.scenarios.get_scenario(caller, agent_id, scenario_id))


@router.delete("/scenarios/{scenario_id}", status_code=204, responses=responses(404, 422))
async def delete_scenario(
    agent_id: AgentId, scenario_id: AgentId, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """Remove the scenario and its requirements."""
    await services.scenarios.delete(caller, SourceKind.scenario, agent_id, scenario_id)
    return Response(status_code=204)


@router.put("/rules/{rule_id}", response_model=Rule, responses=responses(422))
async def put_rule(
    agent_id: AgentId,
    rule_id: AgentId,
    body: RuleBody,
    services: ServicesDep,
    caller: CurrentCaller,
) -> Response:
    """Store the rule; its requirement extraction is queued."""
    return json_response(await services.scenarios.put_rule(caller, agent_id, rule_id, body))


@router.get("/rules/{rule_id}", response_model=Rule, responses=responses(404, 422))
async def get_rule(
    agent_id: AgentId, rule_id: AgentId, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """The stored rule and its last extraction's status and error."""
    return json_response(await services.scenarios.get_rule(caller, agent_id, rule_id))


@router.delete("/rules/{rule_id}", status_code=204, responses=responses(404, 422))
async def delete_rule(
    agent_id: AgentId, rule_id: AgentId, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """Remove the rule and its requirements."""
    await services.scenarios.delete(caller, SourceKind.rule, agent_id, rule_id)
    return Response(status_code=204)


@router.get("/review-queue", response_model=ReviewQueue, responses=responses(422))
async def review_queue(
    agent_id: AgentId,
    services: ServicesDep,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
) -> Response:
    """Requirements waiting for review, oldest first, each beside its source text."""
    return json_response(await services.review.queue(caller, agent_id, limit=limit, cursor=cursor))
