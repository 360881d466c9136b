"""Requirement extraction end to end on real PostgreSQL: a scenario or rule PUT stores the
text and defers one procrastinate job in the same transaction; a worker pass runs the
offline extractor and stores requirements and suggestions; re-runs replace only what
nobody reviewed; a failing extractor is recorded and never breaks the write."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from psycopg.types.json import Jsonb

from ccvault.domain.schema import FieldDefinition
from ccvault.extraction.heuristic import HeuristicExtractor
from ccvault.extraction.models import ProposedField, SourceKind, SourceText
from ccvault.jobs.queue import build_app
from ccvault.runtime import Vault
from ccvault.storage.scenarios import EXTRACT_TASK, Q, queueing_lock

AGENT = "agent-x"
CUSTOMER = "cust-1"


# -- helpers ------------------------------------------------------------------------------


class BrokenExtractor:
    """An extractor whose model is down."""

    name = "broken"

    async def extract(
        self, source: SourceText, definitions: list[FieldDefinition]
    ) -> list[ProposedField]:
        """Always fails."""
        raise RuntimeError("model unavailable")


async def worker_pass(vault: Vault, extractor: object | None = None) -> None:
    """Run every waiting job of the `ccv` queue once, then stop. The offline extractor is
    named explicitly so an LLM configured in the environment cannot change the outcome;
    the periodic sweeps stay off (the session database is shared)."""
    app = build_app(vault.settings, periodic=False)
    async with app.open_async():
        await app.run_worker_async(
            queues=["ccv"],
            wait=False,
            additional_context={"vault": vault, "extractor": extractor or HeuristicExtractor()},
            install_signal_handlers=False,
        )


async def fetch(vault: Vault, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of one query on the vault's pool."""
    async with vault.pool.connection() as conn:
        cur = await conn.execute(sql, params)
        return list(await cur.fetchall())


async def jobs(
    vault: Vault, tenant_id: uuid.UUID, kind: SourceKind, source_id: str, agent: str = AGENT
) -> list[dict[str, Any]]:
    """The extraction jobs ever deferred for one scenario or rule, oldest first."""
    rows = await fetch(
        vault,
        "SELECT task_name, status::text, args FROM procrastinate_jobs"
        " WHERE queueing_lock = %s ORDER BY id",
        (queueing_lock(kind, tenant_id, agent, source_id),),
    )
    return [{"task_name": t, "status": s, "args": a} for t, s, a in rows]


def scenario_url(scenario_id: str, agent: str = AGENT) -> str:
    """The scenario's URL."""
    return f"/v1/agents/{agent}/scenarios/{scenario_id}"


def rule_url(rule_id: str, agent: str = AGENT) -> str:
    """The rule's URL."""
    return f"/v1/agents/{agent}/rules/{rule_id}"


async def put_scenario(
    api: httpx.AsyncClient, scenario_id: str, body: dict[str, Any], agent: str = AGENT
) -> dict[str, Any]:
    """PUT a scenario; it answers at once with its extraction queued."""
    resp = await api.put(scenario_url(scenario_id, agent), json=body)
    assert resp.status_code == 200, resp.text
    doc: dict[str, Any] = resp.json()
    assert doc["extraction"]["status"] == "queued"
    assert doc["extraction"]["error"] is None
    return doc


async def put_rule(
    api: httpx.AsyncClient, rule_id: str, body: dict[str, Any], agent: str = AGENT
) -> dict[str, Any]:
    """PUT a rule; it answers at once with its extraction queued."""
    resp = await api.put(rule_url(rule_id, agent), json=body)
    assert resp.status_code == 200, resp.text
    doc: dict[str, Any] = resp.json()
    assert doc["extraction"]["status"] == "queued"
    return doc


async def extraction(api: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """The extraction status a GET of the scenario or rule reports."""
    resp = await api.get(url)
    assert resp.status_code == 200, resp.text
    status: dict[str, Any] = resp.json()["extraction"]
    return status


async def requirements(
    api: httpx.AsyncClient, scenario_id: str, agent: str = AGENT
) -> list[dict[str, Any]]:
    """A scenario's requirements as listed by the API."""
    resp = await api.get(f"{scenario_url(scenario_id, agent)}/requirements")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def by_field(items: list[dict[str, Any]], origin: str = "extracted") -> dict[str, dict[str, Any]]:
    """Requirements of one origin by field name (failing on duplicates)."""
    chosen = [r for r in items if r["origin"] == origin]
    found = {r["field_name"]: r for r in chosen}
    assert len(found) == len(chosen), f"duplicate {origin} requirements: {chosen}"
    return found


def keys(items: list[dict[str, Any]]) -> list[tuple[str, str | None, str]]:
    """(field, step, origin) of each requirement; a duplicate shows up twice."""
    return [(r["field_name"], r["step_id"], r["origin"]) for r in items]


async def suggestions(api: httpx.AsyncClient, agent: str = AGENT) -> dict[str, dict[str, Any]]:
    """The agent's suggested definitions by name."""
    resp = await api.get(f"/v1/agents/{agent}/field-definitions", params={"status": "suggested"})
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    found = {d["name"]: d for d in items}
    assert len(found) == len(items), "a suggestion is made once"
    return found


async def missing(api: httpx.AsyncClient, customer: str = CUSTOMER, **query: str) -> Any:
    """GET missing-fields for the test agent."""
    resp = await api.get(
        f"/v1/profiles/{customer}/missing-fields", params={"agent_id": AGENT, **query}
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def other_tenant_client(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> tuple[httpx.AsyncClient, uuid.UUID]:
    """A client for a second, fresh tenant, and that tenant's id."""
    resp = await http.post(
        "/admin/tenants", json={"name": f"other-{uuid.uuid4().hex}"}, headers=admin_headers
    )
    assert resp.status_code == 201, resp.text
    client = httpx.AsyncClient(
        transport=http._transport,
        base_url="http://vault",
        headers={"Authorization": f"Bearer {resp.json()['api_key']}"},
    )
    return client, uuid.UUID(resp.json()["tenant_id"])


ONBOARDING: dict[str, Any] = {
    "name": "Onboarding",
    "description": "Open a customer account.",
    "conditions": ["Collect their email and the date of birth."],
    "steps": [
        {
            "step_id": "ship",
            "description": "Ship to the customer's home.",
            "conditions": ["Take a phone number for the courier."],
        },
        {"step_id": "wrap_up", "description": "Thank them and say goodbye."},
    ],
}


# -- the write and its job ----------------------------------------------------------------


async def test_put_answers_at_once_and_defers_one_job_in_the_same_transaction(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    doc = await put_scenario(api, "onboarding", ONBOARDING)
    assert doc["name"] == "Onboarding"
    assert doc["conditions"] == ONBOARDING["conditions"]
    assert [s["step_id"] for s in doc["steps"]] == ["ship", "wrap_up"]
    assert doc["extraction"]["finished_at"] is None
    (job,) = await jobs(vault, tenant_id, SourceKind.scenario, "onboarding")
    assert job["task_name"] == EXTRACT_TASK
    assert job["status"] == "todo"
    assert job["args"] == {
        "kind": "scenario",
        "tenant_id": str(tenant_id),
        "agent_id": AGENT,
        "source_id": "onboarding",
    }
    # Nothing runs inside the request: the text is stored, the extraction waits.
    got = await api.get(scenario_url("onboarding"))
    assert got.status_code == 200
    assert got.json()["description"] == ONBOARDING["description"]
    assert got.json()["extraction"]["status"] == "queued"
    assert await requirements(api, "onboarding") == []

    # A second PUT while the job waits adds no job: the waiting one reads the newest text.
    edited = {**ONBOARDING, "conditions": ["Collect their email and their country."]}
    await put_scenario(api, "onboarding", edited)
    assert len(await jobs(vault, tenant_id, SourceKind.scenario, "onboarding")) == 1

    await worker_pass(vault)
    assert [
        j["status"] for j in await jobs(vault, tenant_id, SourceKind.scenario, "onboarding")
    ] == ["succeeded"]
    done = await extraction(api, scenario_url("onboarding"))
    assert done["status"] == "done"
    assert done["error"] is None
    assert done["finished_at"] is not None
    fields = {r["field_name"] for r in await requirements(api, "onboarding")}
    assert {"email", "country"} <= fields
    assert "date_of_birth" not in fields, "the run read the edited text"

    # Once the job has run, the next PUT defers a new one.
    await put_scenario(api, "onboarding", edited)
    statuses = [
        j["status"] for j in await jobs(vault, tenant_id, SourceKind.scenario, "onboarding")
    ]
    assert statuses == ["succeeded", "todo"]
    await worker_pass(vault)


async def test_concurrent_puts_of_one_scenario_all_succeed_with_one_waiting_job(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    bodies = [{**ONBOARDING, "name": f"Version {n}"} for n in range(8)]
    answers = await asyncio.gather(*(api.put(scenario_url("busy"), json=b) for b in bodies))
    assert [a.status_code for a in answers] == [200] * len(bodies), [a.text for a in answers]
    assert [j["status"] for j in await jobs(vault, tenant_id, SourceKind.scenario, "busy")] == [
        "todo"
    ]
    await worker_pass(vault)
    assert (await extraction(api, scenario_url("busy")))["status"] == "done"
    assert len(await requirements(api, "busy")) == 4


async def test_a_rejected_write_defers_no_job(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    bad_bodies: list[dict[str, Any]] = [
        {"description": "no name"},
        {"name": "x", "steps": [{"step_id": "not a valid id!"}]},
        {"name": "x", "conditions": [""]},
        {"name": "x", "unknown": 1},
    ]
    for body in bad_bodies:
        resp = await api.put(scenario_url("rejected"), json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    resp = await api.put(
        rule_url("rejected"), json={"name": "r", "condition": "x", "scenario_id": "bad id"}
    )
    assert resp.status_code == 422, resp.text
    assert await jobs(vault, tenant_id, SourceKind.scenario, "rejected") == []
    assert await jobs(vault, tenant_id, SourceKind.rule, "rejected") == []
    assert (await api.get(scenario_url("rejected"))).status_code == 404
    assert (await api.get(rule_url("rejected"))).status_code == 404


async def test_a_rolled_back_write_takes_its_deferred_job_with_it(
    vault: Vault, tenant_id: uuid.UUID
) -> None:
    lock = queueing_lock(SourceKind.scenario, tenant_id, AGENT, "rolled-back")
    params = {
        "tenant_id": tenant_id,
        "agent_id": AGENT,
        "scenario_id": "rolled-back",
        "name": "Rolled back",
        "description": "Collect the email.",
        "conditions": Jsonb([]),
        "steps": Jsonb([]),
    }
    args = {
        "kind": "scenario",
        "tenant_id": str(tenant_id),
        "agent_id": AGENT,
        "source_id": "rolled-back",
    }
    count = "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s"

    class Abort(Exception):
        pass

    async with vault.pool.connection() as conn:
        with pytest.raises(Abort):
            async with conn.transaction():
                await conn.execute(Q["put_scenario"], params)
                await conn.execute(
                    Q["defer_extraction"], {"queueing_lock": lock, "args": Jsonb(args)}
                )
                cur = await conn.execute(count, (lock,))
                assert await cur.fetchone() == (1,), "deferred inside the write's transaction"
                raise Abort
    assert await fetch(vault, count, (lock,)) == [(0,)]
    stored = await fetch(
        vault,
        "SELECT count(*) FROM scenarios WHERE tenant_id = %s AND scenario_id = %s",
        (tenant_id, "rolled-back"),
    )
    assert stored == [(0,)]


# -- what a run stores --------------------------------------------------------------------


async def test_a_run_stores_requirements_with_confidence_level_review_and_order(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    resp = await api.put(
        f"/v1/agents/{AGENT}/field-definitions/email",
        json={"display_name": "Email", "value_type": "email"},
    )
    assert resp.status_code == 201, resp.text
    await put_scenario(api, "onboarding", ONBOARDING)
    await worker_pass(vault)
    assert (await extraction(api, scenario_url("onboarding")))["status"] == "done"

    items = await requirements(api, "onboarding")
    summary = [
        (
            r["field_name"],
            r["step_id"],
            r["confidence"],
            r["required_level"],
            r["needs_human_review"],
            r["review_status"],
            r["collection_order"],
        )
        for r in items
    ]
    assert summary == [
        # The agent's own definition, named word for word: sure, hard, no review.
        ("email", None, 0.9, "hard", False, "none", 10),
        # Vocabulary phrases: below the review threshold; the wording (plain
        # instructions, no "ideally"/"optional") makes them hard.
        ("date_of_birth", None, 0.75, "hard", True, "pending", 20),
        ("address", "ship", 0.7, "hard", True, "pending", 30),
        ("phone_number", "ship", 0.7, "hard", True, "pending", 40),
    ]
    for r in items:
        assert r["origin"] == "extracted"
        assert r["fallback_action"] == "ask"
        assert r["rule_id"] is None
        assert r["when_condition"] is None
        assert r["depends_on_fields"] == []

    # Fields the agent does not define become suggestions with a type and a prompt.
    suggested = await suggestions(api)
    assert {name: d["value_type"] for name, d in suggested.items()} == {
        "address": "string",
        "date_of_birth": "date",
        "phone_number": "phone",
    }
    for d in suggested.values():
        assert d["status"] == "suggested"
        assert d["display_name"]
        assert d["collection_prompt"] and d["collection_prompt"].endswith("?")
    active = await api.get(f"/v1/agents/{AGENT}/field-definitions")
    assert [d["name"] for d in active.json()["items"]] == ["email"]

    # The extracted requirements are enforced: a new customer misses them in order.
    at_ship = await missing(api, scenario_id="onboarding", step_id="ship")
    assert not at_ship["can_proceed"]
    assert [(m["field_name"], m["required_level"]) for m in at_ship["missing"]] == [
        ("email", "hard"),
        ("date_of_birth", "hard"),
        ("address", "hard"),
        ("phone_number", "hard"),
    ]
    at_wrap_up = await missing(api, scenario_id="onboarding", step_id="wrap_up")
    assert [m["field_name"] for m in at_wrap_up["missing"]] == ["email", "date_of_birth"]


async def test_get_reports_running_while_the_extractor_works(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    seen: list[str] = []

    class WatchingExtractor:
        """Looks at the scenario through the API while it extracts."""

        name = "watching"

        async def extract(
            self, source: SourceText, definitions: list[FieldDefinition]
        ) -> list[ProposedField]:
            seen.append((await extraction(api, scenario_url("watched")))["status"])
            return []

    await put_scenario(api, "watched", ONBOARDING)
    await worker_pass(vault, WatchingExtractor())
    assert seen == ["running"]
    done = await extraction(api, scenario_url("watched"))
    assert done["status"] == "done"
    assert await requirements(api, "watched") == []


async def test_a_text_that_needs_nothing_is_done_with_no_requirements(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    await put_scenario(
        api, "greeting", {"name": "Greeting", "description": "Greet the caller politely."}
    )
    await put_rule(api, "holiday", {"name": "Holiday", "condition": "if it is a public holiday"})
    await worker_pass(vault)
    assert (await extraction(api, scenario_url("greeting")))["status"] == "done"
    assert (await extraction(api, rule_url("holiday")))["status"] == "done"
    assert await requirements(api, "greeting") == []
    assert await suggestions(api) == {}
    assert await missing(api, rule_id="holiday") == {"can_proceed": True, "missing": []}


async def test_rerunning_the_same_text_changes_nothing(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    await put_scenario(api, "onboarding", ONBOARDING)
    await worker_pass(vault)
    first = await requirements(api, "onboarding")
    first_suggestions = await suggestions(api)
    assert first and first_suggestions

    await put_scenario(api, "onboarding", ONBOARDING)
    await worker_pass(vault)
    assert (await extraction(api, scenario_url("onboarding")))["status"] == "done"
    again = await requirements(api, "onboarding")
    assert keys(again) == keys(first), "no duplicates, nothing lost"

    def shape(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (
                r["field_name"],
                r["step_id"],
                r["confidence"],
                r["required_level"],
                r["needs_human_review"],
                r["review_status"],
                r["collection_order"],
            )
            for r in items
        ]

    # The extractor's own earlier suggestions are no evidence: the same text gives the
    # same confidences and review flags.
    assert shape(again) == shape(first)
    assert await suggestions(api) == first_suggestions, "suggestions made once, untouched"
    assert [
        j["status"] for j in await jobs(vault, tenant_id, SourceKind.scenario, "onboarding")
    ] == [
        "succeeded",
        "succeeded",
    ]


async def test_rerun_replaces_unreviewed_extracted_and_keeps_manual_and_reviewed(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    first_text = {
        "name": "Checkout",
        "conditions": ["Collect the email, the phone number, the date of birth and full name."],
    }
    await put_scenario(api, "checkout", first_text)
    await worker_pass(vault)
    first = by_field(await requirements(api, "checkout"))
    assert set(first) == {"email", "phone_number", "date_of_birth", "full_name"}

    url = f"/v1/agents/{AGENT}/requirements/{{}}/review"
    approved = await api.post(url.format(first["phone_number"]["id"]), json={"decision": "approve"})
    assert approved.status_code == 200, approved.text
    rejected = await api.post(url.format(first["date_of_birth"]["id"]), json={"decision": "reject"})
    assert rejected.status_code == 200, rejected.text
    manual = await api.put(
        f"{scenario_url('checkout')}/requirements/address",
        json={"required_level": "soft", "fallback_action": "skip", "collection_order": 5},
    )
    assert manual.status_code == 201, manual.text
    manual_email = await api.put(
        f"{scenario_url('checkout')}/requirements/email",
        json={"required_level": "soft", "fallback_action": "skip", "collection_order": 1},
    )
    assert manual_email.status_code == 201, manual_email.text

    # The edited text drops the date of birth and the full name and adds the country.
    await put_scenario(
        api, "checkout", {**first_text, "conditions": ["Collect the email, phone and country."]}
    )
    await worker_pass(vault)
    items = await requirements(api, "checkout")
    assert len(keys(items)) == len(set(keys(items))), f"duplicates: {keys(items)}"
    extracted = by_field(items)
    # The manual email hides the extracted one, in the list as in missing-fields.
    assert set(extracted) == {"phone_number", "date_of_birth", "country"}
    # Reviewed ones stay exactly as reviewed, mentioned again or not.
    assert extracted["phone_number"] == approved.json()
    assert extracted["phone_number"]["review_status"] == "approved"
    assert not extracted["phone_number"]["needs_human_review"]
    assert extracted["date_of_birth"] == rejected.json()
    # Manual ones are untouched.
    assert by_field(items, "manual") == {
        "address": manual.json(),
        "email": manual_email.json(),
    }

    # Enforcement: rejected dropped, manual hides extracted for the same field and step.
    result = await missing(api, scenario_id="checkout")
    got = {m["field_name"]: (m["required_level"], m["fallback_action"]) for m in result["missing"]}
    assert "date_of_birth" not in got
    assert got["email"] == ("soft", "skip")
    assert got["address"] == ("soft", "skip")
    assert set(got) == {"email", "address", "phone_number", "country"}

    # Unreviewed extracted ones were replaced (full_name is gone, email is a new row that
    # shows again once the manual email is removed).
    removed = await api.delete(f"{scenario_url('checkout')}/requirements/email")
    assert removed.status_code == 204
    # DELETE removes every requirement at (scenario, field, step), so extract again.
    await put_scenario(
        api, "checkout", {**first_text, "conditions": ["Collect the email, phone and country."]}
    )
    await worker_pass(vault)
    again = by_field(await requirements(api, "checkout"))
    assert again["email"]["id"] != first["email"]["id"]
    assert again["email"]["review_status"] in {"none", "pending"}


async def test_suggestions_are_made_once_and_a_callers_definition_is_kept(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    body = {"name": "Contact", "conditions": ["Ask for their e-mail and mobile number."]}
    await put_scenario(api, "contact", body)
    await worker_pass(vault)
    first = await suggestions(api)
    assert set(first) == {"email", "phone_number"}
    assert first["email"]["value_type"] == "email"
    assert first["phone_number"]["value_type"] == "phone"

    # The caller adopts the email suggestion with a wording of its own.
    adopted = await api.put(
        f"/v1/agents/{AGENT}/field-definitions/email",
        json={
            "display_name": "Work email",
            "value_type": "email",
            "collection_prompt": "Which work email should we use?",
        },
    )
    assert adopted.status_code in (200, 201), adopted.text
    assert adopted.json()["status"] == "active"

    await put_scenario(api, "contact", body)
    await worker_pass(vault)
    assert (await extraction(api, scenario_url("contact")))["status"] == "done"
    again = await suggestions(api)
    assert again == {"phone_number": first["phone_number"]}, "not duplicated, not reset"
    kept = await api.get(f"/v1/agents/{AGENT}/field-definitions/email")
    assert kept.status_code == 200
    assert kept.json() == adopted.json()
    # The prompt reaches the agent through missing-fields.
    result = await missing(api, scenario_id="contact")
    email = next(m for m in result["missing"] if m["field_name"] == "email")
    assert email["collection_prompt"] == "Which work email should we use?"
    assert email["display_name"] == "Work email"


# -- failures never break the write -------------------------------------------------------


async def test_a_failing_extractor_is_recorded_and_the_scenario_stays_usable(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    await worker_pass(vault)  # leave no one else's job to the broken extractor
    await put_scenario(api, "fragile", ONBOARDING)
    await put_rule(api, "fragile-rule", {"name": "Minors", "condition": "if under 18"})
    await worker_pass(vault, BrokenExtractor())

    for url in (scenario_url("fragile"), rule_url("fragile-rule")):
        failed = await extraction(api, url)
        assert failed["status"] == "failed"
        assert failed["error"] == "RuntimeError: model unavailable"
        assert failed["finished_at"] is not None
    # Recorded, not retried forever.
    statuses = [j["status"] for j in await jobs(vault, tenant_id, SourceKind.scenario, "fragile")]
    assert statuses == ["succeeded"]

    scenario = await api.get(scenario_url("fragile"))
    assert scenario.status_code == 200
    assert scenario.json()["conditions"] == ONBOARDING["conditions"]
    assert await requirements(api, "fragile") == []
    manual = await api.put(f"{scenario_url('fragile')}/requirements/email", json={})
    assert manual.status_code == 201, manual.text
    result = await missing(api, scenario_id="fragile")
    assert [m["field_name"] for m in result["missing"]] == ["email"]
    assert not result["can_proceed"]

    # A new PUT clears the error and queues again; a working run then succeeds.
    queued = await put_scenario(api, "fragile", ONBOARDING)
    assert queued["extraction"] == {"status": "queued", "error": None, "finished_at": None}
    await worker_pass(vault)
    assert (await extraction(api, scenario_url("fragile")))["status"] == "done"
    items = await requirements(api, "fragile")
    assert by_field(items, "manual")["email"] == manual.json()
    assert "date_of_birth" in by_field(items)


# -- rules --------------------------------------------------------------------------------


async def test_a_rule_of_a_scenario_adds_its_requirements_to_the_scenario(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    await put_scenario(api, "loan", {"name": "Loan", "conditions": ["Check their salary."]})
    rule = await put_rule(
        api,
        "minors",
        {
            "name": "Minors",
            "condition": "if the customer is under 18",
            "action": "refuse the loan",
            "scenario_id": "loan",
        },
    )
    assert rule["scenario_id"] == "loan"
    assert rule["condition"] == "if the customer is under 18"
    await worker_pass(vault)
    assert (await extraction(api, rule_url("minors")))["status"] == "done"
    items = await requirements(api, "loan")
    assert {(r["field_name"], r["rule_id"]) for r in items} == {
        ("annual_income", None),
        ("date_of_birth", "minors"),
    }

    # Re-running the scenario leaves the rule's requirements alone, and the other way round.
    await put_scenario(api, "loan", {"name": "Loan", "conditions": ["Check their salary."]})
    await worker_pass(vault)
    after = await requirements(api, "loan")
    assert {(r["field_name"], r["rule_id"]) for r in after} == {
        ("annual_income", None),
        ("date_of_birth", "minors"),
    }
    assert len(after) == 2

    assert (await api.delete(rule_url("minors"))).status_code == 204
    assert [(r["field_name"], r["rule_id"]) for r in await requirements(api, "loan")] == [
        ("annual_income", None)
    ]
    assert (await api.get(rule_url("minors"))).status_code == 404
    assert (await api.delete(rule_url("minors"))).status_code == 404


async def test_a_rule_without_scenario_is_checked_by_missing_fields_with_rule_id(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    rule = await put_rule(
        api,
        "adults-only",
        {
            "name": "Adults only",
            "condition": "The buyer must be of legal age",
            "action": "ask for their e-mail to send the receipt",
        },
    )
    assert rule["scenario_id"] is None
    await worker_pass(vault)
    assert (await extraction(api, rule_url("adults-only")))["status"] == "done"

    result = await missing(api, rule_id="adults-only")
    assert not result["can_proceed"]
    assert [(m["field_name"], m["required_level"], m["reason"]) for m in result["missing"]] == [
        ("date_of_birth", "hard", "missing"),
        ("email", "hard", "missing"),
    ]
    for name, value in (("date_of_birth", "1990-05-17"), ("email", "ann@example.org")):
        resp = await api.put(
            f"/v1/profiles/{CUSTOMER}/fields/{name}",
            json={"value": value, "source": "user_provided"},
        )
        assert resp.status_code == 201, resp.text
    assert await missing(api, rule_id="adults-only") == {"can_proceed": True, "missing": []}
    assert (await missing(api, customer="cust-2", rule_id="adults-only"))["missing"]

    assert (await api.delete(rule_url("adults-only"))).status_code == 204
    gone = await missing(api, customer="cust-2", rule_id="adults-only")
    assert gone == {"can_proceed": True, "missing": []}
    assert (await api.delete(rule_url("adults-only"))).status_code == 404


# -- deletes and tenants ------------------------------------------------------------------


async def test_deleting_a_scenario_removes_it_and_its_requirements(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    await put_scenario(api, "onboarding", ONBOARDING)
    await worker_pass(vault)
    manual = await api.put(f"{scenario_url('onboarding')}/requirements/full_name", json={})
    assert manual.status_code == 201
    assert len(await requirements(api, "onboarding")) == 5

    resp = await api.delete(scenario_url("onboarding"))
    assert resp.status_code == 204
    assert resp.content == b""
    assert (await api.get(scenario_url("onboarding"))).status_code == 404
    assert await requirements(api, "onboarding") == []
    assert await missing(api, scenario_id="onboarding") == {"can_proceed": True, "missing": []}
    assert (await api.delete(scenario_url("onboarding"))).status_code == 404


async def test_a_job_for_a_scenario_deleted_meanwhile_stores_nothing(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    await put_scenario(api, "short-lived", ONBOARDING)
    assert (await api.delete(scenario_url("short-lived"))).status_code == 204
    await worker_pass(vault)
    statuses = [
        j["status"] for j in await jobs(vault, tenant_id, SourceKind.scenario, "short-lived")
    ]
    assert statuses == ["succeeded"]
    assert await requirements(api, "short-lived") == []
    assert (await api.get(scenario_url("short-lived"))).status_code == 404


async def test_scenarios_rules_and_their_requirements_are_tenant_isolated(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    vault: Vault,
    tenant_id: uuid.UUID,
) -> None:
    other, other_id = await other_tenant_client(http, admin_headers)
    await put_scenario(api, "shared-id", ONBOARDING)
    await put_rule(api, "shared-rule", {"name": "Minors", "condition": "if under 18"})
    await worker_pass(vault)

    for url in (scenario_url("shared-id"), rule_url("shared-rule")):
        resp = await other.get(url)
        assert resp.status_code == 404
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert (await other.delete(url)).status_code == 404
    assert await requirements(other, "shared-id") == []
    assert await suggestions(other) == {}
    other_missing = await other.get(
        f"/v1/profiles/{CUSTOMER}/missing-fields",
        params={"agent_id": AGENT, "rule_id": "shared-rule"},
    )
    assert other_missing.json() == {"can_proceed": True, "missing": []}

    # The same ids in another tenant are another scenario with a job of its own.
    await put_scenario(other, "shared-id", {"name": "Other", "conditions": ["Ask the country."]})
    other_jobs = await jobs(vault, other_id, SourceKind.scenario, "shared-id")
    assert [j["status"] for j in other_jobs] == ["todo"]
    assert [
        j["status"] for j in await jobs(vault, tenant_id, SourceKind.scenario, "shared-id")
    ] == ["succeeded"]
    await worker_pass(vault)
    assert [r["field_name"] for r in await requirements(other, "shared-id")] == ["country"]
    assert "country" not in {r["field_name"] for r in await requirements(api, "shared-id")}
    assert (await api.get(scenario_url("shared-id"))).json()["name"] == "Onboarding"
    # Each tenant's delete removes only its own.
    assert (await other.delete(scenario_url("shared-id"))).status_code == 204
    assert (await api.get(scenario_url("shared-id"))).status_code == 200
    assert len(await requirements(api, "shared-id")) == 4


# -- audit --------------------------------------------------------------------------------


async def test_a_run_audits_what_it_stores_and_drops_as_the_job(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    async def job_entries() -> list[tuple[str, str, str | None]]:
        await vault.services.audit.seal(tenant_id)
        rows = await fetch(
            vault,
            "SELECT actor, action, target FROM audit_log WHERE tenant_id = %s"
            " AND actor LIKE 'job:%%' ORDER BY seq",
            (tenant_id,),
        )
        return [(a, b, c) for a, b, c in rows]

    text = {"name": "Checkout", "conditions": ["Collect the email and the full name."]}
    await put_scenario(api, "checkout", text)
    await worker_pass(vault)
    stored = by_field(await requirements(api, "checkout"))
    assert set(stored) == {"email", "full_name"}
    first = await job_entries()
    assert sorted(first) == [
        ("job:extract_requirements", "requirement.put", f"{AGENT}/checkout/email"),
        ("job:extract_requirements", "requirement.put", f"{AGENT}/checkout/full_name"),
    ]
    # The edited text drops the full name: the run deletes it; the approved email stays
    # as reviewed (the run stores no new one), so the run leaves no entry for it.
    url = f"/v1/agents/{AGENT}/requirements/{stored['email']['id']}/review"
    assert (await api.post(url, json={"decision": "approve"})).status_code == 200
    await put_scenario(api, "checkout", {**text, "conditions": ["Collect the email."]})
    await worker_pass(vault)
    assert (await job_entries())[len(first) :] == [
        ("job:extract_requirements", "requirement.delete", f"{AGENT}/checkout/full_name"),
    ]
    # The entries name no customer and commit with the run (the chain verifies).
    ((name,),) = await fetch(vault, "SELECT name FROM tenants WHERE id = %s", (tenant_id,))
    (chain,) = await vault.services.audit.verify(name)
    assert chain.broken is None
