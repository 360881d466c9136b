"""Missing-field computation: which requirements apply, which are unmet, and whether the
scenario can proceed. Pure: the store hands in requirements, definitions and values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ccvault.domain.conditions import evaluate_condition
from ccvault.domain.schema import (
    CurrentValue,
    DefinitionHints,
    FallbackAction,
    FieldDefinition,
    MissingField,
    MissingFields,
    MissingReason,
    Origin,
    RequiredLevel,
    Requirement,
    ReviewStatus,
)
from ccvault.domain.validation import range_problem

BLOCKING = {FallbackAction.block, FallbackAction.ask}


def enforced(requirements: Iterable[Requirement]) -> list[Requirement]:
    """Drop rejected requirements and extracted ones a manual one hides (same field and
    step)."""
    reqs = [r for r in requirements if r.review_status is not ReviewStatus.rejected]
    manual = {(r.field_name, r.step_id) for r in reqs if r.origin is Origin.manual}
    kept = [r for r in reqs if r.origin is Origin.manual or (r.field_name, r.step_id) not in manual]
    # A field required twice (by two rules, or scenario-wide and by the step) is asked
    # once, with the strictest level and the earliest position.
    best: dict[str, Requirement] = {}
    for r in kept:
        key = r.field_name
        seen = best.get(key)
        if seen is None or (r.required_level, r.collection_order) < (
            seen.required_level,
            seen.collection_order,
        ):
            best[key] = r
    return list(best.values())


def _reason(
    current: CurrentValue | None,
    definition: FieldDefinition | DefinitionHints | None,
    now: datetime,
) -> MissingReason | None:
    if current is None:
        return MissingReason.missing
    if current.status == "expired":
        return MissingReason.expired
    if current.status == "orphaned":
        return MissingReason.orphaned
    if current.status != "active":
        return MissingReason.missing
    if definition is not None:
        # A value the definition's bounds refuse (kept in warn mode, or written before the
        # bounds were set) cannot be used, whatever its age or verification: ask again.
        rules = definition.rules
        if rules.has_range and range_problem(current.value, rules, now.astimezone(UTC).date()):
            return MissingReason.range
        fresh = definition.freshness_seconds
        if fresh is not None and current.collected_at < now - timedelta(seconds=fresh):
            return MissingReason.stale
        if definition.required_verification and not current.verified:
            return MissingReason.unverified
    return None


def missing_fields(
    requirements: Iterable[Requirement],
    definitions: Mapping[str, FieldDefinition] | Mapping[str, DefinitionHints],
    current: Mapping[str, CurrentValue],
    now: datetime,
    context: Mapping[str, Any] | None = None,
) -> MissingFields:
    """Unmet requirements in collection order, and whether a blocking one is among them.

    `definitions` holds the agent's enabled, active definitions by name; `current` the
    profile's current version of each field (effective status already applied); `context`
    facts of the conversation that `when_condition` may read beside the profile's active
    values (a profile value wins on a name in both). Context never satisfies a
    requirement or a `depends_on_fields`: those are about what the profile holds.
    """
    live = {name: c.value for name, c in current.items() if c.status == "active"}
    visible = {**context, **live} if context else live
    missing: list[MissingField] = []
    for req in enforced(requirements):
        if any(dep not in live for dep in req.depends_on_fields):
            continue
        if req.when_condition is not None and not evaluate_condition(req.when_condition, visible):
            continue
        definition = definitions.get(req.field_name)
        reason = _reason(current.get(req.field_name), definition, now)
        if reason is None:
            continue
        missing.append(
            MissingField(
                field_name=req.field_name,
                required_level=req.required_level,
                fallback_action=req.fallback_action,
                reason=reason,
                collection_prompt=definition.collection_prompt if definition else None,
                display_name=definition.display_name if definition else None,
                collection_order=req.collection_order,
            )
        )
    missing.sort(key=lambda m: (m.collection_order, m.field_name))
    can_proceed = not any(
        m.required_level is RequiredLevel.hard and m.fallback_action in BLOCKING for m in missing
    )
    return MissingFields(can_proceed=can_proceed, missing=missing)
