"""The prompt-ready context view of a customer for one agent (JSON or plain text)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import CustomerId, PurposeQuery, ServicesDep, json_response
from ccvault.api.errors import responses
from ccvault.domain.context import ContextView, render_text
from ccvault.domain.models import CALLER_ID_PATTERN

router = APIRouter(tags=["profiles"])
IdQuery = Annotated[str | None, Query(pattern=CALLER_ID_PATTERN)]
TEXT_EXAMPLE = (
    "Customer c1 (verification level: phone_verified)\n"
    "Email address: ada@example.com (verified, 3 days old)\n"
    "Still missing for scenario onboarding, in order:\n"
    '- Date of birth [date_of_birth] (hard, missing). Ask: "What is your date of birth?"\n'
    "Can proceed: no\n"
)


@router.get(
    "/v1/profiles/{customer_id}/context",
    response_model=ContextView,
    responses={
        200: {
            "description": "The agent's view (`format=text`: compact lines for a prompt)",
            "content": {"text/plain": {"example": TEXT_EXAMPLE}},
        },
        **responses(404, 422),
    },
)
async def get_context(
    customer_id: CustomerId,
    services: ServicesDep,
    caller: CurrentCaller,
    agent_id: Annotated[str, Query(pattern=CALLER_ID_PATTERN)],
    scenario_id: IdQuery = None,
    step_id: IdQuery = None,
    purpose: PurposeQuery = None,
    format: Literal["json", "text"] = "json",
) -> Response:
    """What the agent may know: its definitions' display names with the active values,
    verification and age of each, and what is still missing for `scenario_id`."""
    view = await services.context.view(
        caller,
        customer_id,
        agent_id=agent_id,
        scenario_id=scenario_id,
        step_id=step_id,
        purpose=purpose,
    )
    if format == "text":
        return Response(render_text(view), media_type="text/plain; charset=utf-8")
    return json_response(view)
