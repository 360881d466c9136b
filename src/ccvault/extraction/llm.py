"""The LLM extractor: any OpenAI-compatible endpoint through pydantic-ai, with the answer
validated against our schema (a malformed answer is sent back for a retry) and the whole
exchange bounded by a timeout. Other providers pydantic-ai supports are a change here."""

from __future__ import annotations

import asyncio
import json

from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from ccvault.domain.schema import FieldDefinition
from ccvault.extraction.models import Proposals, ProposedField, SourceText

INSTRUCTIONS = """\
You read a conversational agent's scenario or rule and list the customer profile fields
the agent must know before it can act on it. Prefer the agent's existing field
definitions (listed by name) and use their exact names. Propose a new snake_case field
name only when no definition fits. For each field give a confidence between 0 and 1 (how
sure you are the text really needs it), a short reason quoting the text, a
required_level hint (hard when the text cannot proceed without it, soft otherwise), the
step_id when only one step needs it, and for a new field its value_type and display
name. List the fields in the order the agent should ask for them. List nothing that the
text does not need."""


def render_prompt(source: SourceText, definitions: list[FieldDefinition]) -> str:
    """The user prompt: the agent's definitions, then the text to read."""
    known = [
        {
            "name": d.name,
            "display_name": d.display_name,
            "value_type": d.value_type.value,
            "description": d.description,
            "extraction_examples": d.extraction_examples,
            "hint": d.extraction_prompt_hint,
        }
        for d in definitions
    ]
    steps = ", ".join(source.step_ids) or "none"
    return (
        f"Existing field definitions:\n{json.dumps(known, indent=1)}\n\n"
        f"Step ids: {steps}\n\nText:\n{source.render()}"
    )


class LlmExtractor:
    """Structured output over an OpenAI-compatible chat completions API."""

    name = "llm"

    def __init__(
        self,
        base_url: str | None,
        api_key: str,
        model: str,
        *,
        timeout_seconds: float = 4.5,
        output_retries: int = 2,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        chosen: OpenAIChatModel | str
        if base_url:
            # One HTTP attempt per model call: the overall timeout is ours to keep.
            client = AsyncOpenAI(
                base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_seconds
            )
            chosen = OpenAIChatModel(model, provider=OpenAIProvider(openai_client=client))
        else:
            # "provider:model" (e.g. "anthropic:claude-sonnet-4-5"): any provider
            # pydantic-ai knows, credentials from that provider's own environment variables.
            chosen = model
        self.agent = Agent(
            chosen, output_type=Proposals, instructions=INSTRUCTIONS, retries=output_retries
        )

    async def extract(
        self, source: SourceText, definitions: list[FieldDefinition]
    ) -> list[ProposedField]:
        """The proposed fields; raises on timeout, HTTP errors or output still invalid
        after the retries."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                result = await self.agent.run(render_prompt(source, definitions))
        except TimeoutError:
            raise TimeoutError(
                f"no answer from the model within {self.timeout_seconds:g} s"
            ) from None
        return result.output.fields
