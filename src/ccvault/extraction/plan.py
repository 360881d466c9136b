"""From proposals to stored requirements and suggested definitions (pure)."""

from __future__ import annotations

from ccvault.domain.models import ValueType
from ccvault.domain.scenarios import PlannedRequirement, Suggestion
from ccvault.domain.schema import FallbackAction, FieldDefinition, RequiredLevel, ReviewStatus
from ccvault.extraction.models import ProposedField, SuggestedConstraints

REVIEW_BELOW = 0.8
HARD_ABOVE = 0.7


def merge(first: ProposedField, other: ProposedField) -> ProposedField:
    """One proposal for a field the text names twice: the stricter reading wins (hard over
    soft, unconditional over conditional), bounds are combined, and a review either asks
    for stays."""
    levels = {first.required_level, other.required_level}
    level = (
        RequiredLevel.hard
        if RequiredLevel.hard in levels
        else (RequiredLevel.soft if RequiredLevel.soft in levels else None)
    )
    condition = (
        None
        if first.when_condition is None or other.when_condition is None
        else first.when_condition
    )
    constraints = (
        first.constraints.merged(other.constraints) if first.constraints else other.constraints
    )
    fallback = first.fallback_action if level is first.required_level else other.fallback_action
    best = first if first.confidence >= other.confidence else other
    return best.model_copy(
        update={
            "required_level": level,
            "fallback_action": fallback if level is not RequiredLevel.hard else None,
            "when_condition": condition,
            "constraints": constraints,
            "needs_review": first.needs_review or other.needs_review,
            "value_type": first.value_type or other.value_type,
            "display_name": first.display_name or other.display_name,
        }
    )


def _bounds(constraints: SuggestedConstraints | None) -> dict[str, float]:
    """The bounds that are set, by their DESIGN §8 names."""
    if constraints is None:
        return {}
    return {k: float(v) for k, v in constraints.model_dump().items() if v is not None}


def fitting(bounds: dict[str, float], value_type: ValueType) -> dict[str, float]:
    """The bounds a definition of this type can carry (DESIGN §8: `min`/`max` on numbers
    and integers, whole for integers; `min_age`/`max_age` on dates; lower <= upper).
    Others are left off the suggestion; the requirement's review still shows them."""
    if value_type in {ValueType.number, ValueType.integer}:
        kept = {k: v for k, v in bounds.items() if k in {"min", "max"}}
        if value_type is ValueType.integer and any(v != int(v) for v in kept.values()):
            return {}
    elif value_type is ValueType.date:
        kept = {k: v for k, v in bounds.items() if k in {"min_age", "max_age"}}
    else:
        return {}
    for low, high in (("min", "max"), ("min_age", "max_age")):
        if low in kept and high in kept and kept[low] > kept[high]:
            return {}
    return kept


def _holds(definition: FieldDefinition, bounds: dict[str, float]) -> bool:
    """Whether the agent's definition already sets every bound the text asks for."""
    return all(getattr(definition, name, None) == value for name, value in bounds.items())


def level_of(proposal: ProposedField) -> RequiredLevel:
    """The text's own wording decides when the extractor read it; else the confidence."""
    if proposal.required_level is not None:
        return proposal.required_level
    return RequiredLevel.hard if proposal.confidence > HARD_ABOVE else RequiredLevel.soft


def plan(
    proposals: list[ProposedField], definitions: list[FieldDefinition], step_ids: list[str]
) -> tuple[list[PlannedRequirement], list[Suggestion]]:
    """Requirements in proposal order (one per field and step, merged), and a suggestion
    per field name no definition covers. Steps the text does not have are read as
    scenario-wide. A requirement goes to review below 0.8 confidence, and whenever the
    extractor asks for it (conditions, documents, bounds an existing definition lacks)."""
    known_steps = set(step_ids)
    defined = {d.name: d for d in definitions}
    best: dict[tuple[str, str | None], ProposedField] = {}
    order: list[tuple[str, str | None]] = []
    for proposal in proposals:
        step = proposal.step_id if proposal.step_id in known_steps else None
        key = (proposal.field_name, step)
        if key not in best:
            order.append(key)
            best[key] = proposal
        else:
            best[key] = merge(best[key], proposal)
    requirements = []
    for position, key in enumerate(order, start=1):
        proposal = best[key]
        confidence = round(proposal.confidence, 3)
        bounds = _bounds(proposal.constraints)
        review = (
            confidence < REVIEW_BELOW
            or proposal.needs_review
            or proposal.when_condition is not None
            or (key[0] in defined and not _holds(defined[key[0]], bounds))
        )
        level = level_of(proposal)
        fallback = proposal.fallback_action or (
            FallbackAction.skip if level is RequiredLevel.soft else FallbackAction.ask
        )
        requirements.append(
            PlannedRequirement(
                field_name=key[0],
                step_id=key[1],
                required_level=level,
                collection_order=position * 10,
                confidence=confidence,
                needs_human_review=review,
                review_status=ReviewStatus.pending if review else ReviewStatus.none,
                fallback_action=fallback,
                when_condition=proposal.when_condition,
                bounds=bounds,
            )
        )
    suggestions: dict[str, Suggestion] = {}
    for key in order:
        proposal = best[key]
        if proposal.field_name in defined:
            continue
        seen = suggestions.get(proposal.field_name)
        if seen is not None:
            # The same new field for another step: its bounds join the suggestion's.
            more = fitting(_bounds(proposal.constraints), seen.value_type)
            extra = {k: v for k, v in more.items() if k not in seen.bounds}
            if extra and fitting({**seen.bounds, **extra}, seen.value_type):
                suggestions[proposal.field_name] = Suggestion(
                    seen.name,
                    seen.display_name,
                    seen.value_type,
                    seen.description,
                    seen.collection_prompt,
                    {**seen.bounds, **extra},
                )
            continue
        display = proposal.display_name or proposal.field_name.replace("_", " ").capitalize()
        value_type = proposal.value_type or ValueType.string
        suggestions[proposal.field_name] = Suggestion(
            name=proposal.field_name,
            display_name=display,
            value_type=value_type,
            description=proposal.reason or f"Suggested by requirement extraction: {display}.",
            collection_prompt=f"Could you tell me your {display.lower()}?",
            bounds=fitting(_bounds(proposal.constraints), value_type),
        )
    return requirements, list(suggestions.values())
