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
name only when no definition fits, made from the text's own words ("beneficiary IBAN" ->
beneficiary_iban); never map a field to a different concept (a tax ID is tax_id, not
national_id). For each field give:
- confidence between 0 and 1 (how sure you are the text really needs it) and a short
  reason quoting the text;
- required_level: hard when the text says must, required, need or simply asks for it;
  soft when it says ideally, if possible or optional, and then fallback_action skip;
- when_condition when the field is needed only under a condition, as an expression over
  field or conversation-context names: "for transfers above 1000 EUR" ->
  transfer_amount > 1000; "if the customer is a business" -> customer_type ==
  "business" (comparisons, and/or/not, string and number literals only); set
  needs_review true whenever you give a condition;
- constraints for bounds on the value: an age limit in an eligibility rule goes on
  date_of_birth as min_age/max_age in whole years, inclusive ("over 18" -> min_age 18,
  "under 70" -> max_age 69); "income above 2000 EUR" -> min 2000 on the income field;
- for a document ("proof of address", "a copy of the passport") a field naming the
  document (proof_of_address, passport_copy) with needs_review true;
- the step_id when only one step needs it, and for a new field its value_type and
  display name.
List the fields in the order the agent should ask for them. List nothing that the text
does not need; a field the text says not to ask for is not needed."""


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
