"""`when_condition`: a small safe language over field values, refused at parse time when it
could do anything but compare values, and false whenever it reads an absent field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ccvault.domain.conditions import (
    MAX_LENGTH,
    condition_fields,
    evaluate_condition,
    parse_condition,
)

SAFE = [
    'order_type == "international"',
    "amount > 1000 and not vip",
    'country in ["FR", "DE"]',
    "country not in ('US',)",
    "discount != None",
    "-balance < 5",
    "1 < amount <= 10",
    "vip or (amount >= 500 and tier == 'gold')",
    "is_active == True",
]

UNSAFE = [
    "__import__('os')",
    "__import__('os').system('true')",
    "a.b",
    "x = 1",
    "x[0]",
    "f(x)",
    "len(name)",
    "lambda: 1",
    "amount + 1 > 3",
    '"a" * 10',
    "[c for c in name]",
    "x if y else z",
    "{1: 2}",
    "{1, 2}",
    'x == b"bytes"',
    "Order == 1",
    "x == 1; y == 2",
    "(x := 1)",
    "",
    "x ==",
]


@pytest.mark.parametrize("text", SAFE)
def test_safe_condition_parses(text: str) -> None:
    parse_condition(text)


@pytest.mark.parametrize("text", UNSAFE)
def test_unsafe_or_malformed_condition_is_refused(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_condition(text)
    assert str(caught.value)


def test_condition_longer_than_the_limit_is_refused() -> None:
    text = " or ".join(f"f{i} == {i}" for i in range(200))
    assert len(text) > MAX_LENGTH
    with pytest.raises(ValueError, match="limited"):
        parse_condition(text)


def test_evaluating_an_unsafe_condition_raises_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"__import__('os').system('touch {marker}')"
    with pytest.raises(ValueError):
        evaluate_condition(text, {})
    assert not marker.exists()


def test_condition_fields_lists_the_field_names_it_reads() -> None:
    text = 'vip or (amount >= 500 and country in ["FR"])'
    assert condition_fields(text) == {"vip", "amount", "country"}


def test_condition_fields_of_a_literal_only_condition_is_empty() -> None:
    assert condition_fields("1 == 1") == set()


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ('order_type == "international"', {"order_type": "international"}, True),
        ('order_type == "international"', {"order_type": "domestic"}, False),
        ("amount > 1000 and not vip", {"amount": 1500, "vip": False}, True),
        ("amount > 1000 and not vip", {"amount": 1500, "vip": True}, False),
        ('country in ["FR", "DE"]', {"country": "DE"}, True),
        ('country in ["FR", "DE"]', {"country": "US"}, False),
        ("country not in ('US',)", {"country": "FR"}, True),
        ("1 < amount <= 10", {"amount": 10}, True),
        ("1 < amount <= 10", {"amount": 11}, False),
        ("-balance < 5", {"balance": -10}, False),
        ("vip or amount >= 500", {"vip": False, "amount": 500}, True),
        ("discount != None", {"discount": 0}, True),
    ],
)
def test_condition_evaluates_over_field_values(
    text: str, values: dict[str, Any], expected: bool
) -> None:
    assert evaluate_condition(text, values) is expected


def test_condition_over_an_absent_field_is_false() -> None:
    assert evaluate_condition('order_type == "international"', {}) is False
    assert evaluate_condition('order_type != "international"', {}) is False
    assert evaluate_condition("not vip", {"amount": 1}) is False


def test_or_condition_reading_an_absent_field_is_false_even_if_the_other_side_holds() -> None:
    assert evaluate_condition("vip or amount > 10", {"amount": 50}) is False


def test_comparing_incompatible_types_is_false_not_an_error() -> None:
    assert evaluate_condition("amount > 1000", {"amount": "a lot"}) is False
    assert evaluate_condition("amount < 1000", {"amount": {"nested": 1}}) is False


def test_condition_compares_json_values_structurally() -> None:
    assert evaluate_condition('tags == ["a", "b"]', {"tags": ["a", "b"]}) is True
    assert evaluate_condition('"a" in tags', {"tags": ["a", "b"]}) is True
