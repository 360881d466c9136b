"""The LLM extractor end to end (issue #6): recorded HTTP exchanges, stored outcomes.

THE CASSETTES WERE RECORDED AGAINST A LOCAL FAKE SERVER, NOT A REAL LLM. No LLM endpoint
is reachable where this project is built, so `make cassettes` starts
`tests/extraction/fake_openai.py` (a small OpenAI-compatible server that answers in the
Chat Completions format OpenAI documents, scripted by the request's model name) and runs
this module with `--record-mode=rewrite`. With a real endpoint, re-record the same way:

    CCV_LLM_BASE_URL=https://api.openai.com/v1 CCV_LLM_API_KEY=sk-... \\
    CCV_LLM_MODEL=gpt-4o-mini make cassettes

Then only the good-answer exchange goes to that endpoint (its assertions are derived from
the recorded answer, so any sensible model passes); a malformed answer and an HTTP 500
cannot be ordered from a real model, so those cassettes always come from the fake server.
Without `--record-mode` (CI, `make test`) the cassettes are only replayed: pytest-recording's
mode "none", no network, and the base URL and model are taken from the cassette.

The Authorization header (and any api-key header) is filtered out before a cassette is
written; the fake server refuses requests without one, so a recording without the filter
would hold the key, and a test below checks that no cassette does.

The timeout is not replayed from a cassette: vcrpy records responses, not slowness or a
client-side exception, and a replayed answer comes back at once. So the timeout test runs
live against the fake server, started by this module on 127.0.0.1 (or the one
`make cassettes` started), in its `slow` mode, with CCV_LLM_TIMEOUT_SECONDS=0.5. Its
duration is not asserted (no wall-clock assertions in tests): benchmarks/extraction_bench.py
measures how long a timed-out run takes, and the LLM path's overhead per scenario.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml
from fake_openai import FAKE_API_KEY, GOOD_FIELDS, serve
from vcr.cassette import Cassette

from ccvault.config import Settings
from ccvault.domain.models import ValueType
from ccvault.domain.schema import (
    DefinitionBody,
    DefinitionStatus,
    FallbackAction,
    FieldDefinition,
    Origin,
    RequiredLevel,
    ReviewStatus,
)
from ccvault.extraction.llm import INSTRUCTIONS, LlmExtractor, render_prompt
from ccvault.extraction.models import Proposals, SourceKind, SourceText, TextPart
from ccvault.extraction.plan import plan
from ccvault.extraction.run import make_extractor, run_extraction
from ccvault.runtime import Vault
from ccvault.storage.scenarios import ScenarioStore

CASSETTES = Path(__file__).parent / "cassettes" / "test_extraction_llm"
SECRET_HEADERS = ["authorization", "api-key", "x-api-key", "openai-organization", "openai-project"]
AGENT = "support-bot"
STEP_IDS = ["lookup", "rebook"]
SCENARIO: dict[str, Any] = {
    "name": "Late delivery",
    "description": (
        "The customer's parcel is late; send the confirmation to their email. For refunds"
        " above 500 EUR we need proof of address. The customer must be over 18."
    ),
    "conditions": ["the customer says the parcel has not arrived"],
    "steps": [
        {"step_id": "lookup", "description": "Look up the order by its number."},
        {
            "step_id": "rebook",
            "description": "Offer a new delivery date if the customer wants one.",
        },
    ],
}
DEFINITIONS = {
    "email": DefinitionBody(
        display_name="Email address",
        value_type=ValueType.email,
        description="Where confirmations go.",
        extraction_examples=["my email is ann@example.com"],
    ),
    "order_number": DefinitionBody(
        display_name="Order number",
        value_type=ValueType.string,
        extraction_prompt_hint="The 8-digit number on the receipt.",
    ),
}


# -- recording configuration --------------------------------------------------------------


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Drop response headers that identify an account before a cassette is written."""
    headers = response.get("headers") or {}
    for name in list(headers):
        if name.lower() in {"set-cookie", "openai-organization", "openai-project"}:
            del headers[name]
    return response


@pytest.fixture
def vcr_config(record_mode: str) -> dict[str, Any]:
    """Filter credentials; replay only unless `--record-mode` is given (`make cassettes`)."""
    return {
        "record_mode": record_mode,  # pytest-recording's: "none" unless --record-mode
        "filter_headers": SECRET_HEADERS,
        "filter_query_parameters": ["api-key", "key"],
        "before_record_response": _scrub_response,
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def fake_llm_url() -> Iterator[str]:
    """The fake server `make cassettes` started, else one of this module's own."""
    configured = os.environ.get("CCV_FAKE_LLM_BASE_URL")
    if configured:
        yield configured
        return
    with serve() as server:
        yield server.base_url


def llm_extractor(
    monkeypatch: pytest.MonkeyPatch,
    cassette: Cassette | None,
    *,
    base_url: str,
    model: str,
    api_key: str = FAKE_API_KEY,
    timeout_seconds: float | None = None,
) -> LlmExtractor:
    """The extractor `make_extractor` builds from CCV_LLM_* settings; when the cassette
    already holds exchanges (replay), the endpoint and model they were recorded with."""
    if cassette is not None and len(cassette) > 0:
        first = cassette.requests[0]
        base_url = first.uri.removesuffix("/chat/completions")
        model = json.loads(first.body)["model"]
        api_key = "replayed-key"
    monkeypatch.setenv("CCV_LLM_BASE_URL", base_url)
    monkeypatch.setenv("CCV_LLM_API_KEY", api_key)
    monkeypatch.setenv("CCV_LLM_MODEL", model)
    if timeout_seconds is not None:
        monkeypatch.setenv("CCV_LLM_TIMEOUT_SECONDS", str(timeout_seconds))
    extractor = make_extractor(Settings())
    assert isinstance(extractor, LlmExtractor)
    return extractor


# -- helpers ------------------------------------------------------------------------------


async def store_scenario(vault: Vault, tenant_id: UUID, *, define: bool = True) -> str:
    """The agent's definitions, then the scenario (its extraction is queued, not run)."""
    if define:
        for name, body in DEFINITIONS.items():
            await vault.schema.put_definition(tenant_id, AGENT, name, body)
    scenario_id = f"late-delivery-{uuid.uuid4().hex[:8]}"
    stored = await vault.scenarios.put_scenario(tenant_id, AGENT, scenario_id, SCENARIO)
    assert stored["extraction"]["status"] == "queued"
    return scenario_id


async def extract(vault: Vault, tenant_id: UUID, scenario_id: str, extractor: LlmExtractor) -> str:
    """One extraction run, as the job performs it."""
    store = ScenarioStore(vault.pool)
    return await run_extraction(
        store, extractor, SourceKind.scenario, tenant_id, AGENT, scenario_id
    )


def body(interaction_body: Any) -> dict[str, Any]:
    """A recorded request or response body as JSON."""
    if isinstance(interaction_body, dict):
        interaction_body = interaction_body.get("string")
    assert interaction_body is not None
    parsed: dict[str, Any] = json.loads(interaction_body)
    return parsed


def recorded_proposals(response: dict[str, Any]) -> Proposals:
    """The fields a recorded chat completion proposes (tool-call arguments or content)."""
    message = body(response["body"])["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    raw = calls[0]["function"]["arguments"] if calls else message["content"]
    return Proposals.model_validate_json(raw)


def recorded_by_fake(cassette: Cassette) -> bool:
    """Whether the cassette's answers come from fake_openai.py (not a real model)."""
    return all(
        body(r["body"]).get("system_fingerprint") == "fp_fake_openai" for r in cassette.responses
    )


async def stored_outcome(
    vault: Vault, tenant_id: UUID, scenario_id: str
) -> tuple[dict[str, Any], list[tuple[Any, ...]], list[str]]:
    """The scenario's extraction status, its requirements and the suggested definitions."""
    scenario = await vault.scenarios.get(SourceKind.scenario, tenant_id, AGENT, scenario_id)
    requirements = await vault.schema.list_requirements(tenant_id, AGENT, scenario_id)
    rows = [
        (
            r.field_name,
            r.step_id,
            r.required_level,
            r.fallback_action,
            r.when_condition,
            r.collection_order,
            r.confidence,
            r.needs_human_review,
            r.review_status,
            r.origin,
        )
        for r in requirements
    ]
    suggested = await vault.schema.list_definitions(tenant_id, AGENT, DefinitionStatus.suggested)
    return scenario, rows, sorted(d.name for d in suggested)


async def expected_outcome(
    vault: Vault, tenant_id: UUID, proposals: Proposals
) -> tuple[list[tuple[Any, ...]], list[str]]:
    """What a run must store for these proposals: the planner's requirements and
    suggestions against the agent's active definitions."""
    definitions = await vault.schema.list_definitions(tenant_id, AGENT, DefinitionStatus.active)
    requirements, suggestions = plan(proposals.fields, definitions, STEP_IDS)
    rows = [
        (
            r.field_name,
            r.step_id,
            r.required_level,
            r.fallback_action,
            r.when_condition,
            r.collection_order,
            r.confidence,
            r.needs_human_review,
            r.review_status,
            Origin.extracted,
        )
        for r in requirements
    ]
    rows.sort(key=lambda row: (row[5], row[0]))
    return rows, sorted(s.name for s in suggestions)


# -- the prompt ---------------------------------------------------------------------------


def test_render_prompt_lists_the_agents_definitions_steps_and_text() -> None:
    """The model can only reuse field names it is shown: every definition, with what
    helps to match it, comes before the text."""
    now = "2025-01-01T00:00:00Z"
    definitions = [
        FieldDefinition.model_validate(
            {
                **DEFINITIONS[name].model_dump(),
                "id": uuid.uuid4(),
                "agent_id": AGENT,
                "name": name,
                "status": "active",
                "created_at": now,
                "updated_at": now,
            }
        )
        for name in DEFINITIONS
    ]
    source = SourceText(
        SourceKind.scenario,
        "Late delivery",
        [TextPart("Send the confirmation to their email."), TextPart("Look it up.", "lookup")],
        ["lookup", "rebook"],
    )

    prompt = render_prompt(source, definitions)

    head, text = prompt.split("\n\nText:\n")
    listed = json.loads(head.split("\n", 1)[1].split("\n\nStep ids:")[0])
    assert [d["name"] for d in listed] == ["email", "order_number"]
    assert listed[0] == {
        "name": "email",
        "display_name": "Email address",
        "value_type": "email",
        "description": "Where confirmations go.",
        "extraction_examples": ["my email is ann@example.com"],
        "hint": None,
    }
    assert listed[1]["hint"] == "The 8-digit number on the receipt."
    assert "Step ids: lookup, rebook" in head
    assert text == (
        "scenario: Late delivery\n"
        "- Send the confirmation to their email.\n"
        "- [step lookup] Look it up."
    )
    assert "Existing field definitions:\n[]" in render_prompt(source, [])


# -- recorded exchanges -------------------------------------------------------------------


@pytest.mark.vcr
async def test_good_answer_stores_requirements_and_suggestions(
    vault: Vault,
    tenant_id: UUID,
    vcr: Cassette,
    fake_llm_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A valid answer becomes the scenario's extracted requirements, in the model's order,
    low-confidence ones flagged for review, unknown fields suggested; status `done`."""
    live_url = os.environ.get("CCV_LLM_BASE_URL") or fake_llm_url
    live_model = os.environ.get("CCV_LLM_MODEL") or "good"
    live_key = os.environ.get("CCV_LLM_API_KEY") or FAKE_API_KEY
    extractor = llm_extractor(
        monkeypatch, vcr, base_url=live_url, model=live_model, api_key=live_key
    )
    scenario_id = await store_scenario(vault, tenant_id)

    assert await extract(vault, tenant_id, scenario_id, extractor) == "done"

    assert len(vcr) == 1
    sent = body(vcr.requests[0].body)
    assert sent["messages"][0] == {"role": "system", "content": INSTRUCTIONS}
    prompt = sent["messages"][1]["content"]
    assert '"name": "email"' in prompt
    assert '"name": "order_number"' in prompt
    assert "Step ids: lookup, rebook" in prompt
    assert [t["function"]["name"] for t in sent["tools"]] == ["final_result"]

    scenario, rows, suggested = await stored_outcome(vault, tenant_id, scenario_id)
    assert scenario["extraction"]["status"] == "done"
    assert scenario["extraction"]["error"] is None
    assert scenario["extraction"]["finished_at"] is not None
    proposals = recorded_proposals(vcr.responses[0])
    assert proposals.fields, "the recorded answer proposes nothing: re-record"
    expected_rows, expected_suggested = await expected_outcome(vault, tenant_id, proposals)
    assert rows == expected_rows
    assert suggested == expected_suggested

    if recorded_by_fake(vcr):
        assert proposals == Proposals.model_validate({"fields": GOOD_FIELDS})
        hard, soft = RequiredLevel.hard, RequiredLevel.soft
        none, pending = ReviewStatus.none, ReviewStatus.pending
        extracted = Origin.extracted
        ask, skip = FallbackAction.ask, FallbackAction.skip
        condition = "refund_amount > 500"
        assert rows == [
            ("email", None, hard, ask, None, 10, 0.95, False, none, extracted),
            ("order_number", "lookup", hard, ask, None, 20, 0.9, False, none, extracted),
            ("preferred_delivery_date", None, soft, skip, None, 30, 0.6, True, pending, extracted),
            ("proof_of_address", None, hard, ask, condition, 40, 0.85, True, pending, extracted),
            ("date_of_birth", None, hard, ask, None, 50, 0.9, False, none, extracted),
        ]
        assert suggested == ["date_of_birth", "preferred_delivery_date", "proof_of_address"]
        suggestion = await vault.schema.get_definition(tenant_id, AGENT, "preferred_delivery_date")
        assert suggestion.value_type is ValueType.date
        assert suggestion.display_name == "Preferred delivery date"
        # The model's age bound travels with the suggested definition.
        adult = await vault.schema.get_definition(tenant_id, AGENT, "date_of_birth")
        assert (adult.value_type, adult.min_age) == (ValueType.date, 18)


@pytest.mark.vcr
async def test_malformed_answer_is_retried_then_stored(
    vault: Vault,
    tenant_id: UUID,
    vcr: Cassette,
    fake_llm_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An answer that breaks the schema goes back to the model with the validation errors;
    the corrected answer is stored and the run is `done`."""
    extractor = llm_extractor(monkeypatch, vcr, base_url=fake_llm_url, model="malformed-then-good")
    scenario_id = await store_scenario(vault, tenant_id)

    assert await extract(vault, tenant_id, scenario_id, extractor) == "done"

    assert len(vcr) == 2, "one malformed answer, one retry"
    first_answer = body(vcr.responses[0]["body"])["choices"][0]["message"]
    with pytest.raises(ValueError, match="confidence"):
        Proposals.model_validate_json(first_answer["tool_calls"][0]["function"]["arguments"])
    retry = body(vcr.requests[1].body)["messages"]
    assert retry[-2]["role"] == "assistant"
    assert retry[-1]["role"] == "tool"
    assert retry[-1]["tool_call_id"] == retry[-2]["tool_calls"][0]["id"]
    assert "confidence" in retry[-1]["content"]
    assert "field_name" in retry[-1]["content"]
    assert "when_condition" in retry[-1]["content"]
    assert "min_age" in retry[-1]["content"]

    scenario, rows, suggested = await stored_outcome(vault, tenant_id, scenario_id)
    assert scenario["extraction"]["status"] == "done"
    expected_rows, expected_suggested = await expected_outcome(
        vault, tenant_id, recorded_proposals(vcr.responses[1])
    )
    assert rows == expected_rows
    assert [row[0] for row in rows] == [
        "email",
        "order_number",
        "preferred_delivery_date",
        "proof_of_address",
        "date_of_birth",
    ]
    assert suggested == expected_suggested


@pytest.mark.vcr
async def test_http_500_fails_the_extraction_not_the_scenario(
    vault: Vault,
    tenant_id: UUID,
    vcr: Cassette,
    fake_llm_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server error is recorded on the scenario (`failed`, with the status) after one
    HTTP attempt; the text stays saved and readable, and nothing is extracted."""
    extractor = llm_extractor(monkeypatch, vcr, base_url=fake_llm_url, model="error500")
    scenario_id = await store_scenario(vault, tenant_id)

    assert await extract(vault, tenant_id, scenario_id, extractor) == "failed"

    assert len(vcr) == 1, "no HTTP retry: the client has max_retries=0"
    assert vcr.responses[0]["status"]["code"] == 500
    scenario, rows, suggested = await stored_outcome(vault, tenant_id, scenario_id)
    assert scenario["extraction"]["status"] == "failed"
    error = scenario["extraction"]["error"]
    assert "500" in error
    assert error.startswith("Model")  # pydantic-ai's ModelHTTPError family
    assert scenario["extraction"]["finished_at"] is not None
    assert scenario["name"] == SCENARIO["name"]
    assert scenario["steps"] == SCENARIO["steps"]
    assert rows == []
    assert suggested == []


# -- live against the fake server ----------------------------------------------------------


async def test_timeout_fails_the_extraction(
    vault: Vault, tenant_id: UUID, fake_llm_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model slower than CCV_LLM_TIMEOUT_SECONDS: the run is cut off and recorded as
    `failed` with a timeout error (live: a cassette cannot replay slowness)."""
    extractor = llm_extractor(
        monkeypatch, None, base_url=fake_llm_url, model="slow", timeout_seconds=0.5
    )
    assert extractor.timeout_seconds == 0.5
    scenario_id = await store_scenario(vault, tenant_id)

    assert await extract(vault, tenant_id, scenario_id, extractor) == "failed"

    scenario, rows, suggested = await stored_outcome(vault, tenant_id, scenario_id)
    assert scenario["extraction"]["status"] == "failed"
    assert "timeout" in scenario["extraction"]["error"].lower()
    assert scenario["name"] == SCENARIO["name"]
    assert rows == []
    assert suggested == []


def test_fake_server_refuses_a_request_without_authorization(fake_llm_url: str) -> None:
    """The fake server needs the header, so the recordings really did carry a key."""
    request = urllib.request.Request(  # noqa: S310 - a local http URL of our own server
        f"{fake_llm_url}/chat/completions",
        data=json.dumps({"model": "good", "messages": []}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310
    assert refused.value.code == 401
    assert json.load(refused.value)["error"]["code"] == "invalid_api_key"


def test_cassettes_hold_no_credentials() -> None:
    """No recorded request carries an Authorization or api-key header, or the key."""
    files = sorted(CASSETTES.glob("*.yaml"))
    assert {f.stem for f in files} >= {
        "test_good_answer_stores_requirements_and_suggestions",
        "test_malformed_answer_is_retried_then_stored",
        "test_http_500_fails_the_extraction_not_the_scenario",
    }
    keys = [FAKE_API_KEY]
    if len(os.environ.get("CCV_LLM_API_KEY", "")) >= 8:  # a real key used to re-record
        keys.append(os.environ["CCV_LLM_API_KEY"])
    for path in files:
        text = path.read_text()
        assert "Bearer" not in text, path.name
        for key in keys:
            assert key not in text, path.name
        for interaction in yaml.safe_load(text)["interactions"]:
            sent = {name.lower() for name in interaction["request"]["headers"]}
            assert not sent & set(SECRET_HEADERS), path.name
