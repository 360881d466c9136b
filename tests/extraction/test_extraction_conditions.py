"""The offline extractor reads conditions, not keywords (issue 16): names beyond its
vocabulary, synonyms kept to their own concept, hard/soft wording, age and amount bounds,
conditional clauses and documents, as plan() will store them."""

from __future__ import annotations

import pytest

from ccvault.domain.conditions import evaluate_condition
from ccvault.domain.models import ValueType
from ccvault.domain.scenarios import PlannedRequirement, Suggestion
from ccvault.domain.schema import FallbackAction, RequiredLevel, ReviewStatus
from ccvault.extraction.heuristic import DERIVED, HeuristicExtractor
from ccvault.extraction.models import SourceKind, SourceText, TextPart
from ccvault.extraction.plan import REVIEW_BELOW, fitting, plan


async def planned(text: str) -> tuple[dict[str, PlannedRequirement], dict[str, Suggestion]]:
    """What a run stores for one text, by field name."""
    source = SourceText(SourceKind.scenario, "s", [TextPart(text)])
    proposals = await HeuristicExtractor().extract(source, [])
    requirements, suggestions = plan(proposals, [], [])
    return {r.field_name: r for r in requirements}, {s.name: s for s in suggestions}


# -- the three unsafe cases of the issue -------------------------------------------------


async def test_over_18_is_a_min_age_on_the_date_of_birth_and_goes_to_review() -> None:
    found, suggested = await planned("The customer must be over 18.")
    dob = found["date_of_birth"]
    assert dob.required_level is RequiredLevel.hard
    assert dob.bounds == {"min_age": 18}
    assert suggested["date_of_birth"].bounds == {"min_age": 18}


async def test_a_document_above_an_amount_is_conditional_and_reviewed() -> None:
    found, _ = await planned("For transfers above 1000 EUR we need proof of address.")
    assert list(found) == ["proof_of_address"]
    proof = found["proof_of_address"]
    assert proof.when_condition == "transfer_amount > 1000"
    assert proof.required_level is RequiredLevel.hard
    assert proof.needs_human_review and proof.review_status is ReviewStatus.pending
    assert evaluate_condition(proof.when_condition, {"transfer_amount": 1500})
    assert not evaluate_condition(proof.when_condition, {"transfer_amount": 999})


async def test_must_tell_us_makes_every_item_hard_and_a_tax_id_is_not_a_national_id() -> None:
    found, _ = await planned(
        "The customer must tell us their income, employment status and IBAN, and the tax ID."
    )
    assert set(found) == {"annual_income", "employment_status", "bank_account", "tax_id"}
    assert {r.required_level for r in found.values()} == {RequiredLevel.hard}
    assert "national_id" not in found


# -- one of each kind ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bounds"),
    [
        ("Applicants must be at least 21.", {"min_age": 21}),
        ("Life cover is only offered to applicants under 70.", {"max_age": 69}),
        ("Donors must be between 18 and 65.", {"min_age": 18, "max_age": 65}),
        (
            "The policy is available to people aged 18 to 64.",
            {"min_age": 18, "max_age": 64},
        ),
        ("Customers must be 18 or older.", {"min_age": 18}),
    ],
)
async def test_age_limits_become_min_and_max_age(text: str, bounds: dict[str, float]) -> None:
    found, _ = await planned(text)
    assert found["date_of_birth"].bounds == bounds


async def test_who_a_rule_is_about_is_not_an_age_limit() -> None:
    found, _ = await planned("Customers under 18 must give their date of birth.")
    assert found["date_of_birth"].bounds == {}
    found, _ = await planned("Travellers under 26 get the youth fare; record the date of birth.")
    assert found["date_of_birth"].bounds == {}


async def test_income_above_an_amount_is_a_min_on_the_income() -> None:
    found, suggested = await planned("Loans are only for customers with an income above 2000 EUR.")
    assert found["annual_income"].bounds == {"min": 2000}
    assert suggested["annual_income"].bounds == {"min": 2000}


async def test_a_count_threshold_is_a_condition_over_that_count() -> None:
    found, _ = await planned("For event bookings above 50 guests we need the company name.")
    assert found["company_name"].when_condition == "number_of_guests > 50"


async def test_if_the_customer_is_a_business_is_a_condition_over_the_customer_type() -> None:
    found, _ = await planned(
        "If the customer is a business, we need the VAT number. Ask everyone for the email."
    )
    vat = found["vat_number"]
    assert vat.when_condition == 'customer_type == "business"'
    assert vat.needs_human_review
    assert found["email"].when_condition is None
    assert evaluate_condition(vat.when_condition, {"customer_type": "business"})
    assert not evaluate_condition(vat.when_condition, {"customer_type": "private"})


@pytest.mark.parametrize(
    "text",
    [
        "Ideally ask for the marital status.",
        "If possible, get the marital status.",
        "The marital status is optional.",
        "Collect the email and, if possible, the marital status.",
    ],
)
async def test_optional_wording_is_soft_and_skipped(text: str) -> None:
    found, _ = await planned(text)
    status = found["marital_status"]
    assert status.required_level is RequiredLevel.soft
    assert status.fallback_action is FallbackAction.skip
    if "email" in found:
        assert found["email"].required_level is RequiredLevel.hard


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("We need a copy of the passport.", "passport_copy"),
        ("Ask for proof of income.", "proof_of_income"),
        ("A police report is required.", "police_report"),
    ],
)
async def test_documents_are_fields_naming_the_document_and_reviewed(text: str, name: str) -> None:
    found, _ = await planned(text)
    assert found[name].needs_human_review
    assert found[name].required_level is RequiredLevel.hard


# -- names beyond the vocabulary ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Record the passport number.", ["passport_number"]),
        ("Ask for the beneficiary IBAN.", ["beneficiary_iban"]),
        (
            "Ask for the number of guests and the order number.",
            ["number_of_guests", "order_number"],
        ),
        (
            "We need the property value and the preferred language.",
            ["property_value", "preferred_language"],
        ),
        ("Collect the VAT number.", ["vat_number"]),
        ("Ask for the billing address and the home address.", ["billing_address", "address"]),
        ("Record the emergency contact's phone number.", ["emergency_contact_phone_number"]),
    ],
)
async def test_names_come_from_the_texts_own_noun_phrases(text: str, names: list[str]) -> None:
    found, _ = await planned(text)
    assert list(found) == names


async def test_a_derived_name_is_a_suggestion_below_the_review_threshold() -> None:
    found, suggested = await planned("Ask for the frequent flyer number.")
    number = found["frequent_flyer_number"]
    assert number.confidence == DERIVED < REVIEW_BELOW
    assert number.needs_human_review
    assert suggested["frequent_flyer_number"].display_name == "Frequent flyer number"


async def test_what_the_text_says_not_to_ask_for_is_not_needed() -> None:
    found, _ = await planned("Do not ask for a phone number. Never ask for the date of birth.")
    assert found == {}


@pytest.mark.parametrize(
    ("bounds", "value_type", "kept"),
    [
        ({"min": 2000}, ValueType.number, {"min": 2000}),
        ({"min": 2.5}, ValueType.integer, {}),
        ({"min_age": 18}, ValueType.date, {"min_age": 18}),
        ({"min_age": 18}, ValueType.string, {}),
        ({"min": 10, "max": 5}, ValueType.number, {}),
        ({"min": 10, "min_age": 18}, ValueType.integer, {"min": 10}),
    ],
)
def test_a_suggestion_carries_only_bounds_its_type_can_hold(
    bounds: dict[str, float], value_type: ValueType, kept: dict[str, float]
) -> None:
    assert fitting(bounds, value_type) == kept


async def test_a_bound_on_a_new_field_makes_it_a_number() -> None:
    _, suggested = await planned(
        "Credit is only for companies with annual revenue above 1000000 EUR."
    )
    assert suggested["annual_revenue"].value_type is ValueType.number
    assert suggested["annual_revenue"].bounds == {"min": 1000000}
