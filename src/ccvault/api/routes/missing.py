"""missing-fields: what an agent still has to collect before a scenario, step or rule."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import CustomerId, ServicesDep, json_response
from ccvault.api.errors import responses
from ccvault.domain.models import CALLER_ID_PATTERN
from ccvault.domain.schema import MissingFields, MissingFieldsRequest

router = APIRouter(tags=["schema"])
IdQuery = Annotated[str | None, Query(pattern=CALLER_ID_PATTERN)]


@router.get(
    "/v1/profiles/{customer_id}/missing-fields",
    response_model=MissingFields,
    responses=responses(422),
)
async def get_missing_fields(
    customer_id: CustomerId,
    services: ServicesDep,
    caller: CurrentCaller,
    agent_id: Annotated[str, Query(pattern=CALLER_ID_PATTERN)],
    scenario_id: IdQuery = None,
    step_id: IdQuery = None,
    rule_id: IdQuery = None,
) -> Response:
    """Unmet requirements in collection order and whether the scenario can proceed.

    An unknown profile is a new customer: it is missing everything. A requirement with a
    `rule_id` applies only when that rule is asked for (`rule_id` beside `scenario_id`
    adds the rule's requirements; `rule_id` alone checks only them).
    """
    result = await services.missing.missing(
        caller,
        customer_id,
        agent_id,
        scenario_id=scenario_id,
        rule_id=rule_id,
        step_id=step_id,
    )
    return json_response(result)


@router.post(
    "/v1/profiles/{customer_id}/missing-fields",
    response_model=MissingFields,
    responses=responses(422),
)
async def post_missing_fields(
    customer_id: CustomerId,
    body: MissingFieldsRequest,
    services: ServicesDep,
    caller: CurrentCaller,
) -> Response:
    """The GET's answer, with facts of the conversation (`context`) that requirements'
    conditions may read, such as `transfer_amount > 1000`. Reads only: nothing is stored."""
    result = await services.missing.missing(
        caller,
        customer_id,
        body.agent_id,
        scenario_id=body.scenario_id,
        rule_id=body.rule_id,
        step_id=body.step_id,
        context=body.context,
        loc="body",
    )
    return json_response(result)
