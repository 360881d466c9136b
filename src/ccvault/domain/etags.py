"""Entity tags of profiles (DESIGN §8, conditional requests): the tag names the profile's
version, which every mutation increments, so a write carrying `If-Match` with the tag a
client read can be refused (412) when anyone wrote to the profile since."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# How `If-Match: *` (any current version: the profile must exist) reaches the database;
# real versions start at 1.
ANY_VERSION: Final = 0
# Versions are PostgreSQL bigints: a larger number can name no version (and must not
# overflow the query's parameter).
_MAX_VERSION: Final = 2**63 - 1
# Enough for any honest client; a longer list is read up to here (the rest cannot match
# anything a client was given recently either).
MAX_TAGS: Final = 32
_TAG: Final = re.compile(r'\s*(W/)?"([\x21\x23-\x7e]*)"\s*(?:,|$)')


def profile_etag(version: int) -> str:
    """The ETag of a profile at `version` (a strong tag: it names the stored state)."""
    return f'"{version}"'


@dataclass(frozen=True)
class IfMatch:
    """The versions an If-Match header names (ANY_VERSION for `*`); empty when it names
    none the vault could have handed out, which no profile matches."""

    versions: tuple[int, ...]


def parse_if_match(header: str) -> IfMatch:
    """Read an If-Match value. Tags are compared by the version they name, with or
    without `W/`: a proxy that compresses answers weakens the tags it passes on, and the
    version a weakened tag names is still the one the client saw."""
    text = header.strip()
    if text == "*":
        return IfMatch((ANY_VERSION,))
    versions: list[int] = []
    position = 0
    while position < len(text) and len(versions) < MAX_TAGS:
        match = _TAG.match(text, position)
        if match is None or match.end() == position:
            break  # not a list of entity tags: the rest can match nothing
        position = match.end()
        opaque = match.group(2)
        # At most 19 digits: a bigint, and never a long digit string for int() to parse.
        if opaque.isdigit() and len(opaque) <= 19 and 0 < int(opaque) <= _MAX_VERSION:
            versions.append(int(opaque))
    return IfMatch(tuple(versions))
