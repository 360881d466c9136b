"""Agents: their definitions (activate or dismiss what extraction suggested), scenarios
and rules with extraction status and requirements, and the review queue."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response

from ccvault.console.web import CallerDep, form_of, redirect, render, text
from ccvault.console.web import state_of as console
from ccvault.domain.models import CALLER_ID_PATTERN, FIELD_NAME_PATTERN
from ccvault.domain.schema import (
    DefinitionAttributes,
    DefinitionBody,
    DefinitionStatus,
    ReviewDecision,
)

router = APIRouter()
AgentId = Annotated[str, Path(pattern=CALLER_ID_PATTERN)]
FieldName = Annotated[str, Path(pattern=FIELD_NAME_PATTERN)]
QUEUE_PAGE = 50


@router.get("/agents")
async def agents(
    request: Request,
    caller: CallerDep,
    agent_id: Annotated[str | None, Query(pattern=CALLER_ID_PATTERN)] = None,
) -> Response:
    """Every agent the tenant has configured, with what it has and what waits for review;
    `agent_id` opens one by id."""
    if agent_id:
        return redirect(request, f"/agents/{agent_id}")
    listed = await console(request).services.agents.list(caller)
    return render(request, "agents.html", {"title": "Agents", "active": "agents", "agents": listed})


@router.get("/agents/{agent_id}")
async def agent(request: Request, caller: CallerDep, agent_id: AgentId) -> Response:
    """Definitions (active and suggested), scenarios with their requirements, rules."""
    services = console(request).services
    active = await services.definitions.list(caller, agent_id, DefinitionStatus.active)
    suggested = await services.definitions.list(caller, agent_id, DefinitionStatus.suggested)
    scenarios, rules = await services.agents.sources(caller, agent_id)
    requirements = {
        s.scenario_id: await services.requirements.list(caller, agent_id, s.scenario_id)
        for s in scenarios
    }
    return render(
        request,
        "agent.html",
        {
            "title": f"Agent {agent_id}",
            "active": "agents",
            "agent_id": agent_id,
            "definitions": active,
            "suggested": suggested,
            "scenarios": scenarios,
            "rules": rules,
            "requirements": requirements,
        },
    )


@router.post("/agents/{agent_id}/suggestions/{name}/activate")
async def activate(
    request: Request, caller: CallerDep, agent_id: AgentId, name: FieldName
) -> Response:
    """Make a suggested definition active, as it was suggested (a caller's PUT)."""
    services = console(request).services
    suggestion = await services.definitions.get(caller, agent_id, name)
    attributes = suggestion.model_dump(include=set(DefinitionAttributes.model_fields))
    await services.definitions.put(
        caller, agent_id, name, DefinitionBody.model_validate(attributes)
    )
    return redirect(request, f"/agents/{agent_id}")


@router.post("/agents/{agent_id}/suggestions/{name}/dismiss")
async def dismiss(
    request: Request, caller: CallerDep, agent_id: AgentId, name: FieldName
) -> Response:
    """Dismiss a suggestion: extraction never suggests that name to this agent again."""
    await console(request).services.definitions.delete(caller, agent_id, name)
    return redirect(request, f"/agents/{agent_id}")


@router.get("/review")
async def review(
    request: Request,
    caller: CallerDep,
    agent: Annotated[str, Query(pattern=CALLER_ID_PATTERN)] | None = None,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """One agent's pending requirements beside their source text (the first agent with
    any when none is chosen)."""
    services = console(request).services
    waiting = [a for a in await services.agents.list(caller) if a.pending_reviews]
    chosen = agent or (waiting[0].agent_id if waiting else None)
    queue = None
    if chosen is not None:
        queue = await services.review.queue(caller, chosen, limit=QUEUE_PAGE, cursor=cursor)
    return render(
        request,
        "review.html",
        {
            "title": "Review queue",
            "active": "review",
            "waiting": waiting,
            "agent_id": chosen,
            "queue": queue,
        },
    )


@router.post("/review/{agent_id}/{requirement_id}")
async def decide(
    request: Request, caller: CallerDep, agent_id: AgentId, requirement_id: UUID
) -> Response:
    """Approve or reject one requirement; htmx swaps the item for the outcome."""
    form = await form_of(request)
    # Anything but approve/reject is a ValidationError: a 422 page (app.py).
    decision = ReviewDecision.model_validate({"decision": text(form, "decision")})
    decided = await console(request).services.requirements.review(
        caller, agent_id, requirement_id, decision
    )
    if request.headers.get("hx-request"):
        return render(request, "review_done.html", {"requirement": decided, "agent_id": agent_id})
    return redirect(request, f"/review?agent={agent_id}")
