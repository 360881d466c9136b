"""GET /v1/profiles/{customer_id}/context: one agent's prompt-ready view of a customer, as
JSON and as compact text lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ccvault.domain.context import TEXT_VALUE_CHARS, age_of

AGENT = "onboarding-bot"
URL = "/v1/profiles/c1/context"


async def _define(api: httpx.AsyncClient, name: str, display: str, value_type: str) -> None:
    resp = await api.put(
        f"/v1/agents/{AGENT}/field-definitions/{name}",
        json={
            "display_name": display,
            "value_type": value_type,
            "collection_prompt": f"What is your {display.lower()}?",
        },
    )
    assert resp.status_code in (200, 201), resp.text


async def _write(api: httpx.AsyncClient, name: str, value: Any, **extra: Any) -> None:
    body = {"value": value, "source": "user_provided", **extra}
    resp = await api.put(f"/v1/profiles/c1/fields/{name}", json=body)
    assert resp.status_code == 201, resp.text


async def _context(api: httpx.AsyncClient, **params: str) -> httpx.Response:
    return await api.get(URL, params={"agent_id": AGENT, **params})


async def test_the_view_names_facts_by_the_agents_display_names_with_trust_and_age(
    api: httpx.AsyncClient,
) -> None:
    await _define(api, "email", "Email address", "email")
    await _write(
        api, "email", "Ada@Example.COM", agent_id=AGENT, verified=True, verification_method="otp"
    )
    await _write(api, "favourite_colour", "green")

    resp = await _context(api)
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["customer_id"] == "c1"
    assert view["agent_id"] == AGENT
    assert view["missing"] is None
    assert view["withheld_fields"] == []
    facts = {f["name"]: f for f in view["facts"]}
    assert [f["name"] for f in view["facts"]] == ["email", "favourite_colour"]  # defined first
    assert facts["email"]["display_name"] == "Email address"
    assert facts["email"]["value"] == "Ada@example.com"  # stored normalized
    assert facts["email"]["verified"] is True
    assert facts["email"]["defined"] is True
    assert facts["favourite_colour"]["display_name"] == "Favourite colour"
    assert facts["favourite_colour"]["defined"] is False
    assert facts["favourite_colour"]["age"] == "just now"


async def test_the_text_view_is_one_fact_a_line_with_what_is_missing_in_order(
    api: httpx.AsyncClient,
) -> None:
    await _define(api, "email", "Email address", "email")
    await _define(api, "date_of_birth", "Date of birth", "date")
    await _write(api, "email", "ada@example.com", verified=True)
    resp = await api.put(
        f"/v1/agents/{AGENT}/scenarios/onboarding/requirements/date_of_birth",
        json={"required_level": "hard", "fallback_action": "ask"},
    )
    assert resp.status_code in (200, 201), resp.text

    resp = await _context(api, scenario_id="onboarding", format="text")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    lines = resp.text.splitlines()
    assert lines[0] == "Customer c1 (verification level: unverified)"
    assert lines[1] == "Email address: ada@example.com (verified, collected just now)"
    assert lines[2] == "Still missing for scenario onboarding, in order:"
    assert lines[3] == (
        '- Date of birth [date_of_birth] (hard, missing). Ask: "What is your date of birth?"'
    )
    assert lines[4] == "Can proceed: no"

    as_json = (await _context(api, scenario_id="onboarding")).json()
    assert as_json["missing"]["can_proceed"] is False
    assert [m["field_name"] for m in as_json["missing"]["missing"]] == ["date_of_birth"]


async def test_expired_deleted_and_superseded_values_are_not_facts(api: httpx.AsyncClient) -> None:
    await _write(api, "tier", "silver")
    await _write(api, "tier", "gold")  # supersedes silver
    await _write(api, "nickname", "Ada")
    assert (await api.delete("/v1/profiles/c1/fields/nickname")).status_code == 204
    past = datetime.now(UTC) - timedelta(seconds=1)
    await _write(api, "promo_code", "SPRING", expires_at=past.isoformat())
    view = (await _context(api)).json()
    assert [(f["name"], f["value"]) for f in view["facts"]] == [("tier", "gold")]


async def test_long_and_multiline_values_stay_on_one_cut_line_in_text(
    api: httpx.AsyncClient,
) -> None:
    await _write(api, "notes", "first line\nsecond line " + "x" * 1000)
    await _write(api, "prefs", {"channel": "email", "hours": [9, 17]})
    lines = (await _context(api, format="text")).text.splitlines()
    notes = next(line for line in lines if line.startswith("Notes: "))
    assert "\n" not in notes
    assert notes.startswith("Notes: first line second line xxx")
    assert f"… ({len('first line second line ') + 1000 - TEXT_VALUE_CHARS} more characters)" in (
        notes
    )
    prefs = next(line for line in lines if line.startswith("Prefs: "))
    assert json.loads(prefs.removeprefix("Prefs: ").rsplit(" (", 1)[0]) == {
        "channel": "email",
        "hours": [9, 17],
    }


async def test_an_unknown_customer_is_404_and_another_tenants_is_too(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    assert (await _context(api)).status_code == 404
    await _write(api, "tier", "gold")
    resp = await other_api.get(URL, params={"agent_id": AGENT})
    assert resp.status_code == 404
    assert "gold" not in resp.text


async def test_bad_parameters_are_422(api: httpx.AsyncClient) -> None:
    await _write(api, "tier", "gold")
    assert (await api.get(URL)).status_code == 422  # agent_id is required
    assert (await _context(api, format="yaml")).status_code == 422
    assert (await _context(api, scenario_id="no spaces")).status_code == 422


async def test_the_text_view_is_much_smaller_than_the_profile_json(
    api: httpx.AsyncClient,
) -> None:
    for i in range(20):
        await _define(api, f"field_{i:02}", f"Field {i}", "string")
        await _write(api, f"field_{i:02}", f"value {i}")
    text = (await _context(api, format="text")).content
    profile = (await api.get("/v1/profiles/c1")).content
    assert len(text) * 5 < len(profile)


def test_ages_read_as_people_say_them() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    assert age_of(now, now) == "just now"
    assert age_of(now + timedelta(hours=1), now) == "just now"  # clock skew: not negative
    assert age_of(now - timedelta(minutes=1), now) == "1 minute"
    assert age_of(now - timedelta(minutes=59), now) == "59 minutes"
    assert age_of(now - timedelta(hours=2), now) == "2 hours"
    assert age_of(now - timedelta(days=1), now) == "1 day"
    assert age_of(now - timedelta(days=45), now) == "1 month"
    assert age_of(now - timedelta(days=800), now) == "2 years"
