"""Which extractor the settings ask for (no storage: the CLI's evaluation uses it too)."""

from __future__ import annotations

from ccvault.config import Settings
from ccvault.extraction.heuristic import HeuristicExtractor
from ccvault.extraction.models import Extractor


def make_extractor(settings: Settings) -> Extractor:
    """The LLM extractor when a model is configured (an OpenAI-compatible endpoint, or a
    pydantic-ai "provider:model" name), else the heuristic."""
    if settings.llm_model and (settings.llm_base_url or ":" in settings.llm_model):
        from ccvault.extraction.llm import LlmExtractor

        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "none"
        return LlmExtractor(
            settings.llm_base_url,
            key,
            settings.llm_model,
            timeout_seconds=settings.llm_timeout_seconds,
            output_retries=settings.llm_output_retries,
        )
    return HeuristicExtractor()
