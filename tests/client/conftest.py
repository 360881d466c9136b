"""A live vault for the client's tests: `ccv serve` (a real process, real sockets) on the
suite's PostgreSQL and Redis, and a fresh tenant (its API key) per test."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from ccvault.client import AsyncVault, Vault
from ccvault.config import Settings
from serve_support import Served, clean_env, free_port, own_data_dir


@pytest.fixture(scope="session")
def live_admin_key() -> str:
    """The served vault's operator key."""
    return secrets.token_urlsafe(16)


@pytest.fixture(scope="session")
def live(settings: Settings, live_admin_key: str) -> Iterator[str]:
    """Base URL of `ccv serve` on the suite's servers."""
    assert settings.database_url and settings.redis_url
    with own_data_dir() as data_dir:
        env = clean_env(
            CCV_DATA_DIR=str(data_dir),
            CCV_DATABASE_URL=settings.database_url,
            CCV_REDIS_URL=settings.redis_url,
            CCV_ADMIN_API_KEY=live_admin_key,
            CCV_LOG_FORMAT="json",
        )
        server = Served(data_dir, free_port(), "--no-worker", env=env)
        try:
            server.wait_ready()
            yield server.base
        finally:
            server.kill_everything()


def new_tenant(live: str, admin_key: str, mode: str = "warn") -> tuple[uuid.UUID, str]:
    """A fresh tenant of the served vault: (tenant_id, API key)."""
    answer = httpx.post(
        f"{live}/admin/tenants",
        json={"name": f"client-{uuid.uuid4().hex[:12]}", "validation_mode": mode},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    return uuid.UUID(created["tenant_id"]), str(created["api_key"])


@pytest.fixture
def live_tenant(live: str, live_admin_key: str) -> tuple[uuid.UUID, str]:
    """This test's tenant of the served vault (warn mode): (tenant_id, API key)."""
    return new_tenant(live, live_admin_key)


@pytest.fixture
def key(live_tenant: tuple[uuid.UUID, str]) -> str:
    """This test's tenant's API key."""
    return live_tenant[1]


@pytest.fixture
async def avault(live: str, key: str) -> AsyncIterator[AsyncVault]:
    """The async client, as this test's tenant."""
    async with AsyncVault(live, key) as client:
        yield client


@pytest.fixture
def svault(live: str, key: str) -> Iterator[Vault]:
    """The blocking client, as this test's tenant."""
    with Vault(live, key) as client:
        yield client
