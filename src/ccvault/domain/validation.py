"""Value validation and normalization: type, then the definition's regex, then its
allowed values. Pure functions; the caller decides what a problem means (strict/warn)
and, through `check_is_slow`, whether a check is worth a worker thread."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
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


def _email(value: Any) -> str:
    try:
        return str(validate_email(_string(value), check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise ValueRejected("format_error", f"not an email address: {exc}") from None


def _phone(value: Any) -> str:
    text = _string(value)
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueRejected(
            "format_error", f"not a phone number in international form (+CC...): {exc}"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueRejected("format_error", "not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _date(value: Any) -> str:
    text = _string(value).strip()
    if not _DATE.match(text):
        raise ValueRejected("format_error", "expected a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise ValueRejected("format_error", f"not a calendar date: {exc}") from None


def _datetime(value: Any) -> str:
    text = _string(value).strip()
    if not _DATETIME.match(text):
        raise ValueRejected("format_error", "expected an ISO 8601 date and time")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueRejected("format_error", f"not an ISO 8601 datetime: {exc}") from None
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


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            # NaN/Infinity are Python's extensions, not JSON (PostgreSQL refuses them).
            value = json.loads(value, parse_constant=_no_constants)
        except json.JSONDecodeError as exc:
            raise ValueRejected("format_error", f"not JSON text: {exc.msg}") from None
        except (ValueError, RecursionError) as exc:
            raise ValueRejected("format_error", f"not JSON text: {exc}"[:200]) from None
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
    """What a definition asks of a value beyond its type."""

    value_type: ValueType
    validation_regex: str | None = None
    allowed_values: Sequence[Any] | None = None


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


def check_value(value: Any, rules: Rules) -> Checked:
    """Type, then regex (bounded work), then allowed values; first failure stops."""
    try:
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
    return Checked(normalized, ())
