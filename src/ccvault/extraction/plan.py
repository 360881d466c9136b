"""From proposals to stored requirements and suggested definitions (pure)."""

from __future__ import annotations

from ccvault.domain.models import ValueType
from ccvault.domain.scenarios import PlannedRequirement, Suggestion
from ccvault.domain.schema import FieldDefinition, RequiredLevel, ReviewStatus
from ccvault.extraction.models import ProposedField

REVIEW_BELOW = 0.8
HARD_ABOVE = 0.7


def plan(
    proposals: list[ProposedField], definitions: list[FieldDefinition], step_ids: list[str]
) -> tuple[list[PlannedRequirement], list[Suggestion]]:
    """Requirements in proposal order (the best confidence per field and step), and a
    suggestion per field name no definition covers. Steps the text does not have are
    read as scenario-wide."""
    known_steps = set(step_ids)
    best: dict[tuple[str, str | None], ProposedField] = {}
    order: list[tuple[str, str | None]] = []
    for proposal in proposals:
        step = proposal.step_id if proposal.step_id in known_steps else None
        key = (proposal.field_name, step)
        if key not in best:
            order.append(key)
            best[key] = proposal
        elif proposal.confidence > best[key].confidence:
            best[key] = proposal
    requirements = []
    for position, key in enumerate(order, start=1):
        confidence = round(best[key].confidence, 3)
        review = confidence < REVIEW_BELOW
        requirements.append(
            PlannedRequirement(
                field_name=key[0],
                step_id=key[1],
                required_level=RequiredLevel.hard
                if confidence > HARD_ABOVE
                else RequiredLevel.soft,
                collection_order=position * 10,
                confidence=confidence,
                needs_human_review=review,
                review_status=ReviewStatus.pending if review else ReviewStatus.none,
            )
        )
    defined = {d.name for d in definitions}
    suggestions: dict[str, Suggestion] = {}
    for key in order:
        proposal = best[key]
        if proposal.field_name in defined or proposal.field_name in suggestions:
            continue
        display = proposal.display_name or proposal.field_name.replace("_", " ").capitalize()
        suggestions[proposal.field_name] = Suggestion(
            name=proposal.field_name,
            display_name=display,
            value_type=proposal.value_type or ValueType.string,
            description=proposal.reason or f"Suggested by requirement extraction: {display}.",
            collection_prompt=f"Could you tell me your {display.lower()}?",
        )
    return requirements, list(suggestions.values())
