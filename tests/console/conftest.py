"""The console's HTTP tests talk to the app in-process (console routes are not part of
the API's OpenAPI document, so the suite's answer recorder is left out)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from ccvault.api.app import create_app
from ccvault.runtime import Vault
from ccvault.storage.tenants import TenantStore
from console_support import sign_in


@pytest.fixture
async def web(vault: Vault) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of a fresh app (its own sign-in limiter), no session yet."""
    app = create_app(vault=vault)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vault") as client:
        yield client


@pytest.fixture
async def signed_in(web: httpx.AsyncClient, tenant: tuple[uuid.UUID, str]) -> httpx.AsyncClient:
    """The client signed in with this test's tenant key."""
    answer = await sign_in(web, tenant[1])
    assert answer.status_code == 303, answer.text
    return web


@pytest.fixture
async def other_key(vault: Vault) -> str:
    """The key of a second, unrelated tenant."""
    _, key = await TenantStore(vault.pool).create(f"other-{uuid.uuid4().hex}", "warn")
    return key
