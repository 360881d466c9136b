"""The instant of a read as of a past moment (DESIGN §8 "Time"): RFC 3339 with an offset,
not in the future."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError

from ccvault.domain.bounds import bounded_utc
from ccvault.domain.errors import InvalidInput, Problem

# RFC 3339 date-time: the offset is required (`Z` or ±hh:mm); the RFC allows `t`, `z` and
# a space for the `T`. Unlike a body's instants (domain/bounds.py), no offset is no UTC
# here: "as of 09:30" names no instant.
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
AS_OF_LOC = ("query", "as_of")


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise PydanticCustomError(
            "datetime_type",
            "expected an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:30:00Z",
        )
    return value


def _in_range(value: datetime) -> datetime:
    try:
        return bounded_utc(value)
    except ValueError as exc:
        raise PydanticCustomError("datetime_range", str(exc)) from None


AsOf = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_range)]
"""An RFC 3339 date-time with its offset, as an aware datetime in UTC."""


def past_instant(as_of: datetime, now: datetime | None = None) -> datetime:
    """`as_of` in UTC if it names a moment (with an offset) not after `now` (the clock by
    default); InvalidInput otherwise: the vault cannot answer for the future."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise InvalidInput(
            "as_of needs an offset",
            [Problem(AS_OF_LOC, "give the instant's offset", "timezone_aware")],
        )
    try:
        at = bounded_utc(as_of)
    except ValueError as exc:
        problem = Problem(AS_OF_LOC, str(exc), "value_error")
        raise InvalidInput("as_of is out of range", [problem]) from None
    if at > (now or datetime.now(UTC)):
        raise InvalidInput(
            "as_of is in the future",
            [Problem(AS_OF_LOC, "the instant must not be in the future", "value_error")],
        )
    return at
