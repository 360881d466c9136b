"""The audit entry's canonical instant (domain/audit.py): the text every entry was hashed
with must not change, however `instant` computes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from ccvault.domain.audit import canonical, instant

ZONES = [
    UTC,
    timezone(timedelta(0)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-8)),
    ZoneInfo("UTC"),
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/New_York"),
]


def reference(at: datetime) -> str:
    """The canonical form as first defined (strftime)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(ZONES),
)
def test_instant_is_the_reference_text_in_every_zone(naive: datetime, zone: object) -> None:
    at = naive.replace(tzinfo=UTC).astimezone(zone)  # type: ignore[arg-type]
    assert instant(at) == reference(at)


def test_a_whole_second_keeps_its_six_digits() -> None:
    at = datetime(2026, 12, 4, 10, 0, 0, tzinfo=UTC)
    assert instant(at) == "2026-12-04T10:00:00.000000Z"
    fields = dict.fromkeys(("actor", "action", "subject_hash", "target", "purpose", "request_id"))
    assert canonical(1, at, fields) == canonical(1, at, fields, instant(at))
