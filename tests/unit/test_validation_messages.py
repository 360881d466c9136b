"""Every validation `msg` is the vault's own words: no exception text of phonenumbers,
email-validator or the standard library's parsers reaches a caller (they are read by
agents, which must not depend on a library's phrasing)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email

from ccvault.domain.models import ValueType
from ccvault.domain.validation import Rules, age_on, check_value

BAD: dict[ValueType, list[Any]] = {
    ValueType.string: [1, None, ["a"]],
    ValueType.email: [
        "ana",
        "ana@",
        "@example.com",
        "ana@@example.com",
        "ana@example",
        "ana b@example.com",
        "ana@exa mple.com",
        "ana@-example.com",
        "a" * 300 + "@example.com",
        "ana@example..com",
        3,
    ],
    ValueType.phone: [
        "030 1234567",
        "+999 123456",
        "+49",
        "abc",
        "0",
        "+4930123456789012345678",
        "+1 555 0000",
        "",
        5,
    ],
    ValueType.date: ["2025-02-30", "2025-13-01", "14/03/2025", "2025-03-14T10:00:00Z", 20250314],
    ValueType.datetime: ["2025-02-30T10:00:00Z", "2025-03-14T25:00:00Z", "yesterday", "2025-03-14"],
    ValueType.number: ["12,5", "1e999", "NaN", "", True, "١٢"],
    ValueType.integer: ["1.5", "x", "9" * 5000, False],
    ValueType.boolean: ["maybe", 2, None],
    ValueType.url: ["example.com", "ftp://example.com", "http://exa mple.com"],
    ValueType.json: ["{", "[1,", '{"a": NaN}', "1" * 5000, "[" * 100_000, "Infinity"],
}


def _library_texts(value: Any) -> list[str]:
    """What the libraries themselves say about `value` (empty where they accept it)."""
    texts: list[str] = []
    attempts: list[Callable[[], Any]] = [
        lambda: phonenumbers.parse(value, None),
        lambda: validate_email(value, check_deliverability=False),
        lambda: date.fromisoformat(value),
        lambda: datetime.fromisoformat(value),
        lambda: json.loads(value),
        lambda: float(value),
        lambda: int(value),
    ]
    for attempt in attempts:
        try:
            attempt()
        except (phonenumbers.NumberParseException, EmailNotValidError, ValueError) as exc:
            text = str(exc)
            texts.append(text)
            # email-validator and phonenumbers build messages of sentences: any one of
            # them would be a leak.
            texts.extend(s.strip() for s in text.split(". ") if len(s.strip()) > 12)
        except (TypeError, AttributeError, RecursionError):
            pass
    return [t for t in texts if t]


@pytest.mark.parametrize(
    ("value_type", "value"),
    [(vt, v) for vt, values in BAD.items() for v in values],
    ids=lambda x: repr(x)[:30],
)
def test_no_validation_message_holds_a_library_message(value_type: ValueType, value: Any) -> None:
    checked = check_value(value, Rules(value_type))
    assert checked.problems, f"{value!r} was accepted as {value_type}"
    for problem in checked.problems:
        for text in _library_texts(value):
            assert text not in problem.msg, (problem.msg, text)
        # The marks of the libraries' phrasing: phonenumbers' "(0) ...", Python's "for
        # int() with base", email-validator's "The email address is not valid".
        assert not problem.msg.startswith("(")
        assert "email address is not valid" not in problem.msg
        assert "isoformat" not in problem.msg
        assert "Expecting" not in problem.msg
        assert "set_int_max_str_digits" not in problem.msg


def test_a_phone_without_region_says_what_to_ask_again() -> None:
    checked = check_value("030 1234567", Rules(ValueType.phone))
    assert [p.msg for p in checked.problems] == [
        "the phone number must be international, like +4930123456"
    ]


@pytest.mark.parametrize(
    ("value", "region", "stored"),
    [
        ("030 1234567", "DE", "+49301234567"),
        ("+49 30 1234567", "DE", "+49301234567"),
        ("912 345 678", "PT", "+351912345678"),
        ("+351912345678", "DE", "+351912345678"),
    ],
)
def test_default_region_reads_national_numbers_as_e164(
    value: str, region: str, stored: str
) -> None:
    checked = check_value(value, Rules(ValueType.phone, default_region=region))
    assert (checked.value, checked.problems) == (stored, ())


def test_an_invalid_number_of_the_region_names_the_region() -> None:
    checked = check_value("030 12", Rules(ValueType.phone, default_region="DE"))
    assert [p.code for p in checked.problems] == ["format_error"]
    assert "DE" in checked.problems[0].msg or "too short" in checked.problems[0].msg


@pytest.mark.parametrize(
    ("born", "today", "age"),
    [
        (date(2008, 12, 3), date(2026, 12, 3), 18),
        (date(2008, 12, 4), date(2026, 12, 3), 17),
        (date(2008, 2, 29), date(2026, 2, 28), 17),
        (date(2008, 2, 29), date(2026, 3, 1), 18),
        (date(2008, 2, 29), date(2028, 2, 29), 20),
        (date(2027, 1, 1), date(2026, 12, 3), -1),
    ],
)
def test_age_counts_whole_years(born: date, today: date, age: int) -> None:
    assert age_on(born, today) == age


def test_range_is_checked_after_the_type_and_to_the_given_day() -> None:
    rules = Rules(ValueType.date, min_age=18, max_age=20)
    today = date(2026, 12, 3)
    assert check_value("2008-12-03", rules, today).problems == ()
    assert check_value("2006-12-04", rules, today).problems == ()
    assert [p.code for p in check_value("2005-12-03", rules, today).problems] == ["range_error"]
    assert [p.code for p in check_value("2008-12-04", rules, today).problems] == ["range_error"]
    assert [p.code for p in check_value("not a date", rules, today).problems] == ["format_error"]
    numbers = Rules(ValueType.number, min=-1.5, max=2)
    assert check_value("-1.5", numbers).problems == ()
    assert [p.msg for p in check_value(-2, numbers).problems] == ["must be at least -1.5"]
    assert [p.msg for p in check_value(2.5, numbers).problems] == ["must be at most 2"]
