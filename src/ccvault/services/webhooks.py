"""Webhooks (DESIGN §8 "Events"): endpoints per tenant, and the delivery of one event to
one endpoint, signed, with every attempt logged. Deliveries are queued by the event
sequencer (migration 0024) and run as jobs (jobs/queue.py), which retry a failed attempt
with exponential backoff up to CCV_WEBHOOK_ATTEMPTS."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import structlog

from ccvault.domain.caller import Caller
from ccvault.domain.errors import InvalidInput, Problem
from ccvault.domain.webhooks import (
    SIGNATURE_HEADER,
    Delivery,
    NewWebhook,
    Webhook,
    is_private_address,
    signature,
)
from ccvault.storage import webhooks as webhooks_sql
from ccvault.storage.db import Pool

log = structlog.get_logger("ccvault.webhooks")
MAX_DELIVERIES = 1000


class DeliveryFailed(Exception):
    """An attempt failed in a way worth retrying (the job queue retries it)."""


async def _private_addresses(host: str) -> bool:
    """Whether `host` is, or resolves to, a non-public address (a name that does not
    resolve is not: delivering to it fails and is logged)."""
    try:
        return is_private_address(host)
    except ValueError:
        pass  # a name, not an address
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return any(is_private_address(str(info[4][0])) for info in infos)


class WebhookService:
    """Registers endpoints and delivers events to them."""

    def __init__(self, pool: Pool, *, allow_private: bool, timeout: float) -> None:
        self._pool = pool
        self._allow_private = allow_private
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None

    async def create(self, caller: Caller, new: NewWebhook) -> Webhook:
        """Register an endpoint; 422 for a private address unless allowed."""
        host = urlsplit(new.url).hostname or ""
        if not self._allow_private and await _private_addresses(host):
            raise InvalidInput(
                "Webhook URLs must reach a public address.",
                [
                    Problem(
                        ("body", "url"),
                        "loopback and private addresses are refused (CCV_WEBHOOK_ALLOW_PRIVATE)",
                        "private_address",
                    )
                ],
            )
        return await webhooks_sql.create(self._pool, caller.tenant_id, uuid.uuid4(), new)

    async def list_all(self, caller: Caller) -> list[Webhook]:
        """The caller's endpoints."""
        return await webhooks_sql.list_all(self._pool, caller.tenant_id)

    async def delete(self, caller: Caller, webhook_id: UUID) -> None:
        """Remove an endpoint (queued deliveries to it are dropped when they run)."""
        await webhooks_sql.delete(self._pool, caller.tenant_id, webhook_id)

    async def deliveries(
        self, caller: Caller, webhook_id: UUID, limit: int = MAX_DELIVERIES
    ) -> list[Delivery]:
        """The endpoint's attempts, newest first."""
        return await webhooks_sql.deliveries(self._pool, caller.tenant_id, webhook_id, limit)

    async def deliver(
        self, tenant_id: UUID, webhook_id: UUID, event_id: UUID, attempt: int
    ) -> bool:
        """POST one event to one endpoint, signed, and log the attempt. True when
        delivered (2xx); False when there is nothing to do (endpoint deleted, event
        erased or pruned) or nothing retrying would change; DeliveryFailed otherwise."""
        pending = await webhooks_sql.load_delivery(self._pool, tenant_id, webhook_id, event_id)
        if pending is None:
            return False
        status, error = await self._post(pending, event_id, attempt)
        await webhooks_sql.record_attempt(
            self._pool, tenant_id, webhook_id, event_id, attempt, status, error
        )
        if error is None:
            return True
        if error == "private address refused":
            return False
        raise DeliveryFailed(error)

    async def _post(
        self, pending: webhooks_sql.PendingDelivery, event_id: UUID, attempt: int
    ) -> tuple[int | None, str | None]:
        host = urlsplit(pending.url).hostname or ""
        # Checked again here: a name may resolve elsewhere now than when registered.
        if not self._allow_private and await _private_addresses(host):
            return None, "private address refused"
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(pending.secret, int(time.time()), pending.body),
            "CCV-Event-Id": str(event_id),
            "CCV-Attempt": str(attempt),
        }
        try:
            resp = await self._client().post(pending.url, content=pending.body, headers=headers)
        except httpx.TimeoutException:
            return None, "timeout"
        except httpx.HTTPError as exc:
            return None, f"request failed: {type(exc).__name__}"
        if 200 <= resp.status_code < 300:
            return resp.status_code, None
        return resp.status_code, f"HTTP {resp.status_code}"

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # No redirects: a 3xx is an answer (a failed one), not somewhere else to post.
            self._http = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
        return self._http

    async def close(self) -> None:
        """Close the HTTP connections kept for deliveries."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
