"""Value validation: each type accepts and normalizes its values, refuses others with a
stable code, and a definition's regex and allowed values are checked after the type."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from ccvault.domain.models import ValueType
from ccvault.domain.schema import DefinitionBody
from ccvault.domain.validation import Rules, check_value

# (type, value as written, value as stored)
ACCEPTED: list[tuple[ValueType, Any, Any]] = [
    (ValueType.string, "hello", "hello"),
    (ValueType.string, "", ""),
    (ValueType.string, "  spaced ünïcode  ", "  spaced ünïcode  "),
    (ValueType.email, "Jane.Doe@Example.COM", "Jane.Doe@example.com"),
    (ValueType.email, "a@b.co", "a@b.co"),
    (ValueType.email, "user+tag@Sub.Example.org", "user+tag@sub.example.org"),
    (ValueType.phone, "+1 415 555 2671", "+14155552671"),
    (ValueType.phone, "+44 20 7946 0958", "+442079460958"),
    (ValueType.phone, "+33 1 42 68 53 00", "+33142685300"),
    (ValueType.phone, "+1-415-555-2671", "+14155552671"),
    (ValueType.date, "2024-02-29", "2024-02-29"),
    (ValueType.date, "1999-12-31", "1999-12-31"),
    (ValueType.date, " 2024-01-05 ", "2024-01-05"),
    (ValueType.datetime, "2024-01-15T10:30:00Z", "2024-01-15T10:30:00Z"),
    (ValueType.datetime, "2024-01-15T12:30:00+02:00", "2024-01-15T10:30:00Z"),
    (ValueType.datetime, "2024-01-15T10:30:00", "2024-01-15T10:30:00Z"),
    (ValueType.datetime, "2024-01-15T10:30", "2024-01-15T10:30:00Z"),
    (ValueType.datetime, "2024-01-15 10:30:00.123456-05:00", "2024-01-15T15:30:00.123456Z"),
    (ValueType.number, "42", 42),
    (ValueType.number, "3.14", 3.14),
    (ValueType.number, " -7 ", -7),
    (ValueType.number, "1e3", 1000.0),
    (ValueType.number, ".5", 0.5),
    (ValueType.number, 12, 12),
    (ValueType.number, 2.5, 2.5),
    (ValueType.integer, "42", 42),
    (ValueType.integer, 7, 7),
    (ValueType.integer, 3.0, 3),
    (ValueType.integer, "1e3", 1000),
    (ValueType.integer, "-12", -12),
    (ValueType.boolean, True, True),
    (ValueType.boolean, False, False),
    (ValueType.boolean, "true", True),
    (ValueType.boolean, "FALSE", False),
    (ValueType.boolean, "yes", True),
    (ValueType.boolean, "No", False),
    (ValueType.boolean, "1", True),
    (ValueType.boolean, "0", False),
    (ValueType.boolean, 1, True),
    (ValueType.boolean, 0, False),
    (ValueType.url, "https://example.com/path?q=1", "https://example.com/path?q=1"),
    (ValueType.url, "http://localhost:8080", "http://localhost:8080"),
    (ValueType.url, "  https://a.example  ", "https://a.example"),
    (ValueType.json, '{"a": 1}', {"a": 1}),
    (ValueType.json, "[1, 2]", [1, 2]),
    (ValueType.json, '"text"', "text"),
    (ValueType.json, {"nested": {"b": [True]}}, {"nested": {"b": [True]}}),
    (ValueType.json, [1, "two"], [1, "two"]),
]

# (type, value as written, expected code)
REJECTED: list[tuple[ValueType, Any, str]] = [
    (ValueType.string, 5, "type_error"),
    (ValueType.string, True, "type_error"),
    (ValueType.string, {"a": 1}, "type_error"),
    (ValueType.string, ["x"], "type_error"),
    (ValueType.email, "no-at-sign", "format_error"),
    (ValueType.email, "a@", "format_error"),
    (ValueType.email, "@example.com", "format_error"),
    (ValueType.email, "a b@example.com", "format_error"),
    (ValueType.email, 42, "type_error"),
    (ValueType.phone, "+123456", "format_error"),
    (ValueType.phone, "4155552671", "format_error"),
    (ValueType.phone, "not a phone", "format_error"),
    (ValueType.phone, 14155552671, "type_error"),
    (ValueType.date, "2024-02-30", "format_error"),
    (ValueType.date, "2023-02-29", "format_error"),
    (ValueType.date, "2024-01-15T10:00:00", "format_error"),
    (ValueType.date, "2024-01-15T10:00:00Z", "format_error"),
    (ValueType.date, "15/01/2024", "format_error"),
    (ValueType.date, "2024-1-5", "format_error"),
    (ValueType.date, 20240115, "type_error"),
    (ValueType.datetime, "2024-01-15", "format_error"),
    (ValueType.datetime, "2024-02-30T10:00:00Z", "format_error"),
    (ValueType.datetime, "2024-01-15T25:00:00", "format_error"),
    (ValueType.datetime, "yesterday", "format_error"),
    (ValueType.datetime, 1705314600, "type_error"),
    (ValueType.number, "true", "format_error"),
    (ValueType.number, True, "type_error"),
    (ValueType.number, False, "type_error"),
    (ValueType.number, "1,000", "format_error"),
    (ValueType.number, "", "format_error"),
    (ValueType.number, "NaN", "format_error"),
    (ValueType.number, "Infinity", "format_error"),
    (ValueType.number, "1e999", "format_error"),
    (ValueType.number, float("inf"), "format_error"),
    (ValueType.number, [1], "type_error"),
    (ValueType.integer, 2.5, "format_error"),
    (ValueType.integer, "2.5", "format_error"),
    (ValueType.integer, "abc", "format_error"),
    (ValueType.integer, True, "type_error"),
    (ValueType.boolean, "maybe", "format_error"),
    (ValueType.boolean, 2, "format_error"),
    (ValueType.boolean, -1, "format_error"),
    (ValueType.boolean, "", "format_error"),
    (ValueType.boolean, {"a": 1}, "format_error"),
    (ValueType.url, "ftp://example.com/file", "format_error"),
    (ValueType.url, "example.com", "format_error"),
    (ValueType.url, "http://", "format_error"),
    (ValueType.url, "https://example.com/a b", "format_error"),
    (ValueType.url, 42, "type_error"),
    (ValueType.json, "{invalid json}", "format_error"),
    (ValueType.json, "[1,", "format_error"),
    (ValueType.json, "hello", "format_error"),
]


def _id(case: tuple[ValueType, Any, Any]) -> str:
    return f"{case[0].value}-{case[1]!r}"[:60]


def test_every_type_has_at_least_three_accepted_and_three_rejected_cases() -> None:
    accepted = Counter(t for t, _, _ in ACCEPTED)
    rejected = Counter(t for t, _, _ in REJECTED)
    for value_type in ValueType:
        assert accepted[value_type] >= 3, value_type
        assert rejected[value_type] >= 3, value_type


@pytest.mark.parametrize("case", ACCEPTED, ids=_id)
def test_accepted_value_is_stored_in_normalized_form(case: tuple[ValueType, Any, Any]) -> None:
    value_type, value, normalized = case
    checked = check_value(value, Rules(value_type))
    assert checked.problems == ()
    assert checked.value == normalized
    assert type(checked.value) is type(normalized)


@pytest.mark.parametrize("case", REJECTED, ids=_id)
def test_rejected_value_reports_one_problem_with_its_code(case: tuple[ValueType, Any, str]) -> None:
    value_type, value, code = case
    checked = check_value(value, Rules(value_type))
    assert [p.code for p in checked.problems] == [code]
    problem = checked.problems[0]
    assert problem.loc == ("body", "value")
    assert problem.msg
    # A refused value is handed back as written (warn mode stores it unchanged).
    assert checked.value is value


@pytest.mark.parametrize(
    ("value_type", "value"),
    [
        # Not JSON per RFC 8259, and PostgreSQL's jsonb refuses them: storing would fail.
        (ValueType.json, "NaN"),
        (ValueType.json, "Infinity"),
        (ValueType.json, '{"amount": -Infinity}'),
        # Control characters are not part of any URL (RFC 3986); urlsplit silently drops
        # them while parsing, which must not let them through into the stored value.
        (ValueType.url, "https://exa\nmple.com"),
        (ValueType.url, "https://example.com/\tpath"),
    ],
    ids=["json-NaN", "json-Infinity", "json-nested-Infinity", "url-newline", "url-tab"],
)
def test_value_a_careful_reader_would_not_call_its_type_is_a_format_error(
    value_type: ValueType, value: str
) -> None:
    checked = check_value(value, Rules(value_type))
    assert [p.code for p in checked.problems] == ["format_error"]


@pytest.mark.parametrize("value_type", [ValueType.number, ValueType.integer])
def test_numeric_string_with_4401_digits_is_normalized_not_raised(value_type: ValueType) -> None:
    # Python refuses int() on more than 4300 digits; check_value must still answer (an
    # exception here is a 500 on the write path), and the value is the number 1.
    checked = check_value("0" * 4400 + "1", Rules(value_type))
    assert checked.problems == ()
    assert checked.value == 1


def test_json_text_with_a_5000_digit_integer_gets_an_answer_not_an_exception() -> None:
    checked = check_value("1" * 5000, Rules(ValueType.json))
    assert [p.code for p in checked.problems] in ([], ["format_error"])


def test_deeply_nested_invalid_json_text_is_a_format_error() -> None:
    checked = check_value("[" * 100_000, Rules(ValueType.json))
    assert [p.code for p in checked.problems] == ["format_error"]


def test_number_json_value_stays_a_number_not_a_string() -> None:
    checked = check_value(10, Rules(ValueType.number))
    assert checked.value == 10
    assert isinstance(checked.value, int)


def test_regex_must_match_the_whole_value() -> None:
    rules = Rules(ValueType.string, validation_regex=r"[A-Z]{2}\d{3}")
    assert check_value("AB123", rules).problems == ()
    for partial in ("xAB123", "AB1234", "AB123 ", "ab123"):
        assert [p.code for p in check_value(partial, rules).problems] == ["regex_error"]


def test_regex_alternation_still_has_to_cover_the_whole_value() -> None:
    rules = Rules(ValueType.string, validation_regex="abc|abcd")
    assert check_value("abcd", rules).problems == ()
    assert [p.code for p in check_value("abcde", rules).problems] == ["regex_error"]


def test_regex_is_checked_against_the_normalized_value() -> None:
    rules = Rules(ValueType.email, validation_regex=r".+@example\.com")
    checked = check_value("Jane@EXAMPLE.com", rules)
    assert checked.problems == ()
    assert checked.value == "Jane@example.com"


def test_regex_applies_to_the_text_of_a_number() -> None:
    rules = Rules(ValueType.integer, validation_regex=r"\d{3}")
    assert check_value("123", rules).problems == ()
    assert [p.code for p in check_value(12, rules).problems] == ["regex_error"]


def test_catastrophic_regex_on_50kb_returns_regex_error() -> None:
    rules = Rules(ValueType.string, validation_regex="(a+)+$")
    checked = check_value("a" * 50_000 + "!", rules)
    assert [p.code for p in checked.problems] == ["regex_error"]


def test_invalid_pattern_at_check_time_is_a_config_error() -> None:
    checked = check_value("x", Rules(ValueType.string, validation_regex="("))
    assert [p.code for p in checked.problems] == ["config_error"]


def test_type_failure_stops_before_regex_and_allowed_values() -> None:
    rules = Rules(ValueType.integer, validation_regex=r"\d+", allowed_values=[1])
    checked = check_value("abc", rules)
    assert [p.code for p in checked.problems] == ["format_error"]


def test_allowed_values_accept_a_member_after_normalization() -> None:
    rules = Rules(ValueType.number, allowed_values=[1, 2, 3])
    checked = check_value("2", rules)
    assert checked.problems == ()
    assert checked.value == 2


def test_value_outside_allowed_values_is_an_allowed_values_error() -> None:
    rules = Rules(ValueType.string, allowed_values=["gold", "silver"])
    checked = check_value("bronze", rules)
    assert [p.code for p in checked.problems] == ["allowed_values_error"]
    assert checked.value == "bronze"


def test_allowed_values_are_case_sensitive_strings() -> None:
    rules = Rules(ValueType.string, allowed_values=["gold"])
    assert [p.code for p in check_value("Gold", rules).problems] == ["allowed_values_error"]


def test_allowed_values_do_not_confuse_booleans_with_numbers() -> None:
    # Python's True == 1 must not let `true` into a JSON field whose only allowed value is 1.
    rules = Rules(ValueType.json, allowed_values=[1, 2])
    assert [p.code for p in check_value(True, rules).problems] == ["allowed_values_error"]
    rules = Rules(ValueType.json, allowed_values=[True])
    assert [p.code for p in check_value(1, rules).problems] == ["allowed_values_error"]


def test_regex_failure_is_reported_before_allowed_values() -> None:
    rules = Rules(ValueType.string, validation_regex="[a-z]+", allowed_values=["abc"])
    assert [p.code for p in check_value("ABC", rules).problems] == ["regex_error"]


def _definition(**body: Any) -> DefinitionBody:
    return DefinitionBody.model_validate({"display_name": "Field", **body})


def test_definition_pattern_longer_than_the_cap_is_refused_by_the_schema() -> None:
    # The pattern itself is compiled when the definition is stored (off the event loop):
    # tests/api/test_hostile_patterns.py checks the 422 config_error for a bad one.
    _definition(value_type="string", validation_regex="a" * 1000)
    with pytest.raises(ValidationError) as caught:
        _definition(value_type="string", validation_regex="a" * 1001)
    assert [e["loc"] for e in caught.value.errors()] == [("validation_regex",)]


def test_definition_allowed_values_that_do_not_fit_the_type_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        _definition(value_type="integer", allowed_values=[1, "two"])
    assert [e["type"] for e in caught.value.errors()] == ["config_error"]


def test_definition_allowed_values_are_stored_normalized() -> None:
    body = _definition(value_type="number", allowed_values=["1", 2, "2.5"])
    assert body.allowed_values == [1, 2, 2.5]
    body = _definition(value_type="boolean", allowed_values=["yes"])
    assert body.allowed_values == [True]


EMAILS = [
    "ana@Example.com",
    "Ana.Lima+crm@EXAMPLE.COM",
    "ana@münchen.de",
    "ana@xn--mnchen-3ya.de",
    "ana@localhost",
    "ana@example",
    "ana@-bad-.com",
    "ana@exa_mple.com",
    "a" * 65 + "@example.com",
    "ana@" + "a" * 250 + ".com",
    "ana@example.com.",
    "@example.com",
    "ana@@example.com",
    "ana@example.test",
    "ana@127.0.0.1",
    "ana@[127.0.0.1]",
]


@pytest.mark.parametrize("address", EMAILS)
def test_email_domain_cache_answers_as_email_validator_does(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Twice through the cache (a miss, then a hit), then with the library's own function.
    from ccvault.domain import validation

    cached = [check_value(address, Rules(ValueType.email)) for _ in range(2)]
    monkeypatch.setattr(
        validation._EMAIL_MODULE,
        "validate_email_domain_name",
        validation._EMAIL_DOMAIN_UNCACHED,
    )
    assert cached[0] == cached[1] == check_value(address, Rules(ValueType.email))
