"""Prompt-ready context view (issue 12): how many bytes a 20-field profile costs an agent's
prompt as `format=text`, as the JSON view and as the full profile JSON, and what building
and rendering the view costs against serializing the profile (the raw baseline).

Pure Python, no servers: the view is built from the same models the route uses.
Run: `python benchmarks/context_bench.py`.
"""

from __future__ import annotations

import json
import statistics
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from ccvault.domain.context import build_view, render_text
from ccvault.domain.models import Profile, ProfileField
from ccvault.domain.schema import FieldDefinition

FIELDS = 20
ROUNDS = 2000
OUTPUT = Path(__file__).resolve().parent / "results" / "context.json"
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
# Realistic values for an onboarding profile: 20 fields of the common types.
VALUES: list[tuple[str, str, Any]] = [
    ("email", "email", "ada.lovelace@example.com"),
    ("phone", "phone", "+493012345678"),
    ("first_name", "string", "Ada"),
    ("last_name", "string", "Lovelace"),
    ("date_of_birth", "date", "1990-12-10"),
    ("street", "string", "Unter den Linden 1"),
    ("city", "string", "Berlin"),
    ("postal_code", "string", "10117"),
    ("country", "string", "DE"),
    ("nationality", "string", "DE"),
    ("employment_status", "string", "employed"),
    ("employer", "string", "Analytical Engines GmbH"),
    ("annual_income", "number", 64000.0),
    ("iban", "string", "DE89370400440532013000"),
    ("tax_id", "string", "12345678901"),
    ("preferred_language", "string", "de"),
    ("marketing_opt_in", "boolean", False),
    ("customer_tier", "string", "gold"),
    ("household_size", "integer", 3),
    ("website", "url", "https://ada.example.com/"),
]


def _profile() -> Profile:
    fields = {}
    for i, (name, value_type, value) in enumerate(VALUES[:FIELDS]):
        collected = NOW - timedelta(days=i * 7, hours=i)
        fields[name] = ProfileField(
            id=uuid.uuid4(),
            name=name,
            value=value,
            value_type=value_type,
            status="active",
            source="user_provided" if i % 3 else "document_extracted",
            confidence=1.0 if i % 3 else 0.92,
            verified=i % 2 == 0,
            verification_method="otp" if i % 2 == 0 else None,
            verified_at=collected if i % 2 == 0 else None,
            requires_confirmation=False,
            collected_at=collected,
            updated_at=collected,
            source_session_id=f"session-{i // 5}",
            is_orphaned=False,
        )
    return Profile(
        customer_id="cust-000042",
        created_at=NOW - timedelta(days=200),
        updated_at=NOW,
        verification_level="phone_verified",
        channel_identities=[],
        consents=[],
        fields=fields,
        assets=[],
        field_status_summary={"active": FIELDS},
    )


def _definitions() -> list[FieldDefinition]:
    return [
        FieldDefinition.model_validate(
            {
                "id": uuid.uuid4(),
                "agent_id": "onboarding-bot",
                "name": name,
                "display_name": name.replace("_", " ").title(),
                "value_type": value_type,
                "status": "active",
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
        for name, value_type, _ in VALUES[:FIELDS]
    ]


def _timed(op: Any) -> list[float]:
    samples = []
    for _ in range(ROUNDS):
        start = perf_counter_ns()
        op()
        samples.append((perf_counter_ns() - start) / 1000)
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1], 1),
    }


def main() -> int:
    profile = _profile()
    definitions = _definitions()
    view = build_view(profile, "onboarding-bot", definitions, NOW)
    sizes = {
        "profile_json_bytes": len(profile.model_dump_json().encode()),
        "context_json_bytes": len(view.model_dump_json().encode()),
        "context_text_bytes": len(render_text(view).encode()),
    }
    sizes["text_vs_profile_ratio"] = round(
        sizes["context_text_bytes"] / sizes["profile_json_bytes"], 3
    )
    baseline = _timed(profile.model_dump_json)
    rendered = _timed(lambda: render_text(build_view(profile, "onboarding-bot", definitions, NOW)))
    timing = {"profile_json": _summary(baseline), "view_text": _summary(rendered)}
    timing["ratio_p50"] = round(timing["view_text"]["p50_us"] / timing["profile_json"]["p50_us"], 2)
    result = {"fields": FIELDS, "sizes": sizes, "timing": timing, "python": sys.version.split()[0]}
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print("\n--- the text view ---\n" + render_text(view))
    return 0


if __name__ == "__main__":
    sys.exit(main())
