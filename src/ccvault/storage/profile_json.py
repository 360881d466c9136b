"""The answer of a plain profile read from the JSON document PostgreSQL builds, without
the models: the same bytes as `Profile.model_validate_json(doc).model_dump_json(...)`,
for under half its cost (issue 17: the parse and dump were 0.5x the cold read's floor).

model_json.py says how (pydantic-core's own reader and writer, the timestamps and
whole-number floats rewritten as the models would). Beyond those, the status summary:
PostgreSQL names the statuses it counted, the model all four.

Anything else (an offset other than UTC, a key missing) raises `Unexpected`, and the
caller goes through the models instead. tests/integration/test_profile_json.py compares
both paths byte for byte on profiles holding every kind of value.
"""

from __future__ import annotations

from datetime import datetime

from pydantic_core import from_json, to_json

from ccvault.domain.models import (
    ChannelIdentity,
    Consent,
    Profile,
    ProfileAsset,
    ProfileField,
    StatusSummary,
)
from ccvault.storage.model_json import SHAPE_ERRORS, Unexpected, fields_of, fix

__all__ = ["Unexpected", "plain_read_json"]

_PROFILE_TIMES = fields_of(Profile, datetime)
_IDENTITY_TIMES = fields_of(ChannelIdentity, datetime)
_CONSENT_TIMES = fields_of(Consent, datetime)
_FIELD_TIMES = fields_of(ProfileField, datetime)
_FIELD_FLOATS = fields_of(ProfileField, float)
_ASSET_TIMES = fields_of(ProfileAsset, datetime)
_ASSET_FLOATS = fields_of(ProfileAsset, float)
_STATUSES = tuple(StatusSummary.model_fields)


def plain_read_json(doc: str) -> bytes:
    """The answer of `GET /v1/profiles/{id}` (no history, no purpose) from the profile
    document of `profiles.sql`'s get_profile; `Unexpected` when it cannot tell."""
    try:
        profile = from_json(doc)
        fix(profile, _PROFILE_TIMES)
        for identity in profile["channel_identities"]:
            fix(identity, _IDENTITY_TIMES)
        for consent in profile["consents"]:
            fix(consent, _CONSENT_TIMES)
        for field in profile["fields"].values():
            fix(field, _FIELD_TIMES, _FIELD_FLOATS)
        for asset in profile["assets"]:
            fix(asset, _ASSET_TIMES, _ASSET_FLOATS)
        counted = profile["field_status_summary"]
        profile["field_status_summary"] = {s: counted.get(s, 0) for s in _STATUSES}
    except SHAPE_ERRORS as exc:
        raise Unexpected(str(exc)) from None
    return to_json(profile)
