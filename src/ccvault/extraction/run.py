"""One extraction run, as the `ccv.extract_requirements` job performs it."""

from __future__ import annotations

import time
from uuid import UUID

import structlog
from prometheus_client import Counter, Histogram

from ccvault.config import Settings
from ccvault.extraction.heuristic import HeuristicExtractor
from ccvault.extraction.models import Extractor, SourceKind
from ccvault.extraction.plan import plan
from ccvault.storage.scenarios import ScenarioStore

log = structlog.get_logger("ccvault.extraction")
RUNS = Counter("ccv_extraction_runs_total", "Extraction runs", ["extractor", "outcome"])
SECONDS = Histogram(
    "ccv_extraction_seconds",
    "Time an extractor took per run",
    ["extractor"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)


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


async def run_extraction(
    store: ScenarioStore,
    extractor: Extractor,
    kind: SourceKind,
    tenant_id: UUID,
    agent_id: str,
    source_id: str,
) -> str:
    """Extract, then store the requirements and suggestions; a failure is recorded on
    the scenario/rule and never raised (the text stays saved and usable)."""
    started = await store.start_extraction(kind, tenant_id, agent_id, source_id)
    if started is None:
        return "gone"
    source, definitions, scenario_id, seen = started
    clock = time.perf_counter()
    try:
        proposals = await extractor.extract(source, definitions)
    except Exception as exc:
        SECONDS.labels(extractor.name).observe(time.perf_counter() - clock)
        RUNS.labels(extractor.name, "failed").inc()
        error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        log.warning(
            "extraction failed",
            kind=kind.value,
            agent_id=agent_id,
            source_id=source_id,
            extractor=extractor.name,
            error=error[:300],
        )
        await store.fail_extraction(kind, tenant_id, agent_id, source_id, error, seen)
        return "failed"
    SECONDS.labels(extractor.name).observe(time.perf_counter() - clock)
    requirements, suggestions = plan(proposals, definitions, source.step_ids)
    await store.finish_extraction(
        kind, tenant_id, agent_id, source_id, scenario_id, requirements, suggestions, seen
    )
    RUNS.labels(extractor.name, "done").inc()
    log.info(
        "extraction done",
        kind=kind.value,
        agent_id=agent_id,
        source_id=source_id,
        extractor=extractor.name,
        requirements=len(requirements),
        suggestions=len(suggestions),
    )
    return "done"
