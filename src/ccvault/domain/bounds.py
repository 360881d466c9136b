"""Bounds on what a request may hold, so that every input the vault accepts can be stored,
read back and shown by any client: instants, integers and value sizes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from ccvault.domain.errors import InvalidInput, Problem

# Python, and most languages' date types, stop at years 1 and 9999. A day's margin inside
# both ends keeps every accepted instant within those years in any time zone a client
# shows it in (offsets reach +-23:59), and keeps PostgreSQL from ever rendering a year
# 10000 or a BC date that no reader can parse. Migration 0012 holds the columns to the
# same bounds.
MIN_INSTANT = datetime(1, 1, 2, tzinfo=UTC)
MAX_INSTANT = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)

INT4_MAX = 2**31 - 1
# The longest tenant validation pattern (here, not in patterns.py, so that the definition
# models import without RE2).
MAX_PATTERN_LENGTH = 1000
# The largest integer every JSON reader holds exactly (IEEE 754 doubles: JavaScript...).
JSON_SAFE_INT_MAX = 2**53 - 1

# One field value, and one source_metadata object, serialized as compact UTF-8 JSON.
MAX_VALUE_BYTES = 64 * 1024
# A profile's current versions (not superseded, not deleted: expired and orphaned ones
# count until replaced or deleted). Migration 0012 enforces these under the profile lock.
MAX_PROFILE_FIELDS = 200
MAX_PROFILE_ASSETS = 200
# Current field values and their source_metadata, as PostgreSQL renders them in reads.
MAX_PROFILE_VALUE_BYTES = 1024 * 1024

# A date and a time, ASCII digits only; the offset is optional (none means UTC).
_DATE_AND_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")
_RANGE_MSG = "must fall between 0001-01-02T00:00:00Z and 9999-12-30T23:59:59.999999Z"


def bounded_utc(value: datetime) -> datetime:
    """The instant in UTC (naive means UTC), or ValueError when it lies outside the bounds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # its offset pushes it past year 1 or 9999
        raise ValueError(f"instants {_RANGE_MSG} (UTC)") from None
    if not MIN_INSTANT <= utc <= MAX_INSTANT:
        raise ValueError(f"instants {_RANGE_MSG} (UTC)")
    return utc


def _instant_text(value: Any) -> Any:
    """JSON gives an instant as RFC 3339 text: numbers (Unix time) and bare dates are refused."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_AND_TIME.match(value):
        raise PydanticCustomError(
            "datetime_type", "expected an ISO 8601 date and time, e.g. 2030-01-31T12:00:00Z"
        )
    return value


def _instant_range(value: datetime) -> datetime:
    try:
        return bounded_utc(value)
    except ValueError as exc:
        raise PydanticCustomError("datetime_range", str(exc)) from None


# Every timestamp a request carries: text with a date and a time, read as UTC without an
# offset, converted to UTC and bounded.
Instant = Annotated[datetime, BeforeValidator(_instant_text), AfterValidator(_instant_range)]


def json_size(value: Any) -> int:
    """Bytes of the value as compact UTF-8 JSON (how the size limits measure a value)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode(errors="surrogatepass"))


_PROFILE_LIMITS = {
    "profile_fields_limit": f"a profile holds at most {MAX_PROFILE_FIELDS} current fields",
    "profile_bytes_limit": (
        f"a profile's current field values and source_metadata hold at most "
        f"{MAX_PROFILE_VALUE_BYTES} bytes of JSON together"
    ),
    "profile_assets_limit": f"a profile holds at most {MAX_PROFILE_ASSETS} current assets",
}


def profile_limit_error(reason: str) -> InvalidInput | None:
    """The 422 for a profile limit the database refused a write for (None: not a limit)."""
    msg = _PROFILE_LIMITS.get(reason)
    if msg is None:
        return None
    detail = f"{msg}: delete or replace some first; nothing was written"
    return InvalidInput(detail, [Problem(("path", "customer_id"), msg, "profile_limit")])
