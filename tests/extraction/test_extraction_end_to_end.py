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
            json={"value": value, "source": "user_provided", "agent_id": AGENT},
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


async def missing_with(
    api: httpx.AsyncClient, customer: str, scenario_id: str, context: dict[str, Any]
) -> Any:
    """POST missing-fields with facts of the conversation."""
    resp = await api.post(
        f"/v1/profiles/{customer}/missing-fields",
        json={"agent_id": AGENT, "scenario_id": scenario_id, "context": context},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_a_document_above_an_amount_is_asked_only_above_it(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    found = await extracted(
        api, vault, "transfer", "For transfers above 1000 EUR we need proof of address."
    )
    proof = found["proof_of_address"]
    assert proof["when_condition"] == "transfer_amount > 1000"
    assert proof["required_level"] == "hard"
    assert proof["needs_human_review"], "a condition and a document always go to review"

    large = await missing_with(api, "payer", "transfer", {"transfer_amount": 1500})
    assert not large["can_proceed"]
    assert [m["field_name"] for m in large["missing"]] == ["proof_of_address"]
    assert (await missing_with(api, "payer", "transfer", {"transfer_amount": 200}))["can_proceed"]

    await put_fields(api, "documented", {"proof_of_address": "utility-bill-2026-11.pdf"})
    assert (await missing_with(api, "documented", "transfer", {"transfer_amount": 1500}))[
        "can_proceed"
    ]


async def test_over_18_refuses_a_minor_once_the_suggested_definition_is_accepted(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    found = await extracted(api, vault, "adult", "The customer must be over 18. Collect the email.")
    assert found["date_of_birth"]["required_level"] == "hard"
    suggested = await api.get(f"/v1/agents/{AGENT}/field-definitions/date_of_birth")
    assert suggested.status_code == 200, suggested.text
    suggestion = suggested.json()
    assert suggestion["status"] == "suggested"
    assert suggestion["value_type"] == "date" and suggestion["min_age"] == 18

    # A person accepts the suggestion as it is (its bound included).
    accepted = await api.put(
        f"/v1/agents/{AGENT}/field-definitions/date_of_birth",
        json={
            "display_name": suggestion["display_name"],
            "value_type": "date",
            "min_age": suggestion["min_age"],
        },
    )
    assert accepted.status_code in {200, 201}, accepted.text

    minor = await api.put(
        "/v1/profiles/minor/fields/date_of_birth",
        json={"value": "2015-06-01", "source": "user_provided", "agent_id": AGENT},
    )
    # The tenant validates in warn mode: the value is kept, flagged as out of range.
    assert minor.status_code == 201, minor.text
    assert [w["code"] for w in minor.json()["validation_warnings"]] == ["range_error"]
    await put_fields(api, "minor", {"email": "m@example.com"})
    refused = await missing(api, "minor", "adult")
    assert not refused["can_proceed"]
    assert [(m["field_name"], m["reason"]) for m in refused["missing"]] == [
        ("date_of_birth", "range")
    ]

    await put_fields(api, "grown-up", {"email": "g@example.com", "date_of_birth": "1990-06-01"})
    assert (await missing(api, "grown-up", "adult"))["can_proceed"]


async def test_an_age_limit_on_an_existing_definition_without_it_goes_to_review(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    resp = await api.put(
        f"/v1/agents/{AGENT}/field-definitions/date_of_birth",
        json={"display_name": "Date of birth", "value_type": "date"},
    )
    assert resp.status_code == 201, resp.text
    await put_scenario(api, "adult-2", scenario("The customer must be at least 21."))
    await worker_pass(vault)
    found = by_field(await requirements(api, "adult-2"))
    assert found["date_of_birth"]["needs_human_review"], "the definition has no min_age"
    # Nothing about the agent's own definition changes without a person.
    kept = await api.get(f"/v1/agents/{AGENT}/field-definitions/date_of_birth")
    assert kept.json()["status"] == "active" and kept.json()["min_age"] is None
