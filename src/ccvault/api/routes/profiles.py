"""Profiles: create, list, read (by id or channel identity), verification level,
identities, consents, merge. Every profile answer carries the profile's ETag; writes
under a profile take If-Match."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import (
    AsOfQuery,
    Channel,
    ChannelUserId,
    CustomerId,
    FieldName,
    IfMatchDep,
    PurposeQuery,
    ServicesDep,
    etag_header,
    json_response,
)
from ccvault.api.errors import responses
from ccvault.domain.answers import Page
from ccvault.domain.caller import Caller
from ccvault.domain.models import ChannelIdentity, Consent, Profile, ProfileSummary
from ccvault.domain.writes import (
    ConsentAnswer,
    MergeRequest,
    NewIdentity,
    NewProfile,
    ProfilePatch,
)

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])
Include = Annotated[Literal["history"] | None, Query(description="`history` adds field_history")]
# A prefix of a customer id is itself an id (or empty: no filter).
Prefix = Annotated[
    str | None,
    Query(
        pattern=r"^(?:[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127})?$",
        description="only customer ids starting with this",
    ),
]
ETAG_HEADER = {"ETag": {"description": "the profile's version", "schema": {"type": "string"}}}


async def _profile_response(
    services: ServicesDep,
    caller: Caller,
    customer_id: str,
    include: str | None,
    status_code: int = 200,
    purpose: str | None = None,
    *,
    read: bool = True,
) -> Response:
    # read=False: a write's answer, audited as that write, not as a read.
    if include == "history" or purpose is not None:
        profile, version = await services.profiles.get(
            caller,
            customer_id,
            include_history=include == "history",
            purpose=purpose,
            audited=read,
        )
        # withheld_fields answers reads naming a purpose only: §4's shape stays as it was.
        exclude = None if purpose is not None else {"withheld_fields"}
        return json_response(profile, status_code, exclude=exclude, headers=etag_header(version))
    # The hot path: cached JSON bytes go out as they are, no decode/encode; the entry
    # knows its version, so the ETag costs nothing more.
    body, version = await services.profiles.get_json(caller, customer_id, audited=read)
    return Response(
        body, status_code=status_code, media_type="application/json", headers=etag_header(version)
    )


def _profile_answer(status: int, description: str) -> dict[int | str, dict[str, object]]:
    return {status: {"description": description, "headers": ETAG_HEADER}}


@router.post(
    "",
    status_code=201,
    response_model=Profile,
    responses={**_profile_answer(201, "The new profile"), **responses(409, 422)},
)
async def create_profile(
    body: NewProfile, services: ServicesDep, caller: CurrentCaller
) -> Response:
    """Create a profile (the customer_id is minted when absent); 409 if it exists."""
    customer_id = await services.profiles.create(caller, body.customer_id, body.channel_identities)
    return await _profile_response(services, caller, customer_id, None, 201, read=False)


@router.get("", response_model=Page[ProfileSummary], responses=responses(422))
async def list_profiles_route(
    services: ServicesDep,
    caller: CurrentCaller,
    q: Prefix = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """Live profiles, newest `updated_at` first (operators' search by id prefix)."""
    return json_response(await services.profiles.list(caller, q=q, limit=limit, cursor=cursor))


@router.get(
    "/by-channel/{channel}/{channel_user_id}",
    response_model=Profile,
    responses={**_profile_answer(200, "The profile"), **responses(404, 422)},
)
async def get_profile_by_channel(
    channel: Channel,
    channel_user_id: ChannelUserId,
    services: ServicesDep,
    caller: CurrentCaller,
    include: Include = None,
    purpose: PurposeQuery = None,
) -> Response:
    """The profile a channel identity is linked to."""
    customer_id = await services.profiles.customer_for_channel(caller, channel, channel_user_id)
    return await _profile_response(services, caller, customer_id, include, purpose=purpose)


@router.get(
    "/{customer_id}",
    response_model=Profile,
    responses={**_profile_answer(200, "The profile"), **responses(404, 422)},
)
async def get_profile(
    customer_id: CustomerId,
    services: ServicesDep,
    caller: CurrentCaller,
    include: Include = None,
    purpose: PurposeQuery = None,
    as_of: AsOfQuery = None,
) -> Response:
    """The current profile: active fields and assets, identities, consents, status counts.

    Naming a `purpose` leaves out the fields it may not see and lists them in
    `withheld_fields`. With `as_of`, the profile as it stood at that instant (no ETag)."""
    if as_of is not None:
        profile = await services.asof.profile(
            caller, customer_id, as_of, include_history=include == "history", purpose=purpose
        )
        exclude = _read_excludes(include, purpose)
        return json_response(profile, exclude=exclude or None)
    return await _profile_response(services, caller, customer_id, include, purpose=purpose)


def _read_excludes(include: str | None, purpose: str | None) -> set[str]:
    """The keys a read's answer leaves out: those its query did not ask for."""
    return ({"field_history"} if include != "history" else set()) | (
        {"withheld_fields"} if purpose is None else set()
    )


@router.patch(
    "/{customer_id}",
    response_model=Profile,
    responses={**_profile_answer(200, "The profile"), **responses(404, 412, 422)},
)
async def patch_profile(
    customer_id: CustomerId,
    body: ProfilePatch,
    services: ServicesDep,
    caller: CurrentCaller,
    if_match: IfMatchDep,
) -> Response:
    """Set the profile's verification level (an alias acts on its target)."""
    target = await services.profiles.set_verification_level(
        caller, customer_id, body.verification_level, if_match=if_match
    )
    return await _profile_response(services, caller, target, None, read=False)


@router.post(
    "/{customer_id}/channel-identities",
    status_code=201,
    response_model=ChannelIdentity,
    responses={
        200: {"description": "Already linked to this profile (no change)"},
        **responses(409, 412, 422),
    },
)
async def link_identity(
    customer_id: CustomerId,
    body: NewIdentity,
    services: ServicesDep,
    caller: CurrentCaller,
    if_match: IfMatchDep,
) -> Response:
    """Link a channel identity; 200 when already linked here, 409 when linked elsewhere."""
    identity, created = await services.profiles.link_identity(
        caller, customer_id, body, if_match=if_match
    )
    return json_response(identity, 201 if created else 200)


@router.put(
    "/{customer_id}/consents/{consent_type}",
    response_model=Consent,
    responses=responses(412, 422),
)
async def put_consent(
    customer_id: CustomerId,
    consent_type: FieldName,
    body: ConsentAnswer,
    services: ServicesDep,
    caller: CurrentCaller,
    if_match: IfMatchDep,
) -> Response:
    """Record whether the customer grants a consent type."""
    consent = await services.profiles.put_consent(
        caller, customer_id, consent_type, body, if_match=if_match
    )
    return json_response(consent)


@router.post(
    "/{customer_id}/merge",
    response_model=Profile,
    responses={**_profile_answer(200, "The merged profile"), **responses(404, 412, 422)},
)
async def merge_profiles(
    customer_id: CustomerId,
    body: MergeRequest,
    services: ServicesDep,
    caller: CurrentCaller,
    if_match: IfMatchDep,
) -> Response:
    """Fold another profile into this one; the other id becomes an alias of this one.

    If-Match names this (the target) profile's version."""
    target = await services.profiles.merge(
        caller, customer_id, body.source_customer_id, if_match=if_match
    )
    return await _profile_response(services, caller, target, None, read=False)
