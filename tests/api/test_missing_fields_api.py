"""GET /v1/profiles/{customer_id}/missing-fields: what an agent still has to collect for a
scenario, step or rule, why, in what order, and whether it can go on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ccvault.storage.db import Pool

AGENT = "agent-1"
SCENARIO = "checkout"
CUSTOMER = "c1"
ITEM_KEYS = {
    "field_name",
    "required_level",
    "fallback_action",
    "reason",
    "collection_prompt",
    "display_name",
    "collection_order",
}


# -- helpers ------------------------------------------------------------------------------


async def require(
    api: httpx.AsyncClient,
    field_name: str,
    *,
    scenario: str = SCENARIO,
    step_id: str | None = None,
    agent: str = AGENT,
    **body: Any,
) -> None:
    """PUT a manual requirement (hard, ask unless told otherwise)."""
    params = {"step_id": step_id} if step_id else {}
    resp = await api.put(
        f"/v1/agents/{agent}/scenarios/{scenario}/requirements/{field_name}",
        json=body,
        params=params,
    )
    assert resp.status_code in (200, 201), resp.text


async def define(api: httpx.AsyncClient, name: str, agent: str = AGENT, **body: Any) -> None:
    """PUT a field definition (string, with a display name unless told otherwise)."""
    doc = {"display_name": name.title(), "value_type": "string", **body}
    resp = await api.put(f"/v1/agents/{agent}/field-definitions/{name}", json=doc)
    assert resp.status_code in (200, 201), resp.text


async def write(
    api: httpx.AsyncClient, name: str, value: Any, customer: str = CUSTOMER, **extra: Any
) -> dict[str, Any]:
    """Write a field version and return it."""
    resp = await api.put(
        f"/v1/profiles/{customer}/fields/{name}",
        json={"value": value, "source": "user_provided", **extra},
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def missing(
    api: httpx.AsyncClient, customer: str = CUSTOMER, **params: str
) -> dict[str, Any]:
    """The missing-fields answer (agent-1, scenario checkout unless told otherwise)."""
    query = {"agent_id": AGENT, "scenario_id": SCENARIO, **params}
    query = {k: v for k, v in query.items() if v}
    resp = await api.get(f"/v1/profiles/{customer}/missing-fields", params=query)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert set(body) == {"can_proceed", "missing"}
    for item in body["missing"]:
        assert set(item) == ITEM_KEYS
    return body


def reasons(answer: dict[str, Any]) -> list[tuple[str, str]]:
    """(field_name, reason) of each missing item, in answer order."""
    return [(m["field_name"], m["reason"]) for m in answer["missing"]]


async def insert_extracted(
    pool: Pool,
    tenant_id: uuid.UUID,
    field_name: str,
    *,
    scenario_id: str | None = SCENARIO,
    rule_id: str | None = None,
    step_id: str | None = None,
    fallback_action: str = "ask",
) -> uuid.UUID:
    """Store a requirement as the extractor would: pending review, hard."""
    req_id = uuid.uuid4()
    async with pool.connection() as conn:
        await conn.execute(
            """INSERT INTO scenario_field_requirements (
                   id, tenant_id, agent_id, scenario_id, rule_id, field_name, step_id,
                   required_level, fallback_action, confidence, needs_human_review,
                   review_status, origin)
               VALUES (%s, %s, %s, %s, %s, %s, %s, 'hard', %s, 0.6, true, 'pending',
                       'extracted')""",
            (req_id, tenant_id, AGENT, scenario_id, rule_id, field_name, step_id, fallback_action),
        )
    return req_id


# -- reasons ------------------------------------------------------------------------------


async def test_absent_field_is_missing_with_the_definitions_prompt(
    api: httpx.AsyncClient,
) -> None:
    await define(api, "email", display_name="E-mail", collection_prompt="What is your email?")
    await require(api, "email", collection_order=2)
    await write(api, "name", "Ada")
    assert await missing(api) == {
        "can_proceed": False,
        "missing": [
            {
                "field_name": "email",
                "required_level": "hard",
                "fallback_action": "ask",
                "reason": "missing",
                "collection_prompt": "What is your email?",
                "display_name": "E-mail",
                "collection_order": 2,
            }
        ],
    }


async def test_active_value_satisfies_the_requirement(api: httpx.AsyncClient) -> None:
    await require(api, "email")
    await write(api, "email", "ada@example.com")
    assert await missing(api) == {"can_proceed": True, "missing": []}


async def test_unknown_profile_is_missing_everything(api: httpx.AsyncClient) -> None:
    await require(api, "email", collection_order=1)
    await require(api, "name", collection_order=0)
    answer = await missing(api, customer="never-seen")
    assert answer["can_proceed"] is False
    assert reasons(answer) == [("name", "missing"), ("email", "missing")]
    # Asking does not create the profile.
    assert (await api.get("/v1/profiles/never-seen")).status_code == 404


async def test_superseded_then_deleted_field_is_missing(api: httpx.AsyncClient) -> None:
    await require(api, "email")
    await write(api, "email", "old@example.com")
    await write(api, "email", "new@example.com")
    deleted = await api.delete(f"/v1/profiles/{CUSTOMER}/fields/email")
    assert deleted.status_code == 204
    assert reasons(await missing(api)) == [("email", "missing")]


async def test_field_past_its_expires_at_is_expired(api: httpx.AsyncClient) -> None:
    await require(api, "otp")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    await write(api, "otp", "123456", expires_at=past)
    answer = await missing(api)
    assert reasons(answer) == [("otp", "expired")]
    assert answer["can_proceed"] is False


async def test_field_not_yet_expired_is_present(api: httpx.AsyncClient) -> None:
    await require(api, "otp")
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await write(api, "otp", "123456", expires_at=future)
    assert reasons(await missing(api)) == []


async def test_field_whose_source_was_deleted_is_orphaned(api: httpx.AsyncClient) -> None:
    await require(api, "income")
    source = await write(api, "payslip_text", "salary 3000")
    await write(
        api,
        "income",
        3000,
        source_item_id=source["id"],
        source_item_type="profile_field",
    )
    deleted = await api.delete(f"/v1/profiles/{CUSTOMER}/fields/payslip_text")
    assert deleted.status_code == 204
    assert reasons(await missing(api)) == [("income", "orphaned")]


async def test_value_older_than_freshness_is_stale(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    await define(api, "balance", value_type="number", freshness_seconds=600)
    await require(api, "balance")
    await write(api, "balance", 120, agent_id=AGENT)
    assert reasons(await missing(api)) == []
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET collected_at = now() - interval '1 hour'"
            " WHERE tenant_id = %s AND name = 'balance'",
            (tenant_id,),
        )
    assert reasons(await missing(api)) == [("balance", "stale")]
    # Stale is a missing-fields verdict only: the value stays active.
    field = await api.get(f"/v1/profiles/{CUSTOMER}/fields/balance")
    assert field.status_code == 200
    assert field.json()["status"] == "active"


async def test_unverified_value_is_unmet_when_verification_is_required(
    api: httpx.AsyncClient,
) -> None:
    await define(api, "id_number", required_verification=True)
    await require(api, "id_number")
    await write(api, "id_number", "X123")
    assert reasons(await missing(api)) == [("id_number", "unverified")]
    await write(api, "id_number", "X123", verified=True, verification_method="document")
    assert reasons(await missing(api)) == []


async def test_disabled_definition_counts_as_absent_for_missing_fields(
    api: httpx.AsyncClient,
) -> None:
    await define(
        api,
        "id_number",
        required_verification=True,
        collection_prompt="Your ID?",
        enabled=False,
    )
    await require(api, "id_number")
    answer = await missing(api)
    assert answer["missing"][0]["display_name"] is None
    assert answer["missing"][0]["collection_prompt"] is None
    await write(api, "id_number", "X123")
    assert reasons(await missing(api)) == []


async def test_another_agents_definition_gives_no_prompt(api: httpx.AsyncClient) -> None:
    await define(api, "email", agent="agent-2", collection_prompt="Theirs", display_name="X")
    await require(api, "email")
    [item] = (await missing(api))["missing"]
    assert (item["display_name"], item["collection_prompt"]) == (None, None)


# -- when_condition and depends_on --------------------------------------------------------


async def test_when_condition_true_applies_the_requirement(api: httpx.AsyncClient) -> None:
    await require(api, "customs_id", when_condition='order_type == "international"')
    await write(api, "order_type", "international")
    assert reasons(await missing(api)) == [("customs_id", "missing")]


async def test_when_condition_false_skips_the_requirement(api: httpx.AsyncClient) -> None:
    await require(api, "customs_id", when_condition='order_type == "international"')
    await write(api, "order_type", "domestic")
    assert await missing(api) == {"can_proceed": True, "missing": []}


async def test_when_condition_over_an_absent_field_skips_the_requirement(
    api: httpx.AsyncClient,
) -> None:
    await require(api, "customs_id", when_condition='order_type != "international"')
    assert await missing(api) == {"can_proceed": True, "missing": []}


async def test_when_condition_compares_normalized_numbers(api: httpx.AsyncClient) -> None:
    await require(api, "proof_of_funds", when_condition="amount > 1000")
    await write(api, "amount", "1500", value_type="number")
    assert reasons(await missing(api)) == [("proof_of_funds", "missing")]


async def test_depends_on_present_field_applies_the_requirement(api: httpx.AsyncClient) -> None:
    await require(api, "shipping_address", depends_on_fields=["order_id"])
    await write(api, "order_id", "o-1")
    assert reasons(await missing(api)) == [("shipping_address", "missing")]


async def test_depends_on_absent_field_skips_the_requirement(api: httpx.AsyncClient) -> None:
    await require(api, "shipping_address", depends_on_fields=["order_id"])
    assert await missing(api) == {"can_proceed": True, "missing": []}


# -- scope: steps, scenarios, rules -------------------------------------------------------


async def test_step_filter_keeps_scenario_wide_and_that_steps_requirements(
    api: httpx.AsyncClient,
) -> None:
    await require(api, "name", collection_order=0)
    await require(api, "email", step_id="s1", collection_order=1)
    await require(api, "address", step_id="s2", collection_order=2)
    assert [f for f, _ in reasons(await missing(api, step_id="s1"))] == ["name", "email"]
    assert [f for f, _ in reasons(await missing(api, step_id="s2"))] == ["name", "address"]
    assert [f for f, _ in reasons(await missing(api, step_id="s3"))] == ["name"]
    assert [f for f, _ in reasons(await missing(api))] == ["name", "email", "address"]


async def test_unknown_scenario_can_proceed_with_nothing_missing(api: httpx.AsyncClient) -> None:
    await require(api, "email")
    assert await missing(api, scenario_id="never-stored") == {"can_proceed": True, "missing": []}


async def test_requirements_of_another_scenario_do_not_apply(api: httpx.AsyncClient) -> None:
    await require(api, "email", scenario="returns")
    await require(api, "name")
    assert [f for f, _ in reasons(await missing(api))] == ["name"]


async def test_rule_requirements_are_checked_by_rule_id(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    await insert_extracted(pool, tenant_id, "age", scenario_id=None, rule_id="adult-only")
    answer = await missing(api, scenario_id="", rule_id="adult-only")
    assert answer["can_proceed"] is False
    assert reasons(answer) == [("age", "missing")]
    assert await missing(api) == {"can_proceed": True, "missing": []}
    assert await missing(api, scenario_id="", rule_id="other-rule") == {
        "can_proceed": True,
        "missing": [],
    }
    await write(api, "age", 30)
    assert reasons(await missing(api, scenario_id="", rule_id="adult-only")) == []


async def test_unreviewed_extracted_requirement_is_enforced(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    await insert_extracted(pool, tenant_id, "email")
    answer = await missing(api)
    assert reasons(answer) == [("email", "missing")]
    assert answer["can_proceed"] is False


async def test_missing_fields_needs_a_scenario_or_a_rule(api: httpx.AsyncClient) -> None:
    resp = await api.get(f"/v1/profiles/{CUSTOMER}/missing-fields", params={"agent_id": AGENT})
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")


# -- can_proceed and order ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "action", "can_proceed"),
    [
        ("hard", "ask", False),
        ("hard", "block", False),
        ("hard", "skip", True),
        ("hard", "extract", True),
        ("soft", "ask", True),
        ("soft", "block", True),
    ],
)
async def test_can_proceed_is_false_only_for_an_unmet_hard_ask_or_block(
    api: httpx.AsyncClient, level: str, action: str, can_proceed: bool
) -> None:
    await require(api, "email", required_level=level, fallback_action=action)
    answer = await missing(api)
    assert answer["can_proceed"] is can_proceed
    [item] = answer["missing"]
    assert (item["required_level"], item["fallback_action"]) == (level, action)


async def test_met_hard_requirement_leaves_only_soft_ones_and_can_proceed(
    api: httpx.AsyncClient,
) -> None:
    await require(api, "email", fallback_action="block")
    await require(api, "nickname", required_level="soft")
    await write(api, "email", "ada@example.com")
    answer = await missing(api)
    assert answer["can_proceed"] is True
    assert reasons(answer) == [("nickname", "missing")]


async def test_missing_items_are_ordered_by_collection_order(api: httpx.AsyncClient) -> None:
    for name, order in (("zip", 3), ("email", 1), ("name", 0), ("city", 3), ("phone", 2)):
        await require(api, name, collection_order=order)
    answer = await missing(api)
    assert [m["field_name"] for m in answer["missing"]] == ["name", "email", "phone", "city", "zip"]
    assert [m["collection_order"] for m in answer["missing"]] == [0, 1, 2, 3, 3]


# -- isolation ----------------------------------------------------------------------------


async def test_another_tenants_requirements_and_values_do_not_count(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    await require(api, "email")
    assert await missing(other_api) == {"can_proceed": True, "missing": []}
    await write(other_api, "email", "theirs@example.com")
    assert reasons(await missing(api)) == [("email", "missing")]


async def test_another_agents_requirements_do_not_apply(api: httpx.AsyncClient) -> None:
    await require(api, "email", agent="agent-2")
    assert await missing(api) == {"can_proceed": True, "missing": []}


async def test_field_required_scenario_wide_and_by_the_step_is_listed_once(
    api: httpx.AsyncClient,
) -> None:
    # The answer is "what to ask next": one entry per field, with the strictest level and
    # the earliest position among the requirements that apply.
    await require(api, "email", collection_order=3, required_level="soft", fallback_action="skip")
    await require(api, "email", step_id="s1", collection_order=1)
    await require(api, "email", step_id="s2", collection_order=2)
    for params in ({"step_id": "s1"}, {}):
        answer = await missing(api, **params)
        assert answer["can_proceed"] is False
        assert [
            (m["field_name"], m["required_level"], m["collection_order"]) for m in answer["missing"]
        ] == [("email", "hard", 1)]


async def test_merged_away_customer_id_reads_the_targets_missing_fields(
    api: httpx.AsyncClient,
) -> None:
    await require(api, "email")
    await require(api, "phone")
    await write(api, "email", "ada@example.com", customer="target")
    await write(api, "phone", "+14155552671", customer="source")
    merged = await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    assert merged.status_code == 200, merged.text
    assert await missing(api, customer="source") == {"can_proceed": True, "missing": []}
    assert await missing(api, customer="target") == {"can_proceed": True, "missing": []}
