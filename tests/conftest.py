"""Real servers for the suite: embedded PostgreSQL and Valkey started here, or the servers
named by CCV_TEST_DATABASE_URL / CCV_TEST_REDIS_URL (a fresh database is created on them).

Every test gets its own tenant, so tests never see each other's data and need no cleanup.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from answers_seen import AnswerRecorder
from ccvault import migrations
from ccvault.api.app import create_app
from ccvault.config import Settings
from ccvault.embedded import EmbeddedServers
from ccvault.runtime import Vault, open_vault
from ccvault.storage.db import Pool
from ccvault.storage.tenants import TenantStore
from ccvault.storage.urls import libpq_url, with_database

ADMIN_KEY = "test-admin-key"


def _fresh_database(server_url: str) -> tuple[str, str]:
    """Create a uniquely named database on a shared server; returns (url, name)."""
    name = f"ccv_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name), name


@pytest.fixture(scope="session")
def embedded() -> Iterator[EmbeddedServers]:
    """Embedded servers for whatever the environment does not provide.

    Their data lives in a directory of our own, not pytest's tmp_path: pytest prunes old
    basetemp directories, which would pull the data out from under a concurrent run.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="ccv-test-"))
    servers = EmbeddedServers(data_dir)
    yield servers
    servers.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def database_server_url(embedded: EmbeddedServers) -> str:
    """URL of the PostgreSQL server the suite uses (not yet a test database)."""
    return os.environ.get("CCV_TEST_DATABASE_URL") or embedded.start_postgres()


@pytest.fixture(scope="session")
def database_url(database_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session, dropped afterwards."""
    url, name = _fresh_database(database_server_url)
    migrations.upgrade(url)
    yield url
    with psycopg.connect(libpq_url(database_server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url(embedded: EmbeddedServers) -> Iterator[str]:
    """URL of the Redis/Valkey server the suite uses. With CCV_TEST_REDIS_CLUSTER=on, a
    local three-master cluster the session starts (`make test-cluster`)."""
    if os.environ.get("CCV_TEST_REDIS_CLUSTER", "").lower() in ("1", "on", "true", "yes"):
        from cluster_support import local_cluster

        with local_cluster(Path(tempfile.mkdtemp(prefix="ccv-cluster-"))) as cluster:
            yield cluster.url
        return
    yield os.environ.get("CCV_TEST_REDIS_URL") or embedded.start_valkey()


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    """Settings pointing at the suite's servers."""
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        admin_api_key=SecretStr(ADMIN_KEY),
        api_key_cache_seconds=0,
    )


@pytest.fixture(scope="session")
async def vault(settings: Settings) -> AsyncIterator[Vault]:
    """One open vault (pool, stores) shared by the session."""
    opened = await open_vault(settings)
    yield opened
    await opened.close()


@pytest.fixture(scope="session")
def pool(vault: Vault) -> Pool:
    """The session's connection pool."""
    return vault.pool


@pytest.fixture(scope="session")
async def http(vault: Vault) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the app in-process (no key set). When the session ends,
    every answer it got must be declared in the OpenAPI document (answers_seen.py)."""
    app = create_app(vault=vault)
    recorder = AnswerRecorder(app)
    transport = httpx.ASGITransport(app=recorder)
    async with httpx.AsyncClient(transport=transport, base_url="http://vault") as client:
        yield client
    undeclared = recorder.undeclared(app.openapi())
    if undeclared:
        listed = "\n".join(undeclared)
        pytest.fail(f"answers the OpenAPI document does not declare:\n{listed}", pytrace=False)


@pytest.fixture
async def tenant(vault: Vault) -> tuple[uuid.UUID, str]:
    """A fresh tenant: (tenant_id, api_key)."""
    created, key = await TenantStore(vault.pool).create(f"t-{uuid.uuid4().hex}", "warn")
    return created.tenant_id, key


@pytest.fixture
def tenant_id(tenant: tuple[uuid.UUID, str]) -> uuid.UUID:
    """The id of this test's tenant."""
    return tenant[0]


@pytest.fixture
async def api(http: httpx.AsyncClient, tenant: tuple[uuid.UUID, str]) -> httpx.AsyncClient:
    """The in-process client, authenticated as this test's tenant."""
    client = httpx.AsyncClient(
        transport=http._transport,
        base_url="http://vault",
        headers={"Authorization": f"Bearer {tenant[1]}"},
    )
    return client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    """Authorization header carrying the admin key."""
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
async def other_tenant_id(vault: Vault) -> uuid.UUID:
    """A second fresh tenant, for isolation checks."""
    created, _ = await TenantStore(vault.pool).create(f"other-{uuid.uuid4().hex}", "warn")
    return created.tenant_id


@pytest.fixture
async def other_api(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated as a second, unrelated tenant."""
    resp = await http.post(
        "/admin/tenants", json={"name": f"other-{uuid.uuid4().hex[:12]}"}, headers=admin_headers
    )
    assert resp.status_code == 201, resp.text
    async with httpx.AsyncClient(
        transport=http._transport,
        base_url="http://vault",
        headers={"Authorization": f"Bearer {resp.json()['api_key']}"},
    ) as client:
        yield client
