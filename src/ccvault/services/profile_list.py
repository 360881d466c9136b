"""The profile list as callers page it: signed cursors around the store's keyset pages.

A cursor names the last profile a page showed (its sort key: `updated_at` floored to the
minute, `updated_at`, `customer_id`) and the list it belongs to, `q` included: a cursor
minted for another prefix, list or tenant, or not minted by the vault, is a 422
(domain/cursors.py).
"""

from __future__ import annotations

from datetime import datetime

from ccvault.domain.answers import Page
from ccvault.domain.caller import Caller
from ccvault.domain.cursors import LOC, decode_cursor, encode_cursor
from ccvault.domain.errors import InvalidInput, Problem
from ccvault.domain.models import ProfileSummary
from ccvault.storage.db import Pool
from ccvault.storage.profile_list import ListPosition
from ccvault.storage.profile_list import list_profiles as list_page

LIST_NAME = "profiles"


def _list_name(prefix: str | None) -> str:
    # The filter is part of the list: a position among one prefix's ids means nothing
    # among another's.
    return f"{LIST_NAME}?q={prefix}" if prefix else LIST_NAME


def _position(secret: bytes, name: str, cursor: str) -> ListPosition:
    position = decode_cursor(secret, name, cursor)
    try:
        minute, updated_at, customer_id = position
        return ListPosition(
            datetime.fromisoformat(minute), datetime.fromisoformat(updated_at), str(customer_id)
        )
    except (TypeError, ValueError):  # signed by us, so never; but never a 500 either
        raise InvalidInput(
            "The cursor is not one this list handed out.",
            [Problem(LOC, "malformed cursor", "invalid_cursor")],
        ) from None


async def list_profiles(
    pool: Pool, caller: Caller, *, q: str | None, limit: int, cursor: str | None
) -> Page[ProfileSummary]:
    """The caller's live profiles, newest `updated_at` first, `q` a customer id prefix."""
    prefix = q or None
    name = _list_name(prefix)
    after = _position(caller.secret, name, cursor) if cursor else None
    items, last = await list_page(pool, caller.tenant_id, prefix=prefix, limit=limit, after=after)
    next_cursor = (
        None
        if last is None
        else encode_cursor(
            caller.secret,
            name,
            [last.list_minute.isoformat(), last.updated_at.isoformat(), last.customer_id],
        )
    )
    return Page[ProfileSummary](items=items, next_cursor=next_cursor)
