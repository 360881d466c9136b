"""Issue 16 end to end on real PostgreSQL: PUT a scenario text, let the worker extract it,
then missing-fields refuses a customer who does not meet what the text asks and accepts
one who does (after a person approves the requirements that go to review)."""

from __future__ import annotations

from typing import Any

import httpx
from test_extraction_flow import (
    AGENT,
    by_field,
    extraction,
    put_scenario,
    requirements,
    scenario_url,
    worker_pass,
)

from ccvault.runtime import Vault


def scenario(text: str) -> dict[str, Any]:
    """A scenario whose whole text is its description."""
    return {"name": "Issue 16", "description": text}


async def extracted(
    api: httpx.AsyncClient, vault: Vault, scenario_id: str, text: str
) -> dict[str, dict[str, Any]]:
    """PUT the text, run the worker, approve every requirement waiting for review (as a
    person would after reading it), and return the requirements by field."""
    await put_scenario(api, scenario_id, scenario(text))
    await worker_pass(vault)
    assert (await extraction(api, scenario_url(scenario_id)))["status"] == "done"
    found = by_field(await requirements(api, scenario_id))
    for requirement in found.values():
        if requirement["review_status"] == "pending":
            resp = await api.post(
                f"/v1/agents/{AGENT}/requirements/{requirement['id']}/review",
                json={"decision": "approve"},
            )
            assert resp.status_code == 200, resp.text
    return found


async def put_fields(api: httpx.AsyncClient, customer: str, values: dict[str, Any]) -> None:
    """Write the customer's facts."""
    for name, value in values.items():
        resp = await api.put(
            f"/v1/profiles/{customer}/fields/{name}",
            json={"value": value, "source": "user_provided"},
        )
        assert resp.status_code in {200, 201}, resp.text


async def missing(api: httpx.AsyncClient, customer: str, scenario_id: str) -> Any:
    """missing-fields for the scenario."""
    resp = await api.get(
        f"/v1/profiles/{customer}/missing-fields",
        params={"agent_id": AGENT, "scenario_id": scenario_id},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_must_tell_us_blocks_until_every_item_is_collected(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    found = await extracted(
        api,
        vault,
        "loan",
        "For a loan the customer must tell us their income, employment status and IBAN,"
        " and the tax ID.",
    )
    assert set(found) == {"annual_income", "employment_status", "bank_account", "tax_id"}
    assert {r["required_level"] for r in found.values()} == {"hard"}

    nothing = await missing(api, "loan-new", "loan")
    assert not nothing["can_proceed"]
    assert len(nothing["missing"]) == 4

    await put_fields(
        api,
        "loan-done",
        {
            "annual_income": 42000,
            "employment_status": "employed",
            "bank_account": "DE89370400440532013000",
            "tax_id": "12345678901",
        },
    )
    assert (await missing(api, "loan-done", "loan"))["can_proceed"]


async def test_a_business_condition_applies_only_to_business_customers(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    found = await extracted(
        api,
        vault,
        "b2b-checkout",
        "If the customer is a business, we need the VAT number. Ask every customer for the email.",
    )
    assert found["vat_number"]["when_condition"] == 'customer_type == "business"'
    assert found["vat_number"]["needs_human_review"], "a condition always goes to review"

    await put_fields(api, "biz", {"customer_type": "business", "email": "b@example.com"})
    business = await missing(api, "biz", "b2b-checkout")
    assert not business["can_proceed"]
    assert [m["field_name"] for m in business["missing"]] == ["vat_number"]

    await put_fields(api, "person", {"customer_type": "private", "email": "p@example.com"})
    assert (await missing(api, "person", "b2b-checkout"))["can_proceed"]


async def test_optional_wording_never_blocks(api: httpx.AsyncClient, vault: Vault) -> None:
    found = await extracted(
        api, vault, "signup", "Collect the email. Ideally also ask for the marital status."
    )
    assert found["marital_status"]["required_level"] == "soft"
    assert found["marital_status"]["fallback_action"] == "skip"

    await put_fields(api, "signed-up", {"email": "s@example.com"})
    answer = await missing(api, "signed-up", "signup")
    assert answer["can_proceed"]
    assert [m["field_name"] for m in answer["missing"]] == ["marital_status"]
    assert not (await missing(api, "nobody", "signup"))["can_proceed"]
