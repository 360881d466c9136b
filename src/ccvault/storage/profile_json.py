"""The answer of a plain profile read from the JSON document PostgreSQL builds, without
the models: the same bytes as `Profile.model_validate_json(doc).model_dump_json(...)`,
for under half its cost (issue 17: the parse and dump were 0.5x the cold read's floor).

The document already has the contract's keys in the models' order (the SQL builds it
so), and pydantic-core's own JSON reader and writer handle every value as the models do
(the same parser and serializer). What the models change is done here:

- timestamps: PostgreSQL writes `2026-12-04T10:42:08.26636+00:00` (our sessions are in
  UTC), pydantic `2026-12-04T10:42:08.266360Z` (six digits, none when whole seconds);
- float fields: a whole number comes as `1` and is dumped as `1.0`;
- the status summary: PostgreSQL names the statuses it counted, the model all four.

Anything else (an offset other than UTC, a key missing) raises `Unexpected`, and the
caller goes through the models instead. tests/integration/test_profile_json.py compares
both paths byte for byte on profiles holding every kind of value.
"""

from __future__ import annotations

import types
import typing
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic_core import from_json, to_json

from ccvault.domain.models import (
    ChannelIdentity,
    Consent,
    Profile,
    ProfileAsset,
    ProfileField,
    StatusSummary,
)


class Unexpected(Exception):
    """The document is not in the shape this fast path knows: use the models."""


def _fields_of(model: type[BaseModel], wanted: type) -> tuple[str, ...]:
    """The model's fields typed `wanted` or `wanted | None`, in the model's order."""
    names = []
    for name, info in model.model_fields.items():
        kind = info.annotation
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next((a for a in typing.get_args(kind) if a is not type(None)), None)
        if kind is wanted:
            names.append(name)
    return tuple(names)


_PROFILE_TIMES = _fields_of(Profile, datetime)
_IDENTITY_TIMES = _fields_of(ChannelIdentity, datetime)
_CONSENT_TIMES = _fields_of(Consent, datetime)
_FIELD_TIMES = _fields_of(ProfileField, datetime)
_FIELD_FLOATS = _fields_of(ProfileField, float)
_ASSET_TIMES = _fields_of(ProfileAsset, datetime)
_ASSET_FLOATS = _fields_of(ProfileAsset, float)
_STATUSES = tuple(StatusSummary.model_fields)
_UTC = "+00:00"


def _instant(text: str | None) -> str | None:
    """PostgreSQL's JSON timestamp in UTC as pydantic writes it."""
    if text is None:
        return None
    if not text.endswith(_UTC):
        raise Unexpected("a timestamp not in UTC")
    head = text[:-6]
    if len(head) == 19:  # YYYY-MM-DDTHH:MM:SS: whole seconds
        return head + "Z"
    return head.ljust(26, "0") + "Z"  # the fraction as six digits


def _fix(item: dict[str, Any], times: tuple[str, ...], floats: tuple[str, ...] = ()) -> None:
    for name in times:
        text = item[name]
        if text is not None:  # most optional instants are null: no call for them
            item[name] = _instant(text)
    for name in floats:
        value = item[name]
        if value is not None:
            item[name] = float(value)


def plain_read_json(doc: str) -> bytes:
    """The answer of `GET /v1/profiles/{id}` (no history, no purpose) from the profile
    document of `profiles.sql`'s get_profile; `Unexpected` when it cannot tell."""
    try:
        profile = from_json(doc)
        _fix(profile, _PROFILE_TIMES)
        for identity in profile["channel_identities"]:
            _fix(identity, _IDENTITY_TIMES)
        for consent in profile["consents"]:
            _fix(consent, _CONSENT_TIMES)
        for field in profile["fields"].values():
            _fix(field, _FIELD_TIMES, _FIELD_FLOATS)
        for asset in profile["assets"]:
            _fix(asset, _ASSET_TIMES, _ASSET_FLOATS)
        counted = profile["field_status_summary"]
        profile["field_status_summary"] = {s: counted.get(s, 0) for s in _STATUSES}
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise Unexpected(str(exc)) from None
    return to_json(profile)
