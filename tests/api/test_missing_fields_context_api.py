"""POST /v1/profiles/{customer_id}/missing-fields: the GET's question plus `context`, facts
of the conversation (a transfer amount) that `when_condition` reads beside the profile's
values, the profile winning on a name in both; and requirements carrying a `rule_id`,
which apply only when that rule is asked for."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api_support import assert_problem

AGENT = "agent-1"
SCENARIO = "transfer"
CUSTOMER = "c1"
URL = f"/v1/profiles/{CUSTOMER}/missing-fields"


# -- helpers ------------------------------------------------------------------------------


async def require(
    api: httpx.AsyncClient,
    field_name: str,
    *,
    scenario: str = SCENARIO,
    step_id: str | None = None,
    **body: Any,
) -> None:
    """PUT a manual requirement (hard, ask unless told otherwise)."""
    resp = await api.put(
        f"/v1/agents/{AGENT}/scenarios/{scenario}/requirements/{field_name}",
        json=body,
        params={"step_id": step_id} if step_id else {},
    )
    assert resp.status_code in (200, 201), resp.text


async def write(api: httpx.AsyncClient, name: str, value: Any, **extra: Any) -> None:
    resp = await api.put(
        f"/v1/profiles/{CUSTOMER}/fields/{name}",
        json={"value": value, "source": "user_provided", **extra},
    )
    assert resp.status_code == 201, resp.text


async def ask(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """POST missing-fields (agent-1, scenario transfer unless told otherwise)."""
    doc = {"agent_id": AGENT, "scenario_id": SCENARIO, **body}
    resp = await api.post(URL, json={k: v for k, v in doc.items() if v is not None})
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


async def names(api: httpx.AsyncClient, **body: Any) -> list[str]:
    """The missing field names of a POST, in answer order."""
    return [m["field_name"] for m in (await ask(api, **body))["missing"]]


async def get_names(api: httpx.AsyncClient, **params: str) -> list[str]:
    """The missing field names of the GET, in answer order."""
    query = {"agent_id": AGENT, "scenario_id": SCENARIO, **params}
    resp = await api.get(URL, params={k: v for k, v in query.items() if v})
    assert resp.status_code == 200, resp.text
    return [m["field_name"] for m in resp.json()["missing"]]


def error_locs(resp: httpx.Response) -> list[list[str | int]]:
    body = assert_problem(resp, 422)
    for item in body["errors"]:
        assert set(item) == {"loc", "msg", "code"} and item["msg"]
    return [item["loc"] for item in body["errors"]]


# -- conditions over context --------------------------------------------------------------


async def test_a_condition_reads_a_context_value(api: httpx.AsyncClient) -> None:
    await require(api, "proof_of_address", when_condition="transfer_amount > 1000")
    assert await names(api, context={"transfer_amount": 1500}) == ["proof_of_address"]
    assert await names(api, context={"transfer_amount": 1000}) == []
    assert await names(api, context={"transfer_amount": 999.99}) == []
    # Without the fact, the condition reads a name that has no value: it does not hold.
    assert await names(api) == []
    assert await names(api, context={}) == []
    assert await get_names(api) == []


async def test_a_condition_combines_context_and_profile_values(api: httpx.AsyncClient) -> None:
    await require(
        api,
        "source_of_funds",
        when_condition='transfer_amount >= 10000 and country in ["DE", "AT"]',
    )
    context = {"transfer_amount": 25000, "currency": "EUR"}
    assert await names(api, context=context) == []
    await write(api, "country", "DE")
    assert await names(api, context=context) == ["source_of_funds"]
    assert await names(api, context={"transfer_amount": 50}) == []


async def test_the_profile_wins_on_a_name_in_both(api: httpx.AsyncClient) -> None:
    await require(api, "tax_id", when_condition='country == "PT"')
    await write(api, "country", "DE")
    assert await names(api, context={"country": "PT"}) == []
    await write(api, "country", "PT")
    assert await names(api, context={"country": "DE"}) == ["tax_id"]


async def test_context_counts_where_the_profile_has_no_active_value(
    api: httpx.AsyncClient,
) -> None:
    await require(api, "tax_id", when_condition='country == "PT"')
    assert (await api.delete(f"/v1/profiles/{CUSTOMER}/fields/country")).status_code == 404
    await write(api, "country", "DE")
    assert (await api.delete(f"/v1/profiles/{CUSTOMER}/fields/country")).status_code == 204
    assert await names(api, context={"country": "PT"}) == ["tax_id"]


async def test_context_never_satisfies_a_requirement_or_a_dependency(
    api: httpx.AsyncClient,
) -> None:
    await require(api, "email", collection_order=1)
    await require(api, "email_consent", depends_on_fields=["email"], collection_order=2)
    answer = await ask(api, context={"email": "ana@example.com"})
    assert [(m["field_name"], m["reason"]) for m in answer["missing"]] == [("email", "missing")]
    assert answer["can_proceed"] is False


async def test_comparing_a_context_value_of_another_type_does_not_apply(
    api: httpx.AsyncClient,
) -> None:
    await require(api, "proof_of_address", when_condition="transfer_amount > 1000")
    assert await names(api, context={"transfer_amount": "a lot"}) == []
    assert await names(api, context={"transfer_amount": None}) == []


async def test_without_context_the_post_answers_like_the_get(api: httpx.AsyncClient) -> None:
    await require(api, "name", collection_order=0)
    await require(api, "iban", step_id="pay", collection_order=1)
    await write(api, "name", "Ana")
    for step in (None, "pay"):
        post = await ask(api, step_id=step)
        query = {"agent_id": AGENT, "scenario_id": SCENARIO}
        get = await api.get(URL, params={**query, **({"step_id": step} if step else {})})
        assert post == get.json()


async def test_an_unknown_profile_is_missing_everything(api: httpx.AsyncClient) -> None:
    await require(api, "email")
    resp = await api.post(
        "/v1/profiles/never-seen/missing-fields",
        json={"agent_id": AGENT, "scenario_id": SCENARIO, "context": {"x": 1}},
    )
    assert resp.status_code == 200
    assert [m["field_name"] for m in resp.json()["missing"]] == ["email"]


# -- rule_id: only when that rule is asked for --------------------------------------------


async def test_a_requirement_with_a_rule_applies_only_when_that_rule_is_asked_for(
    api: httpx.AsyncClient,
) -> None:
    await require(api, "name", collection_order=0)
    await require(api, "proof_of_address", rule_id="large-transfer", collection_order=1)
    await require(api, "passport", rule_id="sanctions-check", collection_order=2)
    assert await names(api) == ["name"]
    assert await get_names(api) == ["name"]
    assert await names(api, rule_id="large-transfer") == ["name", "proof_of_address"]
    assert await get_names(api, rule_id="large-transfer") == ["name", "proof_of_address"]
    # A rule alone: only its own requirements.
    assert await names(api, scenario_id=None, rule_id="large-transfer") == ["proof_of_address"]
    assert await names(api, rule_id="unknown-rule") == ["name"]


async def test_a_rule_requirement_honours_the_step_and_the_context(
    api: httpx.AsyncClient,
) -> None:
    await require(
        api,
        "proof_of_address",
        rule_id="large-transfer",
        step_id="confirm",
        when_condition="transfer_amount > 1000",
    )
    body = {"rule_id": "large-transfer", "context": {"transfer_amount": 5000}}
    assert await names(api, step_id="confirm", **body) == ["proof_of_address"]
    assert await names(api, step_id="start", **body) == []
    assert await names(api, step_id="confirm", rule_id="large-transfer") == []


# -- bounds and shape ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"context": {f"k{i}": i for i in range(51)}}, ["body", "context"]),
        ({"context": {"tags": ["a", "b"]}}, ["body", "context", "tags"]),
        ({"context": {"address": {"city": "Porto"}}}, ["body", "context", "address"]),
        ({"context": {"note": "x" * 1001}}, ["body", "context", "note"]),
        ({"context": {"big": 2**64}}, ["body", "context", "big"]),
        ({"context": {"Transfer-Amount": 1}}, ["body", "context", "Transfer-Amount", "[key]"]),
        ({"context": ["transfer_amount"]}, ["body", "context"]),
        ({"agent_id": "bad id"}, ["body", "agent_id"]),
        ({"rule_id": "bad id"}, ["body", "rule_id"]),
        ({"scenario_id": None}, ["body", "scenario_id"]),
        ({"customer_id": "c1"}, ["body", "customer_id"]),
    ],
)
async def test_bad_bodies_are_422_at_the_key(
    api: httpx.AsyncClient, body: dict[str, Any], loc: list[str | int]
) -> None:
    doc = {"agent_id": AGENT, "scenario_id": SCENARIO, **body}
    resp = await api.post(URL, json={k: v for k, v in doc.items() if v is not None})
    assert error_locs(resp) == [loc]


async def test_context_at_its_limits_is_accepted(api: httpx.AsyncClient) -> None:
    await require(api, "proof_of_address", when_condition="k49 == 49")
    context: dict[str, Any] = {f"k{i}": i for i in range(50)}
    context["k0"] = "x" * 1000
    assert await names(api, context=context) == ["proof_of_address"]


async def test_a_context_value_message_is_the_vaults_own(api: httpx.AsyncClient) -> None:
    resp = await api.post(
        URL, json={"agent_id": AGENT, "scenario_id": SCENARIO, "context": {"tags": [1]}}
    )
    body = assert_problem(resp, 422)
    assert body["errors"][0]["code"] == "context_value"
    assert body["errors"][0]["msg"] == (
        "a context value is text, a number, a boolean or null, not a list or an object"
    )
