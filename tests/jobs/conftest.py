"""Fixtures for the job tests: a database of a test's own.

Tests that run workers need one: a worker's periodic deferrer, the queue tables and the
worker heartbeats must not see other tests' jobs, and an unscoped sweep must see only the
test's own tenants. A fresh migrated database costs well under a second.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from jobs_support import NEVER
from pydantic import SecretStr

from ccvault import migrations
from ccvault.config import Settings
from ccvault.runtime import Vault, open_vault
from ccvault.storage.urls import libpq_url, with_database

ADMIN_KEY = "test-admin-key"


@pytest.fixture
def isolated_settings(database_server_url: str, redis_url: str) -> Iterator[Settings]:
    """Settings on a fresh migrated database of this test's own (dropped afterwards),
    with the periodic sweeps parked and the cache off."""
    name = f"ccv_jobs_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(database_server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(database_server_url, name)
    migrations.upgrade(url)
    yield Settings(
        database_url=url,
        redis_url=redis_url,
        cache=False,
        admin_api_key=SecretStr(ADMIN_KEY),
        api_key_cache_seconds=0,
        expire_cron=NEVER,
        orphan_cron=NEVER,
        retention_cron=NEVER,
        db_pool_min=1,
        db_pool_max=4,
        worker_concurrency=2,
    )
    with psycopg.connect(libpq_url(database_server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def isolated_vault(isolated_settings: Settings) -> AsyncIterator[Vault]:
    """A vault on the test's own database."""
    opened = await open_vault(isolated_settings)
    yield opened
    await opened.close()
