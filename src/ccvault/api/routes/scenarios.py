"""Scenario and rule texts: stored at once, requirements extracted in the background."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import AgentId, VaultDep, json_response
from ccvault.api.errors import responses
from ccvault.domain.cursors import MAX_CURSOR_CHARS, decode_cursor, encode_cursor
from ccvault.domain.inputs import Input
from ccvault.domain.models import CALLER_ID_PATTERN
from ccvault.domain.schema import ReviewQueue
from ccvault.extraction.models import SourceKind

router = APIRouter(prefix="/v1/agents/{agent_id}", tags=["scenarios"])
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
CallerIdStr = Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)]


class Step(Input):
    """One step of a scenario."""

    step_id: CallerIdStr
    """The caller's id for the step."""
    description: Text | None = None
    """What happens in this step."""
    conditions: list[Text] = Field(default_factory=list, max_length=50)
    """Conditions of this step, in plain language (the extractor reads them)."""


class ScenarioBody(Input):
    """PUT /v1/agents/{agent_id}/scenarios/{scenario_id} body."""

    name: Name
    """The scenario's name."""
    description: Text | None = None
    """What the scenario is for, in plain language."""
    conditions: list[Text] = Field(default_factory=list, max_length=50)
    """Conditions of the whole scenario, in plain language."""
    steps: list[Step] = Field(default_factory=list, max_length=100)
    """The scenario's steps, in order."""


class RuleBody(Input):
    """PUT /v1/agents/{agent_id}/rules/{rule_id} body."""

    name: Name
    """The rule's name."""
    condition: Text
    """When the rule applies, in plain language."""
    action: Text | None = None
    """What the agent must do then."""
    scenario_id: CallerIdStr | None = None
    """The scenario the rule belongs to; without one, `missing-fields?rule_id=` checks its
    requirements."""


class Extraction(BaseModel):
    """The last extraction run of a scenario or rule."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    status: Literal["queued", "running", "done", "failed"]
    """`queued`, `running`, `done` or `failed`."""
    error: str | None = None
    """Why the last run failed."""
    finished_at: datetime | None = None
    """When the last run ended."""


class Scenario(BaseModel):
    """A stored scenario with its extraction status."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    agent_id: str
    """The agent the scenario belongs to."""
    scenario_id: str
    """The caller's id for the scenario."""
    name: str
    """The scenario's name."""
    description: str | None
    """What the scenario is for."""
    conditions: list[str]
    """Conditions of the whole scenario."""
    steps: list[dict[str, Any]]
    """The scenario's steps as stored (`step_id`, `description`, `conditions`)."""
    created_at: datetime
    """When the scenario was first stored."""
    updated_at: datetime
    """When it was last replaced."""
    extraction: Extraction
    """The state of its requirement extraction."""


class Rule(BaseModel):
    """A stored rule with its extraction status."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    agent_id: str
    """The agent the rule belongs to."""
    rule_id: str
    """The caller's id for the rule."""
    name: str
    """The rule's name."""
    condition: str
    """When the rule applies."""
    action: str | None
    """What the agent must do then."""
    scenario_id: str | None
    """The scenario the rule belongs to, if any."""
    created_at: datetime
    """When the rule was first stored."""
    updated_at: datetime
    """When it was last replaced."""
    extraction: Extraction
    """The state of its requirement extraction."""


@router.put("/scenarios/{scenario_id}", response_model=Scenario, responses=responses(422))
async def put_scenario(
    agent_id: AgentId,
    scenario_id: AgentId,
    body: ScenarioBody,
    vault: VaultDep,
    caller: CurrentCaller,
) -> Response:
    """Store the scenario; its requirement extraction is queued (never blocks the write)."""
    doc = await vault.scenarios.put_scenario(
        caller.tenant_id, agent_id, scenario_id, body.model_dump()
    )
    return json_response(Scenario.model_validate(doc))


@router.get("/scenarios/{scenario_id}", response_model=Scenario, responses=responses(404, 422))
async def get_scenario(
    agent_id: AgentId, scenario_id: AgentId, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """The stored scenario and its last extraction's status and error."""
    doc = await vault.scenarios.get(SourceKind.scenario, caller.tenant_id, agent_id, scenario_id)
    return json_response(Scenario.model_validate(doc))


@router.delete("/scenarios/{scenario_id}", status_code=204, responses=responses(404, 422))
async def delete_scenario(
    agent_id: AgentId, scenario_id: AgentId, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """Remove the scenario and its requirements."""
    await vault.scenarios.delete(SourceKind.scenario, caller.tenant_id, agent_id, scenario_id)
    return Response(status_code=204)


@router.put("/rules/{rule_id}", response_model=Rule, responses=responses(422))
async def put_rule(
    agent_id: AgentId, rule_id: AgentId, body: RuleBody, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """Store the rule; its requirement extraction is queued."""
    doc = await vault.scenarios.put_rule(caller.tenant_id, agent_id, rule_id, body.model_dump())
    return json_response(Rule.model_validate(doc))


@router.get("/rules/{rule_id}", response_model=Rule, responses=responses(404, 422))
async def get_rule(
    agent_id: AgentId, rule_id: AgentId, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """The stored rule and its last extraction's status and error."""
    doc = await vault.scenarios.get(SourceKind.rule, caller.tenant_id, agent_id, rule_id)
    return json_response(Rule.model_validate(doc))


@router.delete("/rules/{rule_id}", status_code=204, responses=responses(404, 422))
async def delete_rule(
    agent_id: AgentId, rule_id: AgentId, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """Remove the rule and its requirements."""
    await vault.scenarios.delete(SourceKind.rule, caller.tenant_id, agent_id, rule_id)
    return Response(status_code=204)


@router.get("/review-queue", response_model=ReviewQueue, responses=responses(422))
async def review_queue(
    agent_id: AgentId,
    vault: VaultDep,
    caller: CurrentCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
) -> Response:
    """Requirements waiting for review, oldest first, each beside its source text."""
    # The agent is part of the list's name: a cursor of one agent's queue is refused on
    # another's.
    list_name = f"review-queue:{agent_id}"
    after = None
    if cursor is not None:
        at, req_id = decode_cursor(caller.secret, list_name, cursor)
        after = (datetime.fromisoformat(at), UUID(req_id))
    page = await vault.scenarios.review_queue(caller.tenant_id, agent_id, after, limit + 1)
    next_cursor = None
    if len(page) > limit:
        page = page[:limit]
        last_at, last_id = page[-1][1]
        next_cursor = encode_cursor(caller.secret, list_name, [last_at.isoformat(), str(last_id)])
    return json_response(ReviewQueue(items=[item for item, _ in page], next_cursor=next_cursor))
