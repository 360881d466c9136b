"""Webhook shapes (DESIGN §8 "Events"): an endpoint as given and as answered, a delivery
attempt, the signature header, and which addresses count as private."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ccvault.domain.events import EVENT_TYPES
from ccvault.domain.inputs import Input

SIGNATURE_HEADER = "CCV-Signature"
MAX_WEBHOOKS = 20


class NewWebhook(Input):
    """POST /v1/webhooks body."""

    url: Annotated[str, StringConstraints(min_length=8, max_length=2048)]
    """Where events are POSTed: an `http` or `https` URL (loopback and private addresses
    are refused unless the vault allows them, CCV_WEBHOOK_ALLOW_PRIVATE)."""
    types: Annotated[list[str], Field(default_factory=list, max_length=len(EVENT_TYPES))]
    """The event types to deliver; empty: every type."""
    secret: Annotated[str, StringConstraints(min_length=8, max_length=256)]
    """Signs each delivery (`CCV-Signature`); never answered back."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http or https URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials")
        return value

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event type(s): {', '.join(unknown)}")
        return sorted(set(value))


class Webhook(BaseModel):
    """An endpoint as the vault answers it (never with its secret)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    id: UUID
    """The endpoint's id."""
    url: str
    """Where events are POSTed."""
    types: list[str]
    """The event types delivered; empty: every type."""
    created_at: datetime
    """When it was registered."""


class Delivery(BaseModel):
    """One attempt to deliver one event."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    event_id: UUID
    """The event delivered."""
    attempt: int
    """1 for the first attempt, then 2, 3... (retried with exponential backoff)."""
    at: datetime
    """When the attempt was made."""
    status_code: int | None
    """What the endpoint answered; null when no answer came (see `error`)."""
    error: str | None
    """Why the attempt failed (`HTTP 500`, `timeout`, ...); null when delivered."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `CCV-Signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t.body)>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def is_private_address(address: str) -> bool:
    """Loopback, private, link-local, reserved, multicast or unspecified: not the public
    internet (IPv4-mapped IPv6 judged as its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )
