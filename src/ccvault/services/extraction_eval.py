"""Scoring requirement extraction on labeled texts (`ccv eval-extraction`): the offline
extractor, or the model the settings configure. No storage: nothing is written."""

from __future__ import annotations

from pathlib import Path

from ccvault.config import Settings
from ccvault.extraction.evaluate import DATASETS, Report, evaluate, load_cases
from ccvault.extraction.factory import make_extractor
from ccvault.extraction.heuristic import HeuristicExtractor
from ccvault.extraction.models import Extractor

SHIPPED = ("dev", "test")
"""Names of the labeled sets shipped with ccvault."""


class NoModelConfigured(Exception):
    """--llm was asked for but no model is configured."""


def dataset_path(dataset: str) -> Path:
    """A shipped set by name (`dev`, `test`), else a file path."""
    return DATASETS / f"{dataset}.jsonl" if dataset in SHIPPED else Path(dataset)


async def score(path: Path, settings: Settings | None = None) -> tuple[str, Report]:
    """The extractor's name and its report on the file's cases: the offline extractor
    without settings, the configured model with them. Raises DatasetError or OSError for
    a bad file, NoModelConfigured when the settings name no model."""
    cases = load_cases(path)
    extractor: Extractor = HeuristicExtractor()
    if settings is not None:
        extractor = make_extractor(settings)
        if isinstance(extractor, HeuristicExtractor):
            raise NoModelConfigured("set CCV_LLM_MODEL (and CCV_LLM_BASE_URL for an endpoint)")
    return extractor.name, await evaluate(extractor, cases)
