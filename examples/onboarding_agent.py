"""An onboarding agent that keeps what it learns in the Customer Context Vault, through
the vault's MCP server (pydantic-ai's `MCPToolset`).

It asks the vault what is still missing for opening an account (`what_to_ask_next`),
asks the customer one question at a time, stores each answer with its provenance
(`remember_fact`: source, session), and when the vault refuses a value (a strict-mode
tenant: a phone number without its country code) tells the customer what was wrong and
asks again. When nothing is missing it says so.

    # a vault running (`ccv serve`) and a strict-mode tenant's key:
    ccv tenant create demo --validation-mode strict
    CCV_API_KEY=ccv_... python examples/onboarding_agent.py [--url http://127.0.0.1:8000]

Options: `--stdio` talks to `ccv mcp` (spawned) instead of `/mcp`; `--interactive` lets
you be the customer (otherwise the customer's answers are scripted, a wrong phone number
first). The model: with `CCV_LLM_MODEL` set (and `CCV_LLM_BASE_URL`, `CCV_LLM_API_KEY` for
an OpenAI-compatible endpoint, as the vault's own extraction uses), a real model runs the
conversation; without it a scripted pydantic-ai `FunctionModel` makes the same tool calls,
so the example runs offline and in CI (tests/mcp/test_onboarding_example.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model
from pydantic_ai.models.function import AgentInfo, FunctionModel

from ccvault.client import AsyncVault

AGENT_ID = "onboarding-demo"
SCENARIO = "open_account"
# The agent's schema: what it may store, how values are checked, what to ask.
FIELDS = [
    ("first_name", "First name", "string", "What is your first name?"),
    ("phone", "Mobile number", "phone", "What is your mobile number?"),
    ("email", "Email address", "email", "And your email address?"),
]
# The scripted customer: the phone number first without its country code.
CUSTOMER_SAYS = [
    "Hi, I would like to open an account.",
    "Ada",
    "030 1234567",
    "+49 30 1234567",
    "ada@example.com",
]
INSTRUCTIONS = """You onboard a bank customer (customer_id {customer_id}) for the scenario
{scenario}. Call what_to_ask_next to learn what is missing, then ask the customer one
question at a time, using the collection_prompt. Store every answer with remember_fact
(customer_id {customer_id}, the field_name you asked for, the value as the customer gave
it, source "user_provided", session_id "{session_id}"). If remember_fact fails, tell the
customer briefly what was wrong and ask again for the same field. After each stored
answer call what_to_ask_next again. When nothing is missing, say that the account can be
opened. Never invent values."""


async def set_up(vault: AsyncVault) -> None:
    """The agent's definitions and the scenario's requirements (idempotent PUTs)."""
    for order, (name, display, value_type, ask) in enumerate(FIELDS):
        await vault.definitions.put(
            AGENT_ID, name, display_name=display, value_type=value_type, collection_prompt=ask
        )
        await vault.requirements.put(AGENT_ID, SCENARIO, name, collection_order=order)


@dataclass
class ScriptedOnboarder:
    """The model when no LLM is configured: the tool calls and replies a good model would
    make, decided from the last message (a `FunctionModel` function)."""

    customer_id: str
    session_id: str
    asking: str | None = None
    calls: int = 0

    def _call(self, tool: str, **args: Any) -> ModelResponse:
        self.calls += 1
        return ModelResponse(parts=[ToolCallPart(tool, args, tool_call_id=f"call-{self.calls}")])

    def _ask_next(self, missing: dict[str, Any]) -> ModelResponse:
        if not missing["missing"]:
            self.asking = None
            return ModelResponse(
                parts=[TextPart("Thank you, that is all: your account can be opened.")]
            )
        first = missing["missing"][0]
        self.asking = first["field_name"]
        return ModelResponse(parts=[TextPart(first["collection_prompt"])])

    async def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        assert isinstance(last, ModelRequest)
        for part in last.parts:
            refused = isinstance(part, RetryPromptPart) or (
                # pydantic-ai 2.x: a tool error the model may retry after comes back as a
                # tool return whose outcome says so.
                isinstance(part, ToolReturnPart)
                and getattr(part, "outcome", "success") != "success"
            )
            if refused:
                # The vault refused the value: say why and ask for the same field again.
                said = str(getattr(part, "content", ""))
                reason = said.split("was not stored: ", 1)[-1].split(" Ask the customer", 1)[0]
                return ModelResponse(
                    parts=[TextPart(f"Sorry, that did not work: {reason} Could you give it again?")]
                )
            if isinstance(part, ToolReturnPart):
                content: Any = part.content
                if isinstance(content, str):
                    content = json.loads(content)
                if part.tool_name == "what_to_ask_next":
                    return self._ask_next(content)
                return self._call(
                    "what_to_ask_next", customer_id=self.customer_id, scenario_id=SCENARIO
                )
            if isinstance(part, UserPromptPart):
                if self.asking is None:
                    return self._call(
                        "what_to_ask_next", customer_id=self.customer_id, scenario_id=SCENARIO
                    )
                return self._call(
                    "remember_fact",
                    customer_id=self.customer_id,
                    field_name=self.asking,
                    value=str(part.content).strip(),
                    source="user_provided",
                    session_id=self.session_id,
                )
        return ModelResponse(parts=[TextPart("How can I help?")])


def configured_model() -> Model | str | None:
    """The real model named by CCV_LLM_* (as the vault's extraction reads them), or None."""
    name = os.environ.get("CCV_LLM_MODEL")
    if not name:
        return None
    base_url = os.environ.get("CCV_LLM_BASE_URL")
    if not base_url:
        return name  # "provider:model", credentials from the provider's own variables
    from openai import AsyncOpenAI
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    client = AsyncOpenAI(base_url=base_url, api_key=os.environ.get("CCV_LLM_API_KEY", "none"))
    return OpenAIChatModel(name, provider=OpenAIProvider(openai_client=client))


def toolset(url: str, api_key: str, *, stdio: bool) -> MCPToolset[Any]:
    """The vault's MCP server as a pydantic-ai toolset: `/mcp` over streamable HTTP, or
    `ccv mcp` spawned over stdio."""
    if stdio:
        from fastmcp.client.transports import StdioTransport

        ccv = shutil.which("ccv") or os.path.join(os.path.dirname(sys.executable), "ccv")
        transport = StdioTransport(
            command=ccv,
            args=["mcp", "--agent-id", AGENT_ID, "--url", url],
            env={**os.environ, "CCV_API_KEY": api_key},
        )
        # `ccv` takes a few seconds to start (it imports the whole service).
        return MCPToolset(transport, max_retries=3, init_timeout=60)
    return MCPToolset(
        f"{url.rstrip('/')}/mcp",
        headers={"Authorization": f"Bearer {api_key}", "CCV-Agent-Id": AGENT_ID},
        max_retries=3,
    )


@dataclass
class Conversation:
    """What was said, in order: (speaker, text)."""

    customer_id: str
    session_id: str
    turns: list[tuple[str, str]] = field(default_factory=list)


async def run(
    url: str,
    api_key: str,
    *,
    stdio: bool = False,
    model: Model | str | None = None,
    customer_says: Sequence[str] | None = CUSTOMER_SAYS,
    customer_id: str | None = None,
) -> Conversation:
    """Set up the schema, then hold the conversation; `customer_says=None` reads the
    customer's answers from stdin."""
    conversation = Conversation(
        customer_id or f"demo-{uuid.uuid4().hex[:8]}", f"onboarding-{uuid.uuid4().hex[:8]}"
    )
    async with AsyncVault(url, api_key) as vault:
        await set_up(vault)
    chosen = model or configured_model()
    if chosen is None:
        chosen = FunctionModel(ScriptedOnboarder(conversation.customer_id, conversation.session_id))
    agent = Agent(
        chosen,
        toolsets=[toolset(url, api_key, stdio=stdio)],
        instructions=INSTRUCTIONS.format(
            customer_id=conversation.customer_id,
            scenario=SCENARIO,
            session_id=conversation.session_id,
        ),
    )
    history: list[ModelMessage] = []
    answers = iter(customer_says) if customer_says is not None else None
    async with agent:
        while True:
            if answers is not None:
                said = next(answers, None)
                if said is None:
                    break
                print(f"customer: {said}")
            else:
                said = (await asyncio.to_thread(input, "you: ")).strip()
                if not said:
                    break
            conversation.turns.append(("customer", said))
            result = await agent.run(said, message_history=history)
            history = result.all_messages()
            reply = str(result.output)
            conversation.turns.append(("agent", reply))
            print(f"agent:    {reply}")
            if "can be opened" in reply:
                break
    return conversation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("CCV_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--stdio", action="store_true", help="use `ccv mcp` over stdio")
    parser.add_argument("--interactive", action="store_true", help="be the customer yourself")
    parser.add_argument("--customer-id", help="the customer to onboard (default: a new one)")
    args = parser.parse_args(argv)
    api_key = os.environ.get("CCV_API_KEY")
    if not api_key:
        print("set CCV_API_KEY to a (strict-mode) tenant's API key", file=sys.stderr)
        return 2
    conversation = asyncio.run(
        run(
            args.url,
            api_key,
            stdio=args.stdio,
            customer_says=None if args.interactive else CUSTOMER_SAYS,
            customer_id=args.customer_id,
        )
    )
    print(f"\nstored for {conversation.customer_id} (session {conversation.session_id});")
    print(f"see GET {args.url}/v1/profiles/{conversation.customer_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
