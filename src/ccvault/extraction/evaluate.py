"""Scoring an extractor on labeled texts: precision, recall and F1 per case and overall.

A case (one JSON object a line) is a scenario or rule text, the agent's definitions if
any, and the requirements a careful reader expects: for each, the acceptable field names
and its level, condition and bounds. Scoring reads what would be stored (the extractor's
proposals through `plan`), so any extractor with the `Extractor` protocol can be measured.

- `fields`: a requirement counts when its name is one of an expected one's acceptable
  names (each expected requirement matches at most once). Names are compared without
  articles ("name_of_the_doctor" = "name_of_doctor").
- `strict`: it also has the expected level, the expected condition (same names read, one
  of them acceptable, and the same constants) and the expected bounds.
"""

from __future__ import annotations

import ast
import json
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ccvault.domain.conditions import condition_fields, parse_condition
from ccvault.domain.models import FIELD_NAME_PATTERN, ValueType
from ccvault.domain.scenarios import PlannedRequirement
from ccvault.domain.schema import FieldDefinition, RequiredLevel
from ccvault.extraction.models import Extractor, SourceKind, SourceText, TextPart
from ccvault.extraction.plan import plan

DATASETS = Path(__file__).parent / "datasets"
"""The labeled texts shipped with ccvault: `dev.jsonl` (tune on it) and `test.jsonl`."""

FieldName = Annotated[str, StringConstraints(pattern=FIELD_NAME_PATTERN)]


class ExpectedRequirement(BaseModel):
    """One requirement a careful reader finds in the text."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    fields: list[FieldName] = Field(min_length=1)
    """Acceptable field names, the preferred one first."""
    level: RequiredLevel = RequiredLevel.hard
    """`hard` or `soft`."""
    condition: str | None = None
    """The `when_condition` expected, if the field is needed only sometimes."""
    condition_names: list[FieldName] = Field(default_factory=list)
    """Names the condition may read instead of those in `condition`."""
    constraints: dict[str, float] = Field(default_factory=dict)
    """Bounds expected on the value: `min`, `max`, `min_age`, `max_age`."""


class DefinitionSpec(BaseModel):
    """An agent definition present when the text is read."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: FieldName
    """The definition's name."""
    display_name: str
    """Its display name."""
    value_type: ValueType = ValueType.string
    """Its value type."""
    extraction_examples: list[str] = Field(default_factory=list)
    """Its extraction examples."""
    extraction_prompt_hint: str | None = None
    """Its extraction hint."""


class Case(BaseModel):
    """A labeled text."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    id: str
    """The case's id."""
    domain: str = ""
    """Its domain (banking, retail...), for the report."""
    kind: SourceKind = SourceKind.scenario
    """`scenario` or `rule`."""
    text: str = Field(min_length=1, max_length=20_000)
    """The text."""
    definitions: list[DefinitionSpec] = Field(default_factory=list)
    """The agent's definitions when the text is read."""
    expected: list[ExpectedRequirement]
    """What a careful reader finds."""


class DatasetError(ValueError):
    """A dataset line that is not a valid case."""


def load_cases(path: Path) -> list[Case]:
    """The cases of a JSON Lines file; DatasetError names the first bad line."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(Case.model_validate(json.loads(line)))
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()
            raise DatasetError(f"{path}:{number}: {' '.join(first[:3])}") from None
    if not cases:
        raise DatasetError(f"{path}: no cases")
    return cases


def _normal(name: str) -> str:
    return "_".join(t for t in name.split("_") if t not in {"the", "a", "an"})


def _constants(condition: str) -> set[str]:
    tree = parse_condition(condition)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, str):
                found.add(value.lower())
            elif isinstance(value, int | float) and not isinstance(value, bool):
                found.add(repr(float(value)))
            elif value is not None:
                found.add(repr(value))
    return found


def condition_matches(expected: ExpectedRequirement, got: str | None) -> bool:
    """Whether a stored condition says what the label says."""
    if expected.condition is None or got is None:
        return expected.condition is None and got is None
    try:
        names = condition_fields(got)
    except ValueError:
        return False
    acceptable = set(expected.condition_names) | condition_fields(expected.condition)
    return bool(names & acceptable) and _constants(got) == _constants(expected.condition)


@dataclass
class CaseScore:
    """One case's outcome."""

    case: Case
    found: list[PlannedRequirement]
    matched: int
    strict: int
    missed: list[str]
    extra: list[str]
    seconds: float
    error: str | None = None

    @property
    def expected(self) -> int:
        """How many requirements the label lists."""
        return len(self.case.expected)


def _prf(hits: int, found: int, expected: int) -> tuple[float, float, float]:
    precision = hits / found if found else (1.0 if expected == 0 else 0.0)
    recall = hits / expected if expected else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@dataclass
class Report:
    """All cases, and the micro-averaged figures over them."""

    cases: list[CaseScore] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        """Micro-averaged precision, recall and F1 (`fields` and `strict`), and timings."""
        found = sum(len(c.found) for c in self.cases)
        expected = sum(c.expected for c in self.cases)
        hits = sum(c.matched for c in self.cases)
        strict = sum(c.strict for c in self.cases)
        p, r, f = _prf(hits, found, expected)
        sp, sr, sf = _prf(strict, found, expected)
        seconds = sorted(c.seconds for c in self.cases)
        return {
            "cases": len(self.cases),
            "failed": sum(1 for c in self.cases if c.error),
            "expected": expected,
            "found": found,
            "matched": hits,
            "precision": round(p, 3),
            "recall": round(r, 3),
            "f1": round(f, 3),
            "strict_precision": round(sp, 3),
            "strict_recall": round(sr, 3),
            "strict_f1": round(sf, 3),
            "p50_ms": round(statistics.median(seconds) * 1000, 3) if seconds else 0.0,
            "max_ms": round(seconds[-1] * 1000, 3) if seconds else 0.0,
        }

    def rows(self) -> list[dict[str, Any]]:
        """One row per case."""
        rows = []
        for c in self.cases:
            p, r, f = _prf(c.matched, len(c.found), c.expected)
            _, _, sf = _prf(c.strict, len(c.found), c.expected)
            rows.append(
                {
                    "id": c.case.id,
                    "domain": c.case.domain,
                    "precision": round(p, 3),
                    "recall": round(r, 3),
                    "f1": round(f, 3),
                    "strict_f1": round(sf, 3),
                    "missed": c.missed,
                    "extra": c.extra,
                    "error": c.error,
                }
            )
        return rows


def _definitions(case: Case) -> list[FieldDefinition]:
    now = datetime.now(UTC)
    return [
        FieldDefinition.model_validate(
            {
                "id": uuid.uuid4(),
                "agent_id": "eval",
                "status": "active",
                "created_at": now,
                "updated_at": now,
                **spec.model_dump(),
            }
        )
        for spec in case.definitions
    ]


def score_case(case: Case, found: list[PlannedRequirement], seconds: float) -> CaseScore:
    """Match what was found against the label."""
    unmatched = list(found)
    matched = strict = 0
    missed = []
    for expected in case.expected:
        names = {_normal(n) for n in expected.fields}
        hit = next((r for r in unmatched if _normal(r.field_name) in names), None)
        if hit is None:
            missed.append(expected.fields[0])
            continue
        unmatched.remove(hit)
        matched += 1
        if (
            hit.required_level is expected.level
            and condition_matches(expected, hit.when_condition)
            and hit.bounds == {k: float(v) for k, v in expected.constraints.items()}
        ):
            strict += 1
    return CaseScore(
        case, found, matched, strict, missed, [r.field_name for r in unmatched], seconds
    )


async def evaluate(extractor: Extractor, cases: list[Case]) -> Report:
    """Run the extractor on every case and score it; a case the extractor fails on
    counts as finding nothing (and says why)."""
    report = Report()
    for case in cases:
        definitions = _definitions(case)
        source = SourceText(case.kind, case.id, [TextPart(case.text)])
        clock = time.perf_counter()
        try:
            proposals = await extractor.extract(source, definitions)
        except Exception as exc:
            score = score_case(case, [], time.perf_counter() - clock)
            score.error = f"{type(exc).__name__}: {exc}"[:300]
            report.cases.append(score)
            continue
        requirements, _ = plan(proposals, definitions, [])
        report.cases.append(score_case(case, requirements, time.perf_counter() - clock))
    return report
