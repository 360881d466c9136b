"""Opaque, signed cursors for paged lists (DESIGN §8): a position the vault minted itself.

A cursor is `<payload>.<mac>` in URL-safe base64: the payload is the JSON position (the
sort key of the last item served), the MAC an HMAC-SHA256 over the list's name and the
payload under the tenant's secret. So a cursor the vault did not mint, or minted for
another list or another tenant, fails to verify and is refused (422) instead of being
trusted as a position. Pure functions: the caller brings the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from ccvault.domain.errors import InvalidInput, Problem

# 128 bits of MAC: forging one is out of reach, and cursors stay short in URLs.
_MAC_BYTES = 16
MAX_CURSOR_CHARS = 1024
LOC = ("query", "cursor")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, list_name: str, payload: bytes) -> bytes:
    message = list_name.encode() + b"\x00" + payload
    return hmac.new(secret, message, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_cursor(secret: bytes, list_name: str, position: list[Any]) -> str:
    """The cursor that resumes `list_name` after `position` (JSON-able sort key values)."""
    payload = json.dumps(position, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, list_name, payload))}"


def _refuse(msg: str) -> InvalidInput:
    return InvalidInput(
        "The cursor is not one this list handed out.",
        [Problem(LOC, msg, "invalid_cursor")],
    )


def decode_cursor(secret: bytes, list_name: str, cursor: str) -> list[Any]:
    """The position a cursor stands for; InvalidInput (422) unless we minted it for this
    list and this tenant."""
    if len(cursor) > MAX_CURSOR_CHARS or cursor.count(".") != 1:
        raise _refuse("malformed cursor")
    encoded_payload, encoded_mac = cursor.split(".")
    try:
        payload = _unb64(encoded_payload)
        mac = _unb64(encoded_mac)
    except (binascii.Error, ValueError):
        raise _refuse("malformed cursor") from None
    if not secret or not hmac.compare_digest(mac, _mac(secret, list_name, payload)):
        raise _refuse("cursor signature does not match (another list, tenant or a forgery)")
    position = json.loads(payload)
    if not isinstance(position, list):
        raise _refuse("malformed cursor")
    return position
