"""examples/onboarding_agent.py end to end against the live server: the scripted model
(pydantic-ai's FunctionModel) asks what is missing, stores each answer with provenance
through the MCP server, and asks again after the strict-mode refusal of a phone number."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "onboarding_agent.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("onboarding_agent", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_the_onboarding_example_collects_every_field_and_asks_again_after_a_refusal(
    transport: str, live: str, strict_key: str, rest: httpx.AsyncClient
) -> None:
    example = load_example()
    conversation = await example.run(live, strict_key, stdio=transport == "stdio")
    said = [text for who, text in conversation.turns if who == "agent"]
    assert said[0] == "What is your first name?"
    assert said[1] == "What is your mobile number?"
    assert said[2].startswith("Sorry, that did not work:") and "+4930123456" in said[2]
    assert said[3] == "And your email address?"
    assert said[4] == "Thank you, that is all: your account can be opened."

    cid = conversation.customer_id
    fields = (await rest.get(f"/v1/profiles/{cid}")).json()["fields"]
    assert {name: f["value"] for name, f in fields.items()} == {
        "first_name": "Ada",
        "phone": "+49301234567",
        "email": "ada@example.com",
    }
    for stored in fields.values():
        assert stored["source"] == "user_provided"
        assert stored["source_session_id"] == conversation.session_id
        assert stored["written_by"]["agent_id"] == example.AGENT_ID
    # The refused number was never stored: one version of the phone.
    history = (await rest.get(f"/v1/profiles/{cid}/fields/phone/history")).json()["items"]
    assert len(history) == 1
    missing = await rest.get(
        f"/v1/profiles/{cid}/missing-fields",
        params={"agent_id": example.AGENT_ID, "scenario_id": example.SCENARIO},
    )
    assert missing.json() == {"can_proceed": True, "missing": []}
