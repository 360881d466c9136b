"""Profiles: create, read (by id or channel identity), identities, consents, merge."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field, StringConstraints

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import (
    Channel,
    ChannelUserId,
    CustomerId,
    FieldName,
    VaultDep,
    json_response,
)
from ccvault.api.errors import responses
from ccvault.domain.inputs import Input
from ccvault.domain.models import (
    CALLER_ID_PATTERN,
    ChannelIdentity,
    Consent,
    Profile,
)
from ccvault.domain.writes import CallerId, ConsentAnswer, NewIdentity

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])
Include = Annotated[Literal["history"] | None, Query(description="`history` adds field_history")]


class NewProfile(Input):
    """POST /v1/profiles body."""

    customer_id: CallerId | None = None
    """The caller's id for the customer; minted when absent."""
    channel_identities: list[NewIdentity] = Field(default_factory=list, max_length=100)
    """Handles to link to the new profile."""


class MergeRequest(Input):
    """POST /v1/profiles/{customer_id}/merge body."""

    source_customer_id: Annotated[str, StringConstraints(pattern=CALLER_ID_PATTERN)]
    """The profile to fold into this one; its id becomes an alias of this one."""


async def _profile_response(
    vault: VaultDep,
    caller: CurrentCaller,
    customer_id: str,
    include: str | None,
    status_code: int = 200,
) -> Response:
    if include == "history":
        profile = await vault.profiles.get_profile(
            caller.tenant_id, customer_id, include_history=True
        )
        return json_response(profile, status_code)
    # The hot path: cached JSON bytes go out as they are, no decode/encode.
    body = await vault.profiles.get_profile_json(caller.tenant_id, customer_id)
    return Response(body, status_code=status_code, media_type="application/json")


@router.post("", status_code=201, response_model=Profile, responses=responses(409, 422))
async def create_profile(body: NewProfile, vault: VaultDep, caller: CurrentCaller) -> Response:
    """Create a profile (the customer_id is minted when absent); 409 if it exists."""
    customer_id = await vault.profiles.create_profile(
        caller.tenant_id, body.customer_id, body.channel_identities
    )
    return await _profile_response(vault, caller, customer_id, None, 201)


@router.get(
    "/by-channel/{channel}/{channel_user_id}",
    response_model=Profile,
    responses=responses(404, 422),
)
async def get_profile_by_channel(
    channel: Channel,
    channel_user_id: ChannelUserId,
    vault: VaultDep,
    caller: CurrentCaller,
    include: Include = None,
) -> Response:
    """The profile a channel identity is linked to."""
    customer_id = await vault.profiles.customer_for_channel(
        caller.tenant_id, channel, channel_user_id
    )
    return await _profile_response(vault, caller, customer_id, include)


@router.get("/{customer_id}", response_model=Profile, responses=responses(404, 422))
async def get_profile(
    customer_id: CustomerId, vault: VaultDep, caller: CurrentCaller, include: Include = None
) -> Response:
    """The current profile: active fields and assets, identities, consents, status counts."""
    return await _profile_response(vault, caller, customer_id, include)


@router.post(
    "/{customer_id}/channel-identities",
    status_code=201,
    response_model=ChannelIdentity,
    responses={
        200: {"description": "Already linked to this profile (no change)"},
        **responses(409, 422),
    },
)
async def link_identity(
    customer_id: CustomerId, body: NewIdentity, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """Link a channel identity; 200 when already linked here, 409 when linked elsewhere."""
    identity, created = await vault.profiles.link_identity(caller.tenant_id, customer_id, body)
    return json_response(identity, 201 if created else 200)


@router.put(
    "/{customer_id}/consents/{consent_type}", response_model=Consent, responses=responses(422)
)
async def put_consent(
    customer_id: CustomerId,
    consent_type: FieldName,
    body: ConsentAnswer,
    vault: VaultDep,
    caller: CurrentCaller,
) -> Response:
    """Record whether the customer grants a consent type."""
    consent = await vault.profiles.put_consent(caller.tenant_id, customer_id, consent_type, body)
    return json_response(consent)


@router.post("/{customer_id}/merge", response_model=Profile, responses=responses(404, 422))
async def merge_profiles(
    customer_id: CustomerId, body: MergeRequest, vault: VaultDep, caller: CurrentCaller
) -> Response:
    """Fold another profile into this one; the other id becomes an alias of this one."""
    target = await vault.profiles.merge(caller.tenant_id, customer_id, body.source_customer_id)
    return await _profile_response(vault, caller, target, None)
