"""Answers written from the JSON documents PostgreSQL builds, without the models: the same
bytes as `Model.model_validate_json(doc).model_dump_json()`, for a fraction of its cost
(issue 17: parsing and dumping a read's answer through the models cost up to half its
floor). profile_json.py (the plain profile read) and lineage.py (the lineage answer) are
built from these helpers.

The documents already have the contract's keys in the models' order (the SQL builds them
so), and pydantic-core's own JSON reader and writer (`from_json`, `to_json`) handle every
value as the models do (the same parser and serializer). What the models change is
rewritten here:

- timestamps: PostgreSQL writes `2026-12-04T10:42:08.26636+00:00` (our sessions are in
  UTC), pydantic `2026-12-04T10:42:08.266360Z` (six digits, none when whole seconds);
- float fields: a whole number comes as `1` and is dumped as `1.0`.

Anything else (an offset other than UTC, a key missing) raises `Unexpected`, and the
caller goes through the models instead.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel


class Unexpected(Exception):
    """The document is not in the shape this fast path knows: use the models."""


# What a rewrite of a document of the wrong shape raises: callers turn it into Unexpected.
SHAPE_ERRORS = (KeyError, TypeError, AttributeError, ValueError, IndexError, OverflowError)
_UTC = "+00:00"


def fields_of(model: type[BaseModel], wanted: type) -> tuple[str, ...]:
    """The model's fields typed `wanted` or `wanted | None`, in the model's order."""
    names = []
    for name, info in model.model_fields.items():
        kind = info.annotation
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next((a for a in typing.get_args(kind) if a is not type(None)), None)
        if kind is wanted:
            names.append(name)
    return tuple(names)


def instant(text: str | None) -> str | None:
    """PostgreSQL's JSON timestamp in UTC as pydantic writes it."""
    if text is None:
        return None
    if not text.endswith(_UTC):
        raise Unexpected("a timestamp not in UTC")
    head = text[:-6]
    if len(head) == 19:  # YYYY-MM-DDTHH:MM:SS: whole seconds
        return head + "Z"
    if head[19] != ".":  # not a four-digit year: let the models decide
        raise Unexpected("a timestamp pydantic does not read")
    return head.ljust(26, "0") + "Z"  # the fraction as six digits


def fix(item: dict[str, Any], times: tuple[str, ...], floats: tuple[str, ...] = ()) -> None:
    """Rewrite one object's timestamps and floats (named by `fields_of`) in place."""
    for name in times:
        text = item[name]
        if text is not None:  # most optional instants are null: no call for them
            item[name] = instant(text)
    for name in floats:
        value = item[name]
        if value is not None:
            item[name] = float(value)
