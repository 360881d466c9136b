"""missing_fields: which requirements apply, which are unmet and why, in what order, and
whether the scenario can proceed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ccvault.domain.missing import enforced, missing_fields
from ccvault.domain.schema import (
    CurrentValue,
    DefinitionStatus,
    FallbackAction,
    FieldDefinition,
    MissingReason,
    Origin,
    RequiredLevel,
    Requirement,
    ReviewStatus,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def req(field_name: str, **overrides: Any) -> Requirement:
    """A manual, hard, ask requirement unless told otherwise."""
    data: dict[str, Any] = {
        "id": uuid.uuid4(),
        "field_name": field_name,
        "required_level": RequiredLevel.hard,
        "fallback_action": FallbackAction.ask,
        "collection_order": 0,
        "needs_human_review": False,
        "review_status": ReviewStatus.none,
        "origin": Origin.manual,
        **overrides,
    }
    return Requirement.model_validate(data)


def definition(name: str, **overrides: Any) -> FieldDefinition:
    """An active, enabled string definition."""
    data: dict[str, Any] = {
        "id": uuid.uuid4(),
        "agent_id": "agent-1",
        "name": name,
        "status": DefinitionStatus.active,
        "display_name": name.replace("_", " ").title(),
        "value_type": "string",
        "created_at": NOW - timedelta(days=1),
        "updated_at": NOW - timedelta(days=1),
        **overrides,
    }
    return FieldDefinition.model_validate(data)


def value(
    name: str,
    val: Any = "x",
    *,
    status: str = "active",
    verified: bool = False,
    age: timedelta = timedelta(0),
) -> CurrentValue:
    return CurrentValue(
        name=name, value=val, status=status, verified=verified, collected_at=NOW - age
    )


def run(
    requirements: list[Requirement],
    definitions: Sequence[FieldDefinition] = (),
    values: Sequence[CurrentValue] = (),
) -> tuple[bool, list[tuple[str, MissingReason]]]:
    result = missing_fields(
        requirements,
        {d.name: d for d in definitions},
        {v.name: v for v in values},
        NOW,
    )
    return result.can_proceed, [(m.field_name, m.reason) for m in result.missing]


def test_absent_field_is_missing() -> None:
    assert run([req("email")]) == (False, [("email", MissingReason.missing)])


def test_active_field_satisfies_its_requirement() -> None:
    assert run([req("email")], values=[value("email")]) == (True, [])


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("expired", MissingReason.expired),
        ("orphaned", MissingReason.orphaned),
        ("superseded", MissingReason.missing),
    ],
)
def test_field_that_is_not_active_is_missing_with_its_reason(
    status: str, reason: MissingReason
) -> None:
    assert run([req("email")], values=[value("email", status=status)]) == (
        False,
        [("email", reason)],
    )


def test_value_older_than_freshness_is_stale() -> None:
    defs = [definition("balance", freshness_seconds=60)]
    old = value("balance", 10, age=timedelta(seconds=61))
    assert run([req("balance")], defs, [old]) == (False, [("balance", MissingReason.stale)])


def test_value_within_freshness_is_not_stale() -> None:
    defs = [definition("balance", freshness_seconds=60)]
    recent = value("balance", 10, age=timedelta(seconds=30))
    assert run([req("balance")], defs, [recent]) == (True, [])


def test_unverified_value_is_missing_when_the_definition_requires_verification() -> None:
    defs = [definition("id_number", required_verification=True)]
    assert run([req("id_number")], defs, [value("id_number")]) == (
        False,
        [("id_number", MissingReason.unverified)],
    )


def test_verified_value_satisfies_required_verification() -> None:
    defs = [definition("id_number", required_verification=True)]
    assert run([req("id_number")], defs, [value("id_number", verified=True)]) == (True, [])


def test_without_a_definition_freshness_and_verification_are_not_checked() -> None:
    old = value("balance", 10, age=timedelta(days=365))
    assert run([req("balance")], values=[old]) == (True, [])


def test_when_condition_true_makes_the_requirement_apply() -> None:
    reqs = [req("customs_id", when_condition='order_type == "international"')]
    values = [value("order_type", "international")]
    assert run(reqs, values=values) == (False, [("customs_id", MissingReason.missing)])


def test_when_condition_false_skips_the_requirement() -> None:
    reqs = [req("customs_id", when_condition='order_type == "international"')]
    assert run(reqs, values=[value("order_type", "domestic")]) == (True, [])


def test_when_condition_over_an_absent_field_skips_the_requirement() -> None:
    reqs = [req("customs_id", when_condition='order_type != "international"')]
    assert run(reqs) == (True, [])


def test_when_condition_does_not_read_an_expired_value() -> None:
    reqs = [req("customs_id", when_condition='order_type == "international"')]
    values = [value("order_type", "international", status="expired")]
    assert run(reqs, values=values) == (True, [])


def test_depends_on_present_field_makes_the_requirement_apply() -> None:
    reqs = [req("shipping_address", depends_on_fields=["order_id"])]
    assert run(reqs, values=[value("order_id", "o-1")]) == (
        False,
        [("shipping_address", MissingReason.missing)],
    )


def test_depends_on_absent_field_skips_the_requirement() -> None:
    reqs = [req("shipping_address", depends_on_fields=["order_id"])]
    assert run(reqs) == (True, [])


def test_depends_on_a_field_that_is_not_active_skips_the_requirement() -> None:
    reqs = [req("shipping_address", depends_on_fields=["order_id"])]
    assert run(reqs, values=[value("order_id", status="orphaned")]) == (True, [])


@pytest.mark.parametrize(
    ("level", "action", "can_proceed"),
    [
        (RequiredLevel.hard, FallbackAction.ask, False),
        (RequiredLevel.hard, FallbackAction.block, False),
        (RequiredLevel.hard, FallbackAction.skip, True),
        (RequiredLevel.hard, FallbackAction.extract, True),
        (RequiredLevel.soft, FallbackAction.ask, True),
        (RequiredLevel.soft, FallbackAction.block, True),
        (RequiredLevel.soft, FallbackAction.skip, True),
    ],
)
def test_can_proceed_is_false_only_for_an_unmet_hard_ask_or_block(
    level: RequiredLevel, action: FallbackAction, can_proceed: bool
) -> None:
    result = missing_fields(
        [req("email", required_level=level, fallback_action=action)], {}, {}, NOW
    )
    assert result.can_proceed is can_proceed
    assert [(m.required_level, m.fallback_action) for m in result.missing] == [(level, action)]


def test_met_hard_requirement_does_not_block() -> None:
    reqs = [req("email"), req("nickname", required_level=RequiredLevel.soft)]
    assert run(reqs, values=[value("email")]) == (True, [("nickname", MissingReason.missing)])


def test_missing_items_are_ordered_by_collection_order_then_name() -> None:
    reqs = [
        req("zip", collection_order=2),
        req("city", collection_order=2),
        req("email", collection_order=1),
        req("name", collection_order=0),
    ]
    _, missing = run(reqs)
    assert [name for name, _ in missing] == ["name", "email", "city", "zip"]


def test_missing_item_carries_the_definition_prompt_display_name_and_order() -> None:
    defs = [definition("email", display_name="E-mail", collection_prompt="What is your email?")]
    result = missing_fields([req("email", collection_order=3)], {d.name: d for d in defs}, {}, NOW)
    item = result.missing[0]
    assert item.display_name == "E-mail"
    assert item.collection_prompt == "What is your email?"
    assert item.collection_order == 3


def test_missing_item_without_definition_has_no_prompt() -> None:
    item = missing_fields([req("email")], {}, {}, NOW).missing[0]
    assert item.display_name is None
    assert item.collection_prompt is None


def test_rejected_requirement_is_not_enforced() -> None:
    reqs = [
        req(
            "email",
            origin=Origin.extracted,
            review_status=ReviewStatus.rejected,
            needs_human_review=True,
        )
    ]
    assert run(reqs) == (True, [])


@pytest.mark.parametrize("status", [ReviewStatus.pending, ReviewStatus.approved, ReviewStatus.none])
def test_extracted_requirement_is_enforced_unless_rejected(status: ReviewStatus) -> None:
    reqs = [req("email", origin=Origin.extracted, review_status=status, confidence=0.5)]
    assert run(reqs) == (False, [("email", MissingReason.missing)])


def test_manual_requirement_hides_an_extracted_one_for_the_same_field_and_step() -> None:
    reqs = [
        req(
            "email",
            step_id="s1",
            origin=Origin.extracted,
            required_level=RequiredLevel.hard,
            fallback_action=FallbackAction.block,
        ),
        req(
            "email",
            step_id="s1",
            origin=Origin.manual,
            required_level=RequiredLevel.soft,
            fallback_action=FallbackAction.skip,
        ),
    ]
    result = missing_fields(reqs, {}, {}, NOW)
    assert result.can_proceed is True
    assert [(m.field_name, m.required_level) for m in result.missing] == [
        ("email", RequiredLevel.soft)
    ]
    assert [r.origin for r in enforced(reqs)] == [Origin.manual]


def test_manual_requirement_does_not_hide_an_extracted_one_for_another_step() -> None:
    reqs = [
        req(
            "email",
            step_id="s2",
            origin=Origin.extracted,
            fallback_action=FallbackAction.block,
        ),
        req(
            "email",
            step_id="s1",
            origin=Origin.manual,
            required_level=RequiredLevel.soft,
            fallback_action=FallbackAction.skip,
        ),
    ]
    result = missing_fields(reqs, {}, {}, NOW)
    assert result.can_proceed is False
    assert RequiredLevel.hard in {m.required_level for m in result.missing}


def test_same_field_extracted_twice_is_asked_once_with_strictest_level_and_earliest_order() -> None:
    reqs = [
        req("email", origin=Origin.extracted, rule_id="r1", required_level=RequiredLevel.soft),
        req("email", origin=Origin.extracted, rule_id="r2", collection_order=5),
        req("email", origin=Origin.extracted, rule_id="r3", collection_order=2),
    ]
    result = missing_fields(reqs, {}, {}, NOW)
    assert [(m.field_name, m.required_level, m.collection_order) for m in result.missing] == [
        ("email", RequiredLevel.hard, 2)
    ]


def test_field_required_scenario_wide_and_by_a_step_is_listed_once() -> None:
    # missing-fields answers "what to ask next": one entry per field, strictest level and
    # earliest position among the requirements that apply.
    reqs = [
        req(
            "email",
            collection_order=3,
            required_level=RequiredLevel.soft,
            fallback_action=FallbackAction.skip,
        ),
        req("email", step_id="s1", collection_order=1),
        req("email", step_id="s2", collection_order=2),
    ]
    result = missing_fields(reqs, {}, {}, NOW)
    assert result.can_proceed is False
    assert [(m.field_name, m.required_level, m.collection_order) for m in result.missing] == [
        ("email", RequiredLevel.hard, 1)
    ]


def test_no_requirements_can_proceed_with_nothing_missing() -> None:
    assert run([]) == (True, [])


# -- context and value constraints --------------------------------------------------------


def test_context_is_read_by_conditions_and_the_profile_wins_on_a_name_in_both() -> None:
    reqs = [req("tax_id", when_condition='country == "PT" and amount > 10')]
    context = {"country": "PT", "amount": 11}
    assert missing_fields(reqs, {}, {}, NOW, context).missing[0].field_name == "tax_id"
    profile = {"country": value("country", "DE")}
    assert missing_fields(reqs, {}, profile, NOW, context).missing == []
    expired = {"country": value("country", "DE", status="expired")}
    assert len(missing_fields(reqs, {}, expired, NOW, context).missing) == 1


def test_context_never_satisfies_a_requirement_or_a_dependency() -> None:
    reqs = [req("email"), req("newsletter", depends_on_fields=["email"])]
    answer = missing_fields(reqs, {}, {}, NOW, {"email": "a@b.co", "newsletter": True})
    assert [(m.field_name, m.reason) for m in answer.missing] == [("email", MissingReason.missing)]


def test_a_value_out_of_range_is_missing_with_reason_range_before_unverified() -> None:
    defs = [
        definition("amount", value_type="number", max=100, required_verification=True),
        definition("birth_date", value_type="date", min_age=18),
    ]
    values = [value("amount", 150), value("birth_date", "2010-01-01")]
    assert run([req("amount"), req("birth_date")], defs, values)[1] == [
        ("amount", MissingReason.range),
        ("birth_date", MissingReason.range),
    ]
    within = [value("amount", 100, verified=True), value("birth_date", "2007-06-01")]
    assert run([req("amount"), req("birth_date")], defs, within) == (True, [])
