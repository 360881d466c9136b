"""Value validation and normalization: type, then the definition's regex, then its
allowed values, then its range. Pure functions; the caller decides what a problem means
(strict/warn) and, through `check_is_slow`, whether a check is worth a worker thread.

Every `msg` is the vault's own words: a library's exception text (phonenumbers,
email-validator, the standard library's parsers) is never passed on, because callers
(and the agents behind them) act on these messages and must not depend on a library's
phrasing."""

from __future__ import annotations

import functools
import importlib
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from ccvault.domain.bounds import bounded_utc
from ccvault.domain.errors import Problem
from ccvault.domain.inputs import unstorable_text
from ccvault.domain.models import ValueType
from ccvault.domain.patterns import PATTERNS, MatchTooCostly, PatternError, tenant_pattern
from ccvault.domain.values import is_json_safe

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# ASCII digits only: Python's float() also reads Arabic-Indic and fullwidth digits.
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$", re.ASCII)
_SPACE = re.compile(r"\s")
MAX_INT_DIGITS = 4000
# Below this many characters a cached pattern matches in microseconds: a thread hop costs more.
QUICK_MATCH_CHARS = 4096
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}
LOC = ("body", "value")


class ValueRejected(ValueError):
    """A value that is not of its type; `code` is type_error or format_error."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueRejected("type_error", f"expected a string, got {type(value).__name__}")
    return value


# email-validator spends two thirds of an address on its domain (IDNA and Unicode checks
# of every character), a pure function of the domain text that a bulk import asks again
# for nearly every line (a CRM's customers share a few domains). It is remembered here
# for the few thousand most recent domains; a refused domain raises as before, each time
# (lru_cache keeps no exceptions), and what it returns is only read by validate_email.
_EMAIL_MODULE = importlib.import_module("email_validator.validate_email")
_EMAIL_DOMAIN_UNCACHED = _EMAIL_MODULE.validate_email_domain_name
_EMAIL_MODULE.validate_email_domain_name = functools.lru_cache(maxsize=4096)(  # type: ignore[attr-defined]
    _EMAIL_DOMAIN_UNCACHED
)


def _email(value: Any) -> str:
    text = _string(value)
    try:
        return str(validate_email(text, check_deliverability=False).normalized)
    except EmailNotValidError:
        pass
    local, at, domain = text.strip().rpartition("@")
    if not at or "@" in local:
        msg = "an email address has exactly one @, like name@example.com"
    elif not local:
        msg = "an email address needs a name before the @, like name@example.com"
    elif "." not in domain:
        msg = "an email address needs a domain with a dot after the @, like name@example.com"
    elif len(local) > 64 or len(text) > 254:
        msg = "an email address has at most 64 characters before the @ and 254 in all"
    else:
        msg = "not a valid email address (expected something like name@example.com)"
    raise ValueRejected("format_error", msg)


_INTERNATIONAL = "the phone number must be international, like +4930123456"
_PHONE_PARSE = {
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short for a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short for a phone number",
    phonenumbers.NumberParseException.TOO_LONG: "too long for a phone number",
}


def _phone(value: Any, region: str | None = None) -> str:
    """E.164; without `region` only numbers in international form (+CC...) are read, with
    it a national number is read as one of that region."""
    text = _string(value)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            known_form = text.strip().startswith("+") or region is not None
            msg = "the country code is not known" if known_form else _INTERNATIONAL
        else:
            msg = _PHONE_PARSE.get(exc.error_type, "not a phone number")
        raise ValueRejected("format_error", msg) from None
    if not phonenumbers.is_valid_number(number):
        where = phonenumbers.region_code_for_number(number)
        msg = f"not a valid phone number for {where}" if where else "not a valid phone number"
        raise ValueRejected("format_error", msg)
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _date(value: Any) -> str:
    text = _string(value).strip()
    if not _DATE.match(text):
        raise ValueRejected("format_error", "expected a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueRejected("format_error", f"{text} is not a day of the calendar") from None


def _datetime(value: Any) -> str:
    text = _string(value).strip()
    if not _DATETIME.match(text):
        raise ValueRejected("format_error", "expected an ISO 8601 date and time")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        msg = "not an ISO 8601 date and time that exists (like 2025-03-14T09:26:53Z)"
        raise ValueRejected("format_error", msg) from None
    try:
        utc = bounded_utc(parsed)
    except ValueError as exc:
        raise ValueRejected("format_error", str(exc)) from None
    return utc.isoformat().replace("+00:00", "Z")


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueRejected("type_error", "expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueRejected("format_error", "numbers must be finite")
        return value
    text = _string(value).strip()
    if not _NUMBER.match(text):
        raise ValueRejected("format_error", f"not a number: {text[:40]!r}")
    parsed = float(text)
    if not math.isfinite(parsed):
        raise ValueRejected("format_error", "numbers must be finite")
    if "." in text or "e" in text.lower():
        return parsed
    sign = "-" if text.startswith("-") else ""
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > MAX_INT_DIGITS:
        raise ValueRejected("format_error", f"integers are limited to {MAX_INT_DIGITS} digits")
    return int(sign + digits)


def _integer(value: Any) -> int:
    number = _number(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueRejected("format_error", "expected a whole number")
        return int(number)
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ValueRejected("format_error", "expected true/false, yes/no or 1/0")


def _url(value: Any) -> str:
    text = _string(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or _SPACE.search(text):
        raise ValueRejected("format_error", "expected an absolute http(s) URL")
    return text


class _NotJsonConstant(ValueError):
    """NaN or Infinity in JSON text."""


def _no_constants(name: str) -> Any:
    raise _NotJsonConstant(name)


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            # NaN/Infinity are Python's extensions, not JSON (PostgreSQL refuses them).
            value = json.loads(value, parse_constant=_no_constants)
        except json.JSONDecodeError as exc:
            msg = f"not JSON text (line {exc.lineno}, column {exc.colno})"
            raise ValueRejected("format_error", msg) from None
        except _NotJsonConstant as exc:
            raise ValueRejected("format_error", f"not JSON text ({exc} is not JSON)") from None
        except ValueError:
            # Python's own limit on the digits of an integer it reads.
            msg = f"not JSON text (integers are limited to {sys.get_int_max_str_digits()} digits)"
            raise ValueRejected("format_error", msg) from None
        except RecursionError:
            raise ValueRejected("format_error", "not JSON text (nested too deep)") from None
    # Escapes in JSON text can spell what the request itself could not carry: 1e999 (an
    # infinity), \u0000 or a lone surrogate (jsonb refuses both), nesting past our depth.
    if not is_json_safe(value):
        raise ValueRejected("format_error", "JSON numbers must be finite, nesting at most 64 deep")
    if unstorable_text(value):
        raise ValueRejected(
            "format_error", "JSON text must not hold NUL characters or unpaired surrogates"
        )
    return value


NORMALIZERS: dict[ValueType, Callable[[Any], Any]] = {
    ValueType.string: _string,
    ValueType.email: _email,
    ValueType.phone: _phone,
    ValueType.date: _date,
    ValueType.datetime: _datetime,
    ValueType.number: _number,
    ValueType.integer: _integer,
    ValueType.boolean: _boolean,
    ValueType.url: _url,
    ValueType.json: _json,
}


@dataclass(frozen=True)
class Rules:
    """What a definition asks of a value beyond its type. Bounds are inclusive; `min_age`
    and `max_age` count whole years from a date to today's UTC date."""

    value_type: ValueType
    validation_regex: str | None = None
    allowed_values: Sequence[Any] | None = None
    min: int | float | None = None
    max: int | float | None = None
    min_age: int | None = None
    max_age: int | None = None
    default_region: str | None = None

    @property
    def has_range(self) -> bool:
        """Whether a value can be out of range (and missing-fields must look)."""
        # Spelled out: every field write asks, and a generator cost more than the check.
        return not (self.min is None and self.max is None) or not (
            self.min_age is None and self.max_age is None
        )


def age_on(born: date, today: date) -> int:
    """Whole years from `born` to `today` (a birthday counts on its day; someone born on
    29 February turns a year older on 1 March in common years)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _shown(bound: int | float) -> str:
    return str(int(bound)) if isinstance(bound, float) and bound.is_integer() else str(bound)


def range_problem(value: Any, rules: Rules, today: date | None = None) -> Problem | None:
    """Why a normalized value is outside the definition's bounds (a `range_error`), or
    None; values not of the bounds' type are left to the type check."""
    if rules.min is not None or rules.max is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if rules.min is not None and value < rules.min:
            return Problem(LOC, f"must be at least {_shown(rules.min)}", "range_error")
        if rules.max is not None and value > rules.max:
            return Problem(LOC, f"must be at most {_shown(rules.max)}", "range_error")
    if rules.min_age is not None or rules.max_age is not None:
        try:
            born = date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            born = None
        if born is None:
            return None
        age = age_on(born, today or datetime.now(UTC).date())
        ago = "in the future" if age < 0 else f"{age} years ago"
        if rules.min_age is not None and age < rules.min_age:
            msg = f"must be a date at least {rules.min_age} years ago (this one is {ago})"
            return Problem(LOC, msg, "range_error")
        if rules.max_age is not None and age > rules.max_age:
            msg = f"must be a date at most {rules.max_age} years ago (this one is {ago})"
            return Problem(LOC, msg, "range_error")
    return None


@dataclass(frozen=True)
class Checked:
    """A value after validation: normalized when its type check passed, plus problems."""

    value: Any
    problems: tuple[Problem, ...]


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1 (Python says it is), 2 is 2.0, objects by content."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    return type(a) is type(b) and a == b


def _among(value: Any, allowed: Sequence[Any]) -> bool:
    """Membership by JSON equality."""
    return any(_same(value, a) for a in allowed)


def _regex_problem(source: str, value: Any) -> Problem | None:
    """Why the value fails the definition's pattern (whole-value match), or None."""
    try:
        pattern = tenant_pattern(source)
    except PatternError as exc:
        # Only a pattern stored before RE2 checked definitions gets here: the definition
        # must be replaced, which the caller is told instead of getting a 500.
        msg = f"the definition's validation_regex cannot be used: {exc}"
        return Problem(LOC, msg, "config_error")
    try:
        if pattern.fullmatch(_as_text(value)):
            return None
    except MatchTooCostly as exc:
        msg = f"the value is too long to check against the definition's pattern: {exc}"
        return Problem(LOC, msg, "regex_error")
    return Problem(LOC, f"does not match the pattern {source!r}", "regex_error")


def check_is_slow(value: Any, rules: Rules) -> bool:
    """Whether checking may compile a pattern or match a long text, so that an async
    caller should run `check_value` on a worker thread rather than on its event loop."""
    if not rules.validation_regex:
        return False
    if not PATTERNS.holds(rules.validation_regex):
        return True
    if isinstance(value, dict | list):
        return True
    return isinstance(value, str) and len(value) > QUICK_MATCH_CHARS


def check_value(value: Any, rules: Rules, today: date | None = None) -> Checked:
    """Type, then regex (bounded work), then allowed values, then range (ages to `today`,
    by default today's UTC date); first failure stops."""
    try:
        if rules.value_type is ValueType.phone:
            normalized = _phone(value, rules.default_region)
        else:
            normalized = NORMALIZERS[rules.value_type](value)
    except ValueRejected as exc:
        return Checked(value, (Problem(LOC, exc.msg, exc.code),))
    if rules.validation_regex:
        problem = _regex_problem(rules.validation_regex, normalized)
        if problem is not None:
            return Checked(normalized, (problem,))
    if rules.allowed_values is not None and not _among(normalized, rules.allowed_values):
        shown = ", ".join(_as_text(v) for v in list(rules.allowed_values)[:10])
        msg = f"not one of the allowed values ({shown})"
        return Checked(normalized, (Problem(LOC, msg, "allowed_values_error"),))
    if rules.has_range:
        problem = range_problem(normalized, rules, today)
        if problem is not None:
            return Checked(normalized, (problem,))
    return Checked(normalized, ())
