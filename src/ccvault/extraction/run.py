"""One extraction run, as the `ccv.extract_requirements` job performs it."""

from __future__ import annotations

import time
from uuid import UUID

import structlog
from prometheus_client import Counter, Histogram

from ccvault.extraction.factory import make_extractor
from ccvault.extraction.models import Extractor, SourceKind
from ccvault.extraction.plan import plan
from ccvault.storage.scenarios import ScenarioStore

__all__ = ["make_extractor", "run_extraction"]

log = structlog.get_logger("ccvault.extraction")
RUNS = Counter("ccv_extraction_runs_total", "Extraction runs", ["extractor", "outcome"])
SECONDS = Histogram(
    "ccv_extraction_seconds",
    "Time an extractor took per run",
    ["extractor"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)


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
