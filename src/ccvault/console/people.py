"""Customers: the list and search, a profile with its history, the lineage graph of an
item, and the profile's actions (delete a field, export, erase)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from ccvault.console.graph import layout
from ccvault.console.web import (
    CONSOLE_PURPOSE,
    CallerDep,
    form_of,
    redirect,
    render,
    text,
)
from ccvault.console.web import state_of as console
from ccvault.domain.caller import Caller
from ccvault.domain.errors import NotFound
from ccvault.domain.models import (
    CALLER_ID_PATTERN,
    CHANNEL_PATTERN,
    FIELD_NAME_PATTERN,
    Direction,
    ProfileSummary,
)
from ccvault.domain.privacy import EraseRequest
from ccvault.domain.schema import PURPOSE_PATTERN

router = APIRouter()
PAGE_SIZE = 25

CustomerId = Annotated[str, Path(pattern=CALLER_ID_PATTERN)]
FieldName = Annotated[str, Path(pattern=FIELD_NAME_PATTERN)]
_CHANNEL = re.compile(CHANNEL_PATTERN)
_CUSTOMER = re.compile(CALLER_ID_PATTERN)
_PURPOSE = re.compile(PURPOSE_PATTERN)


@router.get("/customers")
async def customers(
    request: Request,
    caller: CallerDep,
    q: Annotated[str, Query(max_length=128)] = "",
    channel: Annotated[str, Query(max_length=32)] = "",
    channel_user_id: Annotated[str, Query(max_length=256)] = "",
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """Newest first, filtered by a customer id prefix, or the one customer a channel
    identity is linked to."""
    services = console(request).services
    q = q.strip()
    items: list[ProfileSummary] = []
    next_cursor = None
    notice = None
    if channel or channel_user_id:
        if not _CHANNEL.fullmatch(channel) or not channel_user_id.strip():
            notice = "Give both a channel (like whatsapp) and the customer's id on it."
        else:
            try:
                found = await services.profiles.customer_for_channel(
                    caller, channel, channel_user_id.strip()
                )
            except NotFound:
                notice = f"No customer is linked to {channel} identity {channel_user_id!r}."
            else:
                return redirect(request, f"/customers/{found}")
    else:
        if q and not _CUSTOMER.match(q + "x" if len(q) < 128 else q):
            notice = "Customer ids hold letters, digits and . _ : @ + - only."
        else:
            page = await services.profiles.list(caller, q=q or None, limit=PAGE_SIZE, cursor=cursor)
            items, next_cursor = page.items, page.next_cursor
    return render(
        request,
        "customers.html",
        {
            "title": "Customers",
            "active": "customers",
            "items": items,
            "next_cursor": next_cursor,
            "q": q,
            "channel": channel,
            "channel_user_id": channel_user_id,
            "paged": cursor is not None,
            "notice": notice,
        },
    )


@router.get("/customers/{customer_id}")
async def profile(
    request: Request,
    caller: CallerDep,
    customer_id: CustomerId,
    purpose: Annotated[str, Query(max_length=64)] = "",
    history: bool = False,
) -> Response:
    """Active fields, assets, identities, consents: what a read for the chosen purpose may
    see (the tenant's own rule decides when none is chosen). Each field's history comes
    after the page (htmx asks for /history), so the page costs a cached profile read;
    `?history=true` puts it in the page (without script)."""
    read_for = _purpose(caller, purpose)
    purpose = read_for if read_for and purpose.strip() else ""
    services = console(request).services
    found: Any
    if read_for is None and not history:
        # The API's hot read (the cached JSON as callers get it), decoded to plain data
        # for the template: validating it into models again was a third of the page.
        body, _ = await services.profiles.get_json(caller, customer_id)
        found = json.loads(body)
    else:
        model, _ = await services.profiles.get(
            caller.acting_as(purpose=read_for),
            customer_id,
            include_history=history,
            purpose=read_for,
        )
        # The same plain data as the JSON read: one shape for the template, which looks
        # keys up by subscript (attribute lookups on dicts cost an exception each).
        found = model.model_dump(mode="json")
    return render(
        request,
        "profile.html",
        {
            "title": f"Customer {customer_id}",
            "active": "customers",
            "p": found,
            "history": found.get("field_history") if history else None,
            "purpose": purpose,
            "read_for": read_for,
        },
    )


@router.get("/customers/{customer_id}/history")
async def profile_history(
    request: Request,
    caller: CallerDep,
    customer_id: CustomerId,
    purpose: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Every version of every field, as a timeline per field (the profile page's part)."""
    read_for = _purpose(caller, purpose)
    found, _ = await console(request).services.profiles.get(
        caller.acting_as(purpose=read_for), customer_id, include_history=True, purpose=read_for
    )
    history = found.model_dump(mode="json", include={"field_history"}).get("field_history")
    return render(request, "profile_history.html", {"history": history or {}})


@router.post("/customers/{customer_id}/fields/{name}/delete")
async def delete_field(
    request: Request, caller: CallerDep, customer_id: CustomerId, name: FieldName
) -> Response:
    """Soft-delete the field's active version (kept in history and lineage)."""
    await console(request).services.fields.delete(caller, customer_id, name)
    return redirect(request, f"/customers/{customer_id}")


def _purpose(caller: Caller, chosen: str) -> str | None:
    """The purpose a console read names: the one chosen on the page, else `console` when
    the tenant requires one, else none (README "Console")."""
    chosen = chosen.strip()
    if chosen and _PURPOSE.fullmatch(chosen):
        return chosen
    return CONSOLE_PURPOSE if caller.require_purpose else None


@router.get("/customers/{customer_id}/export")
async def export(
    request: Request,
    caller: CallerDep,
    customer_id: CustomerId,
    purpose: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The access-request export (for the page's purpose), downloaded as a JSON file."""
    read_for = _purpose(caller, purpose)
    chunks = await console(request).services.export.open(caller, customer_id, read_for)
    return StreamingResponse(
        chunks,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="export.json"'},
    )


@router.get("/customers/{customer_id}/erase")
async def erase_page(request: Request, caller: CallerDep, customer_id: CustomerId) -> Response:
    """What erasing means, and the typed confirmation."""
    read_for = _purpose(caller, "")
    # Unknown (or another tenant's) customer: 404 before anyone types anything.
    await console(request).services.profiles.get(caller, customer_id, purpose=read_for)
    return render(
        request,
        "erase.html",
        {"title": f"Erase {customer_id}", "active": "customers", "customer_id": customer_id},
    )


@router.post("/customers/{customer_id}/erase")
async def erase(request: Request, caller: CallerDep, customer_id: CustomerId) -> Response:
    """Erase for good, only when the customer id was typed exactly."""
    form = await form_of(request)
    context = {"title": f"Erase {customer_id}", "active": "customers", "customer_id": customer_id}
    if text(form, "confirm") != customer_id:
        context["error"] = "Type the customer id exactly to confirm the erasure."
        return render(request, "erase.html", context, status_code=422)
    try:
        body = EraseRequest(reason=text(form, "reason") or None)
    except ValidationError:
        context["error"] = "The reason may hold printable text only (at most 500 characters)."
        return render(request, "erase.html", context, status_code=422)
    done = await console(request).services.erasure.erase(caller, customer_id, body)
    return render(request, "erased.html", {"title": "Erased", "active": "customers", "done": done})


@router.get("/lineage/{item_id}")
async def lineage(request: Request, caller: CallerDep, item_id: UUID) -> Response:
    """The item, where it came from and what was derived from it, as a graph."""
    services = console(request).services
    up = await services.lineage.walk(caller, item_id, Direction.ancestors)
    down = await services.lineage.walk(caller, item_id, Direction.descendants)
    return render(
        request,
        "lineage.html",
        {
            "title": f"Lineage of {up.item.name}",
            "active": "customers",
            "item": up.item,
            "graph": layout(up, down),
            "ancestors": up,
            "descendants": down,
        },
    )


@router.get("/audit")
async def audit(
    request: Request,
    caller: CallerDep,
    customer_id: Annotated[str, Query(max_length=128)] = "",
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
) -> Response:
    """A customer's audit entries, newest first: who wrote and read their data, and why."""
    customer_id = customer_id.strip()
    page = None
    notice = None
    if customer_id and not _CUSTOMER.fullmatch(customer_id):
        notice = "Customer ids hold letters, digits and . _ : @ + - only."
    elif customer_id:
        page = await console(request).services.audit.list(
            caller, customer_id, limit=PAGE_SIZE * 2, cursor=cursor
        )
    return render(
        request,
        "audit.html",
        {
            "title": "Audit",
            "active": "audit",
            "customer_id": customer_id,
            "page": page,
            "notice": notice,
            "you": str(caller.key_id) if caller.key_id else None,
        },
    )
