"""The MCP server, defined once for both transports: seven tools, the resource template
`ccv://profiles/{customer_id}` and the prompt `collect_missing_fields`, written against
`Backend` (backend.py). The transport decides which backend a request gets: http.py the
in-process one for the key and agent of the request, stdio.py the client-backed one.

Tool lists are per session: when the agent has active definitions, `remember_fact`'s
`field_name` is an enum of them and its description says what each means. A session
remembers a fingerprint (names, ids, updated_at) of the definitions its tool list was
computed from. The definitions are read again on a request once `check_seconds`
(`CCV_MCP_SCHEMA_CHECK_SECONDS`) have passed since the last look, and by a watcher that
looks at every open session every `check_seconds`; when the fingerprint differs,
`notifications/tools/list_changed` goes out on the session's standalone stream (GET /mcp
over HTTP, stdout over stdio), so a client learns of a change within about
`check_seconds` even while idle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio
import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from ccvault import __version__
from ccvault.domain.context import render_text
from ccvault.domain.errors import InvalidInput, Problem, VaultError
from ccvault.domain.models import Direction, ProfileField, SourceItemType
from ccvault.domain.schema import FieldDefinition
from ccvault.domain.writes import ConsentAnswer, NewField, NewIdentity
from ccvault.mcp import text
from ccvault.mcp.backend import Backend
from ccvault.mcp.tools import (
    READ_ONLY,
    TOOLS,
    ExplainFact,
    ForgetFact,
    GetCustomerProfile,
    LinkChannelIdentity,
    RecordConsent,
    RememberFact,
    WhatToAskNext,
    input_schema,
)

log = logging.getLogger("ccvault.mcp")

PROFILE_TEMPLATE = "ccv://profiles/{customer_id}"
PROFILE_PREFIX = "ccv://profiles/"
INSTRUCTIONS = (
    "Customer Context Vault: verified customer facts with provenance. Read a customer with "
    "get_customer_profile, ask what_to_ask_next before a scenario, store each answer with "
    "remember_fact (say where it came from). A refused value comes back as an error that "
    "says what to ask again."
)
DESCRIPTIONS = {
    "get_customer_profile": (
        "What the vault knows about a customer (by customer_id, or by channel + "
        "channel_user_id), prompt-ready: facts with verification, and what is still "
        "missing when scenario_id is given."
    ),
    "what_to_ask_next": (
        "The fields still missing before a scenario can run, in the order to ask for them, "
        "each with the question to ask; can_proceed says whether the scenario may start."
    ),
    "remember_fact": (
        "Store one fact about a customer with its provenance (source, confidence, "
        "verification, session). Values are checked against the field's definition; a "
        "refused value is an error that says what to ask the customer again."
    ),
    "forget_fact": "Remove a field's current value (its history is kept).",
    "link_channel_identity": "Record that a channel handle (e.g. a WhatsApp number) belongs "
    "to a customer, so later conversations find them.",
    "record_consent": "Record whether the customer grants a kind of consent.",
    "explain_fact": (
        "Where a fact came from: every version (who wrote it, when, from what source) and "
        "the chain of items the current version was derived from."
    ),
}

_STATE_KEY = "ccvault.session"

BackendFor = Callable[[ServerRequestContext[Any, Any]], Backend]


@dataclass
class _Session:
    """What a session was last shown, and when its agent's definitions were last read."""

    backend: Backend
    fingerprint: str | None = None
    checked_at: float = 0.0


def fingerprint(definitions: list[FieldDefinition]) -> str:
    """Changes whenever a definition is added, retired or edited."""
    parts = sorted(f"{d.name}|{d.id}|{d.updated_at.isoformat()}" for d in definitions)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))


def _result(data: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=_json(data))], structured_content=data
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


def _version(field: ProfileField) -> dict[str, Any]:
    """A field version as an agent needs it to judge a fact."""
    return field.model_dump(
        mode="json",
        include={
            "id",
            "value",
            "value_type",
            "status",
            "source",
            "source_item_id",
            "source_item_type",
            "source_session_id",
            "confidence",
            "verified",
            "verification_method",
            "collected_at",
            "expires_at",
            "is_orphaned",
            "written_by",
        },
        exclude_none=True,
    )


class VaultMcp:
    """The vault's MCP server; `backend_for` gives each request its door into the vault."""

    def __init__(self, backend_for: BackendFor, *, check_seconds: float = 5.0) -> None:
        self._backend_for = backend_for
        self.check_seconds = check_seconds
        self._connections: set[Connection] = set()
        self.server: Server[Any] = Server(
            "ccvault",
            version=__version__,
            title="Customer Context Vault",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
        )
        # The SDK opens an OpenTelemetry span per message by default; the vault has its
        # own access log and metrics, and no exporter to send spans to.
        self.server.middleware = [
            m for m in self.server.middleware if type(m).__name__ != "OpenTelemetryMiddleware"
        ]

    def initialization_options(self) -> InitializationOptions:
        """Capabilities as served: tool lists may change during a session."""
        return self.server.create_initialization_options(NotificationOptions(tools_changed=True))

    # Sessions and list_changed

    def _session(self, ctx: ServerRequestContext[Any, Any]) -> _Session:
        backend = self._backend_for(ctx)
        # The per-connection state lives on the SDK's Connection (one per MCP session);
        # 2.x hands low-level handlers a per-request ServerSession wrapping it.
        connection: Connection = ctx.session._connection
        state = connection.state.get(_STATE_KEY)
        if not isinstance(state, _Session):
            state = _Session(backend)
            connection.state[_STATE_KEY] = state
            self._connections.add(connection)
            connection.exit_stack.callback(self._connections.discard, connection)
        else:
            state.backend = backend
        return state

    async def _changed(self, state: _Session, seen: dict[str, str] | None = None) -> bool:
        """Read the agent's definitions again: have they changed since the session's
        tool list was computed? `seen` shares one read among sessions of the same tenant
        and agent within a round of the watcher."""
        if state.fingerprint is None or state.backend.agent_id is None:
            return False
        state.checked_at = time.monotonic()
        key = state.backend.schema_key
        now = seen.get(key) if seen is not None else None
        if now is None:
            now = fingerprint(await state.backend.definitions())
            if seen is not None:
                seen[key] = now
        if now == state.fingerprint:
            return False
        state.fingerprint = now
        return True

    async def _look_if_due(self, ctx: ServerRequestContext[Any, Any], state: _Session) -> None:
        if time.monotonic() - state.checked_at < self.check_seconds:
            return
        try:
            if await self._changed(state):
                # On the session's standalone stream (GET /mcp, or stdout): HTTP answers
                # to calls are plain JSON, with no room for notifications.
                await ctx.session._connection.send_tool_list_changed()
        except Exception:  # a failed look must not fail the call it rode on
            log.warning("could not check the agent's definitions", exc_info=True)

    async def watch(self) -> None:
        """Look at every open session's definitions every `check_seconds` (run as a task
        for as long as the transport serves); a change goes out on the standalone stream."""
        while True:
            await anyio.sleep(self.check_seconds)
            seen: dict[str, str] = {}
            for connection in list(self._connections):
                state = connection.state.get(_STATE_KEY)
                if not isinstance(state, _Session):
                    continue
                if time.monotonic() - state.checked_at < self.check_seconds / 2:
                    continue
                try:
                    if await self._changed(state, seen):
                        await connection.send_tool_list_changed()
                except Exception:  # an outage: try again next round
                    log.debug("definition check failed", exc_info=True)

    # Tools

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        state = self._session(ctx)
        definitions = await state.backend.definitions()
        state.fingerprint = fingerprint(definitions)
        state.checked_at = time.monotonic()
        tools = []
        for name, model in TOOLS.items():
            schema = input_schema(model)
            description = DESCRIPTIONS[name]
            if definitions and name == "remember_fact":
                schema["properties"]["field_name"]["enum"] = sorted(d.name for d in definitions)
                description += (
                    " The fields this agent collects (name, display name, type: meaning):\n"
                    + text.describe_definitions(definitions)
                )
            tools.append(
                types.Tool(
                    name=name,
                    description=description,
                    input_schema=schema,
                    annotations=types.ToolAnnotations(
                        read_only_hint=name in READ_ONLY,
                        destructive_hint=name == "forget_fact",
                        idempotent_hint=name != "remember_fact",
                        open_world_hint=False,
                    ),
                )
            )
        return types.ListToolsResult(tools=tools)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        state = self._session(ctx)
        model = TOOLS.get(params.name)
        if model is None:
            return _error(f"Unknown tool {params.name!r}; the tools are {', '.join(TOOLS)}.")
        try:
            args = model.model_validate(params.arguments or {})
        except ValidationError as exc:
            said = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            return _error(f"Invalid arguments for {params.name}: {said}.")
        backend = state.backend
        try:
            if isinstance(args, RememberFact):
                result = await self._remember(backend, args)
            else:
                result = await self._run(backend, args)
        except VaultError as exc:
            name = getattr(args, "field_name", None)
            # The definitions name the field for the refusal; read only when refused.
            definitions: list[FieldDefinition] = []
            if isinstance(exc, InvalidInput) and backend.agent_id:
                definitions = await backend.definitions()
            return _error(text.refusal(exc, field_name=name, definitions=definitions))
        finally:
            await self._look_if_due(ctx, state)
        return result

    async def _run(self, backend: Backend, args: Any) -> types.CallToolResult:
        if isinstance(args, GetCustomerProfile):
            customer_id = args.customer_id
            if customer_id is None:
                if args.channel is None or args.channel_user_id is None:
                    raise InvalidInput(
                        "give customer_id, or channel and channel_user_id",
                        [Problem(("customer_id",), "customer_id is required", "missing")],
                    )
                customer_id = await backend.customer_for_channel(args.channel, args.channel_user_id)
            view = await backend.context(customer_id, scenario_id=args.scenario_id)
            # Text only: clients hand structured content to the model in preference to
            # text, and the point of this tool is the prompt-ready text (the JSON is the
            # profile resource).
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=render_text(view))]
            )
        if isinstance(args, WhatToAskNext):
            if backend.agent_id is None:
                raise InvalidInput(
                    "no agent is named for this session (the CCV-Agent-Id header, or "
                    "ccv mcp --agent-id), so there is nothing it has to collect",
                    [],
                )
            missing = await backend.missing(args.customer_id, args.scenario_id, args.step_id)
            return _result(missing.model_dump(mode="json", exclude_none=True))
        if isinstance(args, ForgetFact):
            await backend.forget(args.customer_id, args.field_name)
            return _result(
                {"customer_id": args.customer_id, "field_name": args.field_name, "forgotten": True}
            )
        if isinstance(args, LinkChannelIdentity):
            identity = await backend.link(
                args.customer_id,
                NewIdentity(channel=args.channel, channel_user_id=args.channel_user_id),
            )
            data = identity.model_dump(mode="json")
            return _result({"customer_id": args.customer_id, "linked": data})
        if isinstance(args, RecordConsent):
            consent = await backend.consent(
                args.customer_id, args.consent_type, ConsentAnswer(granted=args.granted)
            )
            return _result({"customer_id": args.customer_id, **consent.model_dump(mode="json")})
        if isinstance(args, ExplainFact):
            return await self._explain(backend, args)
        raise AssertionError(f"unhandled tool arguments {type(args).__name__}")

    async def _remember(self, backend: Backend, args: RememberFact) -> types.CallToolResult:
        link: dict[str, Any] = {}
        if args.derived_from_item_id is not None:
            try:
                UUID(args.derived_from_item_id)
            except ValueError:
                link = {"source_item_id": args.derived_from_item_id, "source_item_type": "external"}
            else:
                link = {
                    "source_item_id": args.derived_from_item_id,
                    "source_item_type": SourceItemType.profile_field,
                }
        try:
            new = NewField.model_validate(
                {
                    "value": args.value,
                    "source": args.source,
                    "source_session_id": args.session_id,
                    "confidence": args.confidence if args.confidence is not None else 1.0,
                    "verified": args.verified,
                    "verification_method": args.verification_method,
                    "agent_id": backend.agent_id,
                    **link,
                }
            )
        except ValidationError as exc:
            problems = [
                Problem(tuple(e["loc"]), e["msg"], e["type"]) for e in exc.errors(include_url=False)
            ]
            raise InvalidInput("the fact is not well-formed", problems) from None
        try:
            written = await backend.remember(args.customer_id, args.field_name, new)
        except InvalidInput as exc:
            # The item it derives from may be a document (asset) rather than a field.
            not_a_field = any(p.code == "source_not_found" for p in exc.errors)
            if not not_a_field or link.get("source_item_type") != SourceItemType.profile_field:
                raise
            new = new.model_copy(update={"source_item_type": SourceItemType.profile_asset})
            written = await backend.remember(args.customer_id, args.field_name, new)
        data: dict[str, Any] = {
            "customer_id": args.customer_id,
            "field_name": args.field_name,
            "stored": _version(written.field),
        }
        if written.warnings:
            data["warnings"] = [p.msg for p in written.warnings]
        return _result(data)

    async def _explain(self, backend: Backend, args: ExplainFact) -> types.CallToolResult:
        versions = await backend.history(args.customer_id, args.field_name)
        current = next((v for v in versions if v.status.value == "active"), None)
        lineage: dict[str, Any] | None = None
        if current is not None:
            walked = await backend.lineage(current.id, Direction.ancestors)
            lineage = {
                "chain": [e.model_dump(mode="json", exclude_none=True) for e in walked.chain],
                "truncated": walked.truncated,
            }
        return _result(
            {
                "customer_id": args.customer_id,
                "field_name": args.field_name,
                "versions": [_version(v) for v in versions],
                "current_lineage": lineage,
            }
        )

    # Resources

    async def _list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        # Profiles are many and private: reachable by the template, never enumerated.
        return types.ListResourcesResult(resources=[])

    async def _list_templates(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            name="customer_profile",
            title="Customer profile",
            uri_template=PROFILE_TEMPLATE,
            description="A customer's whole profile as JSON: fields with provenance, "
            "channel identities, consents, documents.",
            mime_type="application/json",
        )
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def _read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        customer_id = uri.removeprefix(PROFILE_PREFIX)
        if not uri.startswith(PROFILE_PREFIX) or not customer_id or "/" in customer_id:
            raise _resource_error(f"no such resource: {uri} (try {PROFILE_TEMPLATE})")
        state = self._session(ctx)
        try:
            profile = await state.backend.profile(customer_id)
        except VaultError as exc:
            raise _resource_error(text.refusal(exc)) from None
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=uri, mime_type="application/json", text=profile.model_dump_json()
                )
            ]
        )

    # Prompts

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        prompt = types.Prompt(
            name="collect_missing_fields",
            title="Collect missing fields",
            description="Instructions to collect, one question at a time, what a customer's "
            "profile still lacks for a scenario, storing each answer with remember_fact.",
            arguments=[
                types.PromptArgument(
                    name="customer_id", description="The customer's id.", required=True
                ),
                types.PromptArgument(
                    name="scenario_id", description="The scenario.", required=True
                ),
            ],
        )
        return types.ListPromptsResult(prompts=[prompt])

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        if params.name != "collect_missing_fields":
            raise _invalid_params(f"unknown prompt {params.name!r}")
        arguments = params.arguments or {}
        customer_id = arguments.get("customer_id")
        scenario_id = arguments.get("scenario_id")
        if not customer_id or not scenario_id:
            raise _invalid_params("collect_missing_fields needs customer_id and scenario_id")
        backend = self._session(ctx).backend
        if backend.agent_id is None:
            raise _invalid_params("no agent is named for this session (CCV-Agent-Id)")
        try:
            missing = await backend.missing(customer_id, scenario_id)
        except VaultError as exc:
            raise _invalid_params(text.refusal(exc)) from None
        return types.GetPromptResult(
            description=f"Collect what {customer_id} still lacks for {scenario_id}",
            messages=[
                types.PromptMessage(
                    role="user",
                    content=types.TextContent(
                        type="text", text=collect_text(customer_id, scenario_id, missing)
                    ),
                )
            ],
        )


def collect_text(customer_id: str, scenario_id: str, missing: Any) -> str:
    """The prompt's instructions: the questions in order, and how to store each answer."""
    if not missing.missing:
        return (
            f"Customer {customer_id} has everything {scenario_id} needs; nothing to collect. "
            "Go ahead with the scenario."
        )
    lines = [
        f"You are collecting what customer {customer_id} still lacks for {scenario_id}. "
        "Ask one question at a time, in this order:"
    ]
    for i, m in enumerate(missing.missing, 1):
        label = m.display_name or m.field_name
        ask = m.collection_prompt or f"Ask for their {label}."
        lines.append(f"{i}. {label} (field `{m.field_name}`, {m.reason.value}): {ask}")
    lines.append(
        f"After each answer call remember_fact with customer_id={customer_id!r}, the field "
        "name above, the value as given and source='user_provided'. If the tool answers with "
        "an error, tell the customer what was wrong and ask again. When done, call "
        f"what_to_ask_next with scenario_id={scenario_id!r} to confirm nothing is left."
    )
    return "\n".join(lines)


def _invalid_params(message: str) -> MCPError:
    return MCPError(code=types.INVALID_PARAMS, message=message)


# The resource-not-found code of the MCP specification (a JSON-RPC server error).
RESOURCE_NOT_FOUND = -32002


def _resource_error(message: str) -> MCPError:
    return MCPError(code=RESOURCE_NOT_FOUND, message=message)
