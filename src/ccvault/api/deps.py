"""Dependency aliases and path parameter types shared by the routers."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel

from ccvault.config import Settings
from ccvault.domain.asof import AsOf
from ccvault.domain.etags import IfMatch, parse_if_match, profile_etag
from ccvault.domain.models import CALLER_ID_PATTERN, CHANNEL_PATTERN, FIELD_NAME_PATTERN
from ccvault.domain.schema import PURPOSE_PATTERN
from ccvault.services import Services


async def get_services(request: Request) -> Services:
    """The process's services (async: a sync dependency would cost a thread hop)."""
    return request.app.state.services  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    """The process's settings."""
    return request.app.state.settings  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CustomerId = Annotated[str, Path(pattern=CALLER_ID_PATTERN)]
AgentId = Annotated[str, Path(pattern=CALLER_ID_PATTERN)]
FieldName = Annotated[str, Path(pattern=FIELD_NAME_PATTERN)]
Channel = Annotated[str, Path(pattern=CHANNEL_PATTERN)]
ChannelUserId = Annotated[str, Path(pattern=r"^[^\x00-\x1f\x7f]{1,256}$")]
PurposeQuery = Annotated[str | None, Query(pattern=PURPOSE_PATTERN)]
AsOfQuery = Annotated[
    AsOf | None,
    Query(
        description="Answer as a read at this instant would have (RFC 3339 with an offset, "
        "e.g. `2026-12-01T09:30:00Z`; not in the future): the versions current then, "
        "their status then, the consents as they stood then. Never cached, no ETag; 404 "
        "when the profile did not exist then.",
    ),
]


async def if_match(
    value: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description="The profile's ETag as read: the write is refused (412) if the "
            "profile changed since; `*` only requires that it exists.",
        ),
    ] = None,
) -> IfMatch | None:
    """The If-Match of a write under a profile, checked by the write under its lock."""
    return None if value is None else parse_if_match(value)


IfMatchDep = Annotated[IfMatch | None, Depends(if_match)]


def etag_header(version: int) -> dict[str, str]:
    """The headers naming a profile's version (every profile answer carries them)."""
    return {"ETag": profile_etag(version)}


def json_response(
    model: BaseModel,
    status_code: int = 200,
    *,
    exclude: set[str] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Serialize a model once, in Rust, without FastAPI's second validation pass."""
    if extra:
        body = model.model_dump(mode="json", exclude=exclude) | extra
        content = json.dumps(body, separators=(",", ":")).encode()
    else:
        content = model.model_dump_json(exclude=exclude).encode()
    return Response(
        content, status_code=status_code, media_type="application/json", headers=headers
    )
