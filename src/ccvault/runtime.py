"""The running vault: settings plus the open pool, stores and cache client, shared by all
routes of one process. Built once at start-up, closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from ccvault.api.auth import KeyResolver
from ccvault.config import Settings
from ccvault.storage.db import Pool, open_pool
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.schema import SchemaStore
from ccvault.storage.tenants import TenantStore


@dataclass
class Vault:
    """Everything a request handler needs, in one place."""

    settings: Settings
    pool: Pool
    profiles: ProfileStore
    schema: SchemaStore
    tenants: TenantStore
    keys: KeyResolver
    redis: aioredis.Redis | None

    async def close(self) -> None:
        """Release connections (the servers themselves are not ours to stop)."""
        if self.redis is not None:
            await self.redis.aclose()
        await self.pool.close()


async def open_vault(settings: Settings) -> Vault:
    """Connect to the configured PostgreSQL (and Redis unless the cache is off)."""
    if not settings.database_url:
        raise RuntimeError("CCV_DATABASE_URL is not set (ccv serve sets it for embedded mode)")
    pool = await open_pool(
        settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
    client = None
    if settings.cache and settings.redis_url:
        client = aioredis.Redis.from_url(
            settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25
        )
    tenants = TenantStore(pool)
    return Vault(
        settings=settings,
        pool=pool,
        profiles=ProfileStore(pool),
        schema=SchemaStore(pool),
        tenants=tenants,
        keys=KeyResolver(tenants, settings.api_key_cache_seconds),
        redis=client,
    )
