"""The MCP server through the SDK's own ClientSession, over each transport: the tools,
their schemas per agent, their effect on the vault (checked through the HTTP API),
refusals as tool errors, tenant isolation, the resource template, the prompt and
`notifications/tools/list_changed`."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError
from mcp_support import AGENT, SCENARIO, Opener, define, require

TOOLS = {
    "get_customer_profile",
    "what_to_ask_next",
    "remember_fact",
    "forget_fact",
    "link_channel_identity",
    "record_consent",
    "explain_fact",
}


def customer() -> str:
    return f"c-{uuid.uuid4().hex[:12]}"


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def call(session: ClientSession, tool: str, **args: Any) -> dict[str, Any]:
    """Call a tool that must succeed; its structured answer."""
    result = await session.call_tool(tool, args)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


async def refused(session: ClientSession, tool: str, **args: Any) -> str:
    """Call a tool that must fail as a tool error; its text."""
    result = await session.call_tool(tool, args)
    assert result.is_error, text_of(result)
    return text_of(result)


def schema_of(tools: types.ListToolsResult, name: str) -> dict[str, Any]:
    return next(t.input_schema for t in tools.tools if t.name == name)


async def test_the_seven_tools_are_listed_with_their_input_schemas(
    connect: Opener, strict_key: str
) -> None:
    async with connect(strict_key) as session:
        tools = await session.list_tools()
    assert {t.name for t in tools.tools} == TOOLS
    remember = schema_of(tools, "remember_fact")
    assert set(remember["required"]) == {"customer_id", "field_name", "value"}
    assert "enum" not in remember["properties"]["field_name"]
    assert {"channel", "channel_user_id"} <= set(
        schema_of(tools, "get_customer_profile")["properties"]
    )
    assert set(schema_of(tools, "record_consent")["required"]) == {
        "customer_id",
        "consent_type",
        "granted",
    }


async def test_field_name_is_an_enum_of_the_agents_active_definitions(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "email", value_type="email", description="Where we send statements")
    await define(rest, "phone", value_type="phone")
    await define(rest, "nickname", agent="other_agent")
    async with connect(strict_key) as session:
        tools = await session.list_tools()
    remember = next(t for t in tools.tools if t.name == "remember_fact")
    assert remember.input_schema["properties"]["field_name"]["enum"] == ["email", "phone"]
    assert remember.description is not None
    assert "- email (Email, email): Where we send statements" in remember.description
    assert "- phone (Phone, phone)" in remember.description
    async with connect(strict_key, agent="other_agent") as session:
        other = schema_of(await session.list_tools(), "remember_fact")
    assert other["properties"]["field_name"]["enum"] == ["nickname"]


async def test_remember_fact_stores_the_value_with_its_provenance(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "email", value_type="email")
    cid = customer()
    async with connect(strict_key) as session:
        answer = await call(
            session,
            "remember_fact",
            customer_id=cid,
            field_name="email",
            value="Ada@Example.com",
            confidence=0.9,
            session_id="chat-1",
            verified=True,
            verification_method="otp",
        )
    stored = (await rest.get(f"/v1/profiles/{cid}/fields/email")).json()
    assert answer["stored"]["id"] == stored["id"]
    assert stored["source"] == "user_provided"
    assert stored["source_session_id"] == "chat-1"
    assert stored["confidence"] == 0.9
    assert stored["verified"] is True and stored["verification_method"] == "otp"
    assert stored["written_by"]["agent_id"] == AGENT


async def test_a_value_refused_in_strict_mode_is_a_tool_error_saying_what_to_ask_again(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "phone", value_type="phone", display_name="Phone number")
    cid = customer()
    async with connect(strict_key) as session:
        said = await refused(
            session, "remember_fact", customer_id=cid, field_name="phone", value="030 1234567"
        )
        unknown = await refused(
            session, "remember_fact", customer_id=cid, field_name="shoe_size", value="42"
        )
    assert "Phone number (phone) was not stored" in said
    assert "+4930123456" in said and "Ask the customer for it again" in said
    assert "'shoe_size' is not a field this agent collects" in unknown and "phone" in unknown
    assert (await rest.get(f"/v1/profiles/{cid}/fields/phone")).status_code == 404


async def test_bad_arguments_are_tool_errors_naming_the_argument(
    connect: Opener, strict_key: str
) -> None:
    async with connect(strict_key) as session:
        said = await refused(session, "record_consent", customer_id="c1", consent_type="x")
    assert "granted" in said


async def test_get_customer_profile_by_id_and_by_channel_identity(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "first_name", display_name="First name")
    cid = customer()
    async with connect(strict_key) as session:
        await call(session, "remember_fact", customer_id=cid, field_name="first_name", value="Ada")
        linked = await call(
            session,
            "link_channel_identity",
            customer_id=cid,
            channel="whatsapp",
            channel_user_id="+4930123456",
        )
        by_id = await session.call_tool("get_customer_profile", {"customer_id": cid})
        by_channel = await session.call_tool(
            "get_customer_profile", {"channel": "whatsapp", "channel_user_id": "+4930123456"}
        )
    assert linked["linked"]["channel_user_id"] == "+4930123456"
    assert "First name: Ada" in text_of(by_id)
    assert not by_channel.is_error and by_channel.structured_content is None
    assert text_of(by_channel) == text_of(by_id)
    assert text_of(by_id).startswith(f"Customer {cid} (verification level: unverified)")
    profile = (await rest.get(f"/v1/profiles/{cid}")).json()
    assert [i["channel"] for i in profile["channel_identities"]] == ["whatsapp"]


async def test_an_unknown_customer_is_a_tool_error(connect: Opener, strict_key: str) -> None:
    async with connect(strict_key) as session:
        said = await refused(session, "get_customer_profile", customer_id=customer())
        by_channel = await refused(
            session, "get_customer_profile", channel="sms", channel_user_id="+15550000"
        )
        neither = await refused(session, "get_customer_profile")
    assert said.startswith("Not found")
    assert by_channel.startswith("Not found")
    assert "customer_id" in neither


async def test_what_to_ask_next_lists_the_missing_fields_until_they_are_remembered(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "email", value_type="email", collection_prompt="What is your email?")
    await define(rest, "nickname")
    await require(rest, "email")
    cid = customer()
    async with connect(strict_key) as session:
        before = await call(session, "what_to_ask_next", customer_id=cid, scenario_id=SCENARIO)
        await call(session, "remember_fact", customer_id=cid, field_name="nickname", value="Ada")
        view = await session.call_tool(
            "get_customer_profile", {"customer_id": cid, "scenario_id": SCENARIO}
        )
        await call(session, "remember_fact", customer_id=cid, field_name="email", value="a@b.co")
        after = await call(session, "what_to_ask_next", customer_id=cid, scenario_id=SCENARIO)
    assert before["can_proceed"] is False
    assert [m["field_name"] for m in before["missing"]] == ["email"]
    assert before["missing"][0]["collection_prompt"] == "What is your email?"
    assert after == {"can_proceed": True, "missing": []}
    assert 'Email [email] (hard, missing). Ask: "What is your email?"' in text_of(view)


async def test_forget_fact_removes_the_current_value(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "email", value_type="email")
    cid = customer()
    async with connect(strict_key) as session:
        await call(session, "remember_fact", customer_id=cid, field_name="email", value="a@b.co")
        await call(session, "forget_fact", customer_id=cid, field_name="email")
        again = await refused(session, "forget_fact", customer_id=cid, field_name="email")
    assert (await rest.get(f"/v1/profiles/{cid}/fields/email")).status_code == 404
    assert again.startswith("Not found")


async def test_record_consent_is_stored_on_the_profile(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    resp = await rest.post("/v1/profiles", json={"customer_id": (cid := customer())})
    assert resp.status_code == 201, resp.text
    async with connect(strict_key) as session:
        answer = await call(
            session, "record_consent", customer_id=cid, consent_type="marketing", granted=True
        )
    assert answer["granted"] is True
    consents = (await rest.get(f"/v1/profiles/{cid}")).json()["consents"]
    assert [(c["consent_type"], c["granted"]) for c in consents] == [("marketing", True)]


async def test_explain_fact_gives_every_version_and_the_current_ones_lineage(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "first_name")
    await define(rest, "greeting")
    cid = customer()
    async with connect(strict_key) as session:
        await call(session, "remember_fact", customer_id=cid, field_name="first_name", value="A")
        name = await call(
            session, "remember_fact", customer_id=cid, field_name="first_name", value="Ada"
        )
        await call(
            session,
            "remember_fact",
            customer_id=cid,
            field_name="greeting",
            value="Hi Ada",
            source="system_inferred",
            derived_from_item_id=name["stored"]["id"],
        )
        history = await call(session, "explain_fact", customer_id=cid, field_name="first_name")
        greeting = await call(session, "explain_fact", customer_id=cid, field_name="greeting")
    assert [v["value"] for v in history["versions"]] == ["Ada", "A"]
    assert [v["status"] for v in history["versions"]] == ["active", "superseded"]
    chain = greeting["current_lineage"]["chain"]
    assert [e["name"] for e in chain] == ["greeting", "first_name"]
    assert chain[1]["item_id"] == name["stored"]["id"]


async def test_another_tenants_key_reaches_nothing_through_any_tool_or_resource(
    connect: Opener, strict_key: str, other_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "email", value_type="email")
    await require(rest, "email")
    cid = customer()
    async with connect(strict_key) as session:
        await call(session, "remember_fact", customer_id=cid, field_name="email", value="a@b.co")
        await call(
            session,
            "link_channel_identity",
            customer_id=cid,
            channel="sms",
            channel_user_id="+1555",
        )
    async with connect(other_key) as session:
        tools = await session.list_tools()
        assert "enum" not in schema_of(tools, "remember_fact")["properties"]["field_name"]
        for tool, args in [
            ("get_customer_profile", {"customer_id": cid}),
            ("get_customer_profile", {"channel": "sms", "channel_user_id": "+1555"}),
            ("forget_fact", {"customer_id": cid, "field_name": "email"}),
            ("explain_fact", {"customer_id": cid, "field_name": "email"}),
        ]:
            said = await refused(session, tool, **args)
            assert "a@b.co" not in said
        # For B the customer is new: nothing of A's shows.
        missing = await call(session, "what_to_ask_next", customer_id=cid, scenario_id=SCENARIO)
        assert missing == {"can_proceed": True, "missing": []}
        with pytest.raises(MCPError):
            await session.read_resource(f"ccv://profiles/{cid}")
        prompt = await session.get_prompt(
            "collect_missing_fields", {"customer_id": cid, "scenario_id": SCENARIO}
        )
        content = prompt.messages[0].content
        assert isinstance(content, types.TextContent) and "nothing to collect" in content.text
        # B's writes under the same id land in B's own vault, never in A's.
        await call(session, "record_consent", customer_id=cid, consent_type="x", granted=True)
        await call(
            session, "link_channel_identity", customer_id=cid, channel="x", channel_user_id="y"
        )
    profile = (await rest.get(f"/v1/profiles/{cid}")).json()
    assert list(profile["fields"]) == ["email"] and profile["fields"]["email"]["value"] == "a@b.co"
    assert profile["consents"] == []
    assert [i["channel"] for i in profile["channel_identities"]] == ["sms"]


async def test_the_profile_resource_template_reads_a_profile(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "email", value_type="email")
    cid = customer()
    async with connect(strict_key) as session:
        templates = await session.list_resource_templates()
        await call(session, "remember_fact", customer_id=cid, field_name="email", value="a@b.co")
        read = await session.read_resource(f"ccv://profiles/{cid}")
        with pytest.raises(MCPError):
            await session.read_resource(f"ccv://profiles/{customer()}")
    assert [t.uri_template for t in templates.resource_templates] == [
        "ccv://profiles/{customer_id}"
    ]
    content = read.contents[0]
    assert isinstance(content, types.TextResourceContents)
    assert content.mime_type == "application/json"
    profile = json.loads(content.text)
    assert profile["customer_id"] == cid
    assert profile["fields"]["email"]["value"] == "a@b.co"


async def test_the_collect_missing_fields_prompt_lists_the_questions_in_order(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "email", value_type="email", collection_prompt="What is your email?")
    await define(rest, "first_name", display_name="First name")
    await require(rest, "first_name", collection_order=1)
    await require(rest, "email", collection_order=2)
    cid = customer()
    async with connect(strict_key) as session:
        prompts = await session.list_prompts()
        prompt = await session.get_prompt(
            "collect_missing_fields", {"customer_id": cid, "scenario_id": SCENARIO}
        )
    assert [p.name for p in prompts.prompts] == ["collect_missing_fields"]
    content = prompt.messages[0].content
    assert isinstance(content, types.TextContent)
    said = content.text
    assert said.index("First name (field `first_name`") < said.index("Email (field `email`")
    assert "What is your email?" in said and "remember_fact" in said


async def test_tools_list_changed_is_sent_when_the_agents_definitions_change(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "email", value_type="email")
    changed = asyncio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    async with connect(strict_key, on_message=on_message) as session:
        before = schema_of(await session.list_tools(), "remember_fact")
        await asyncio.sleep(0.5)
        assert not changed.is_set()
        await define(rest, "phone", value_type="phone")
        # Seen by the periodic check (standalone stream) or on the next call, whichever first.
        await asyncio.wait_for(changed.wait(), timeout=10)
        after = schema_of(await session.list_tools(), "remember_fact")
    assert before["properties"]["field_name"]["enum"] == ["email"]
    assert after["properties"]["field_name"]["enum"] == ["email", "phone"]


async def test_a_fact_may_derive_from_a_document_and_an_unknown_source_is_refused(
    connect: Opener, strict_key: str, rest: httpx.AsyncClient
) -> None:
    await define(rest, "first_name")
    cid = customer()
    asset = await rest.post(
        f"/v1/profiles/{cid}/assets",
        json={
            "name": "passport",
            "asset_type": "document",
            "storage_provider": "s3",
            "storage_path": "bucket/passport.pdf",
            "mime_type": "application/pdf",
            "size_bytes": 1234,
            "checksum": "sha256:abc",
        },
    )
    assert asset.status_code == 201, asset.text
    async with connect(strict_key) as session:
        stored = await call(
            session,
            "remember_fact",
            customer_id=cid,
            field_name="first_name",
            value="Ada",
            source="document_extracted",
            derived_from_item_id=asset.json()["id"],
        )
        said = await refused(
            session,
            "remember_fact",
            customer_id=cid,
            field_name="first_name",
            value="Ada",
            derived_from_item_id=str(uuid.uuid4()),
        )
    assert stored["stored"]["source_item_type"] == "profile_asset"
    assert "source_item_id" in said and "no profile_asset with this id" in said
