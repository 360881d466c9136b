"""DESIGN §8 review work: the review queue (pending requirements beside their source text,
oldest first, signed cursors), manual requirements hiding extracted ones in the list,
dismissed suggestions, definition config errors naming their key, and scenarios deleted
while rules still name them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from api_support import assert_problem
from ccvault.domain.models import ValueType
from ccvault.extraction.heuristic import HeuristicExtractor
from ccvault.extraction.models import SourceKind
from ccvault.extraction.plan import Suggestion
from ccvault.jobs.queue import build_app
from ccvault.runtime import Vault
from ccvault.storage.db import Pool
from ccvault.storage.scenarios import ScenarioStore

AGENT = "agent-r"


def agent_url(agent: str = AGENT) -> str:
    """The agent's URL."""
    return f"/v1/agents/{agent}"


async def put(api: httpx.AsyncClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """PUT that must succeed."""
    resp = await api.put(url, json=body)
    assert resp.status_code in (200, 201), resp.text
    doc: dict[str, Any] = resp.json()
    return doc


async def insert_pending(
    pool: Pool,
    tenant_id: uuid.UUID,
    field_name: str,
    *,
    scenario_id: str | None = "onboarding",
    rule_id: str | None = None,
    step_id: str | None = None,
    agent_id: str = AGENT,
) -> uuid.UUID:
    """Store a requirement as the extractor does when it is unsure (pending review)."""
    req_id = uuid.uuid4()
    async with pool.connection() as conn:
        await conn.execute(
            """INSERT INTO scenario_field_requirements (
                   id, tenant_id, agent_id, scenario_id, rule_id, field_name, step_id,
                   required_level, fallback_action, confidence, needs_human_review,
                   review_status, origin)
               VALUES (%s, %s, %s, %s, %s, %s, %s, 'soft', 'ask', 0.6, true, 'pending',
                       'extracted')""",
            (req_id, tenant_id, agent_id, scenario_id, rule_id, field_name, step_id),
        )
    return req_id


async def queue(api: httpx.AsyncClient, agent: str = AGENT, **params: Any) -> dict[str, Any]:
    """One page of the agent's review queue."""
    resp = await api.get(f"{agent_url(agent)}/review-queue", params=params)
    assert resp.status_code == 200, resp.text
    page: dict[str, Any] = resp.json()
    return page


async def whole_queue(api: httpx.AsyncClient, limit: int) -> list[dict[str, Any]]:
    """Every item of the queue, following cursors."""
    items: list[dict[str, Any]] = []
    page = await queue(api, limit=limit)
    while True:
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        page = await queue(api, limit=limit, cursor=page["next_cursor"])


async def test_review_queue_lists_pending_requirements_oldest_first_with_their_source_text(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    await put(
        api,
        f"{agent_url()}/scenarios/onboarding",
        {
            "name": "Onboarding",
            "description": "Open an account.",
            "steps": [{"step_id": "kyc", "description": "Check the passport."}],
        },
    )
    await put(
        api,
        f"{agent_url()}/rules/minors",
        {"name": "Minors", "condition": "if the customer is under 18", "action": "ask a parent"},
    )
    first = await insert_pending(pool, tenant_id, "passport_number", step_id="kyc")
    second = await insert_pending(pool, tenant_id, "guardian_name", rule_id="minors")
    await insert_pending(pool, tenant_id, "other_agents_field", agent_id="agent-other")

    page = await queue(api)
    assert page["next_cursor"] is None
    assert [item["requirement"]["id"] for item in page["items"]] == [str(first), str(second)]
    scenario_item, rule_item = page["items"]
    assert scenario_item["scenario_id"] == "onboarding" and scenario_item["rule_id"] is None
    assert "Open an account." in scenario_item["source_text"]
    assert "[step kyc] Check the passport." in scenario_item["source_text"]
    assert rule_item["rule_id"] == "minors"
    assert "if the customer is under 18" in rule_item["source_text"]
    assert "Open an account." not in rule_item["source_text"]
    assert rule_item["requirement"]["review_status"] == "pending"


async def test_a_decided_requirement_leaves_the_queue(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    approved = await insert_pending(pool, tenant_id, "email")
    rejected = await insert_pending(pool, tenant_id, "phone")
    waiting = await insert_pending(pool, tenant_id, "country")
    for req_id, decision in ((approved, "approve"), (rejected, "reject")):
        resp = await api.post(
            f"{agent_url()}/requirements/{req_id}/review", json={"decision": decision}
        )
        assert resp.status_code == 200, resp.text
    assert [i["requirement"]["id"] for i in (await queue(api))["items"]] == [str(waiting)]


async def test_paging_the_queue_visits_every_pending_requirement_once(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    ids = [str(await insert_pending(pool, tenant_id, f"field_{n}")) for n in range(7)]
    for limit in (1, 2, 3, 7, 200):
        seen = [item["requirement"]["id"] for item in await whole_queue(api, limit)]
        assert seen == ids, limit


async def test_a_page_that_ends_the_queue_has_no_next_cursor(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    for n in range(2):
        await insert_pending(pool, tenant_id, f"field_{n}")
    assert (await queue(api, limit=1))["next_cursor"] is not None
    assert (await queue(api, limit=2))["next_cursor"] is None
    assert await queue(api, agent="nobody-here") == {"items": [], "next_cursor": None}


async def test_a_cursor_of_another_agent_tenant_or_a_forgery_is_refused(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    for n in range(2):
        await insert_pending(pool, tenant_id, f"field_{n}")
    cursor = (await queue(api, limit=1))["next_cursor"]
    assert cursor
    url = f"{agent_url()}/review-queue"
    body = assert_problem(await api.get(url, params={"cursor": cursor + "x"}), 422)
    assert body["errors"][0]["loc"] == ["query", "cursor"]
    assert_problem(await api.get(url, params={"cursor": "not-a-cursor"}), 422)
    assert_problem(
        await api.get(f"{agent_url('agent-2')}/review-queue", params={"cursor": cursor}), 422
    )
    assert_problem(await other_api.get(url, params={"cursor": cursor}), 422)


async def test_review_queue_limit_is_bounded(api: httpx.AsyncClient) -> None:
    for limit in (0, 201, -1):
        assert_problem(await api.get(f"{agent_url()}/review-queue", params={"limit": limit}), 422)


async def test_another_tenants_pending_requirements_are_not_in_the_queue(
    other_api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    await insert_pending(pool, tenant_id, "email")
    assert (await queue(other_api))["items"] == []


async def test_a_manual_requirement_hides_the_extracted_one_in_the_list_and_the_queue(
    api: httpx.AsyncClient, pool: Pool, tenant_id: uuid.UUID
) -> None:
    hidden = await insert_pending(pool, tenant_id, "email", step_id="s1")
    other_step = await insert_pending(pool, tenant_id, "email", step_id="s2")
    manual = await put(
        api,
        f"{agent_url()}/scenarios/onboarding/requirements/email?step_id=s1",
        {"required_level": "hard", "fallback_action": "ask"},
    )
    resp = await api.get(f"{agent_url()}/scenarios/onboarding/requirements")
    listed = {item["id"] for item in resp.json()["items"]}
    assert listed == {manual["id"], str(other_step)}
    assert str(hidden) not in {i["requirement"]["id"] for i in (await queue(api))["items"]}


async def test_a_dismissed_suggestion_is_never_suggested_again_but_a_put_creates_it(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    store = ScenarioStore(vault.pool)
    await put(api, f"{agent_url()}/scenarios/loyalty", {"name": "Loyalty"})
    suggestion = Suggestion(
        name="loyalty_id",
        display_name="Loyalty id",
        value_type=ValueType.string,
        description="from the text",
        collection_prompt="What is your loyalty id?",
    )

    async def suggest() -> None:
        """Store an extraction run's outcome that suggests loyalty_id."""
        await store.finish_extraction(
            SourceKind.scenario, tenant_id, AGENT, "loyalty", "loyalty", [], [suggestion]
        )

    async def suggested() -> list[str]:
        resp = await api.get(f"{agent_url()}/field-definitions", params={"status": "suggested"})
        return [d["name"] for d in resp.json()["items"]]

    await suggest()
    assert await suggested() == ["loyalty_id"]
    assert (await api.delete(f"{agent_url()}/field-definitions/loyalty_id")).status_code == 204
    await suggest()
    assert await suggested() == []
    created = await api.put(
        f"{agent_url()}/field-definitions/loyalty_id",
        json={"display_name": "Loyalty id", "value_type": "string"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active"


async def test_a_definitions_config_error_names_the_key_at_fault(api: httpx.AsyncClient) -> None:
    url = f"{agent_url()}/field-definitions/ref"
    bad_regex = await api.put(
        url, json={"display_name": "Ref", "value_type": "string", "validation_regex": "([A-Z"}
    )
    body = assert_problem(bad_regex, 422)
    assert [(e["loc"], e["code"]) for e in body["errors"]] == [
        (["body", "validation_regex"], "config_error")
    ]
    bad_allowed = await api.put(
        url, json={"display_name": "Ref", "value_type": "integer", "allowed_values": [1, "x"]}
    )
    body = assert_problem(bad_allowed, 422)
    assert [(e["loc"], e["code"]) for e in body["errors"]] == [
        (["body", "allowed_values"], "config_error")
    ]


async def test_a_scenario_created_anew_gets_back_the_requirements_of_rules_naming_it(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    async def worker_pass() -> None:
        app = build_app(vault.settings, periodic=False)
        async with app.open_async():
            await app.run_worker_async(
                queues=["ccv"],
                wait=False,
                additional_context={"vault": vault, "extractor": HeuristicExtractor()},
                install_signal_handlers=False,
            )

    async def fields() -> set[str]:
        resp = await api.get(f"{agent_url()}/scenarios/transfer/requirements")
        return {item["field_name"] for item in resp.json()["items"]}

    await put(api, f"{agent_url()}/scenarios/transfer", {"name": "Transfer"})
    rule = {"name": "Big", "condition": "Always ask for the email.", "scenario_id": "transfer"}
    await put(api, f"{agent_url()}/rules/big", rule)
    await worker_pass()
    assert "email" in await fields()

    assert (await api.delete(f"{agent_url()}/scenarios/transfer")).status_code == 204
    assert await fields() == set()
    # The rule is the caller's text: it stays as written.
    kept = await api.get(f"{agent_url()}/rules/big")
    assert kept.status_code == 200 and kept.json()["scenario_id"] == "transfer"

    await put(api, f"{agent_url()}/scenarios/transfer", {"name": "Transfer again"})
    await worker_pass()
    assert "email" in await fields()
