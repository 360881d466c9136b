"""Signed cursors: a position round-trips; anything the vault did not mint is refused."""

from __future__ import annotations

import pytest

from ccvault.domain.cursors import decode_cursor, encode_cursor
from ccvault.domain.errors import InvalidInput

SECRET = b"s" * 32


def test_a_cursor_round_trips_its_position() -> None:
    cursor = encode_cursor(SECRET, "profiles", ["2026-12-03T10:00:00Z", "c-17"])
    assert decode_cursor(SECRET, "profiles", cursor) == ["2026-12-03T10:00:00Z", "c-17"]


def test_a_cursor_is_url_safe() -> None:
    cursor = encode_cursor(SECRET, "profiles", ["é/+?&", 3])
    assert all(c.isalnum() or c in "-_." for c in cursor)


@pytest.mark.parametrize(
    ("secret", "list_name"),
    [(b"t" * 32, "profiles"), (SECRET, "review-queue")],
    ids=["another tenant", "another list"],
)
def test_a_cursor_minted_for_another_tenant_or_list_is_refused(
    secret: bytes, list_name: str
) -> None:
    cursor = encode_cursor(SECRET, "profiles", ["x"])
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(secret, list_name, cursor)
    assert caught.value.errors[0].loc == ("query", "cursor")


@pytest.mark.parametrize(
    "cursor",
    ["", "abc", "a.b.c", "!!!.???", "W10.AAAA", "x" * 2000],
    ids=["empty", "no dot", "two dots", "not base64", "bad mac", "too long"],
)
def test_a_cursor_the_vault_did_not_mint_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(SECRET, "profiles", cursor)


def test_a_tampered_position_is_refused() -> None:
    cursor = encode_cursor(SECRET, "profiles", ["a"])
    other = encode_cursor(SECRET, "profiles", ["b"])
    forged = other.split(".")[0] + "." + cursor.split(".")[1]
    with pytest.raises(InvalidInput):
        decode_cursor(SECRET, "profiles", forged)


def test_no_secret_never_verifies() -> None:
    cursor = encode_cursor(b"", "profiles", ["a"])
    with pytest.raises(InvalidInput):
        decode_cursor(b"", "profiles", cursor)
