"""The running vault: settings plus the open pool, stores and cache client, and the
services every entry point calls. Built once at start-up, closed at shutdown: the one
place that wires storage to services (entry points see only `vault.services`)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from ccvault.config import Settings
from ccvault.services import Services
from ccvault.services.agents import AgentDirectory
from ccvault.services.asof import AsOfService
from ccvault.services.assets import AssetService
from ccvault.services.audit import AuditService
from ccvault.services.context import ContextService
from ccvault.services.definitions import DefinitionService
from ccvault.services.erasure import ErasureService
from ccvault.services.events import EventService
from ccvault.services.export import ExportService
from ccvault.services.fields import FieldService
from ccvault.services.health import HealthService
from ccvault.services.imports import Importer
from ccvault.services.keys import KeyResolver
from ccvault.services.lineage import LineageService
from ccvault.services.missing import MissingFieldsService
from ccvault.services.operations import OperationsService
from ccvault.services.profiles import ProfileService
from ccvault.services.requirements import RequirementService
from ccvault.services.review import ReviewService
from ccvault.services.scenarios import ScenarioService
from ccvault.services.tenants import TenantService
from ccvault.services.webhooks import WebhookService
from ccvault.storage.cache import ProfileCache
from ccvault.storage.cache_epoch import DurableEpoch, cache_key_secret
from ccvault.storage.db import Pool, open_pool
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.scenarios import ScenarioStore
from ccvault.storage.schema import SchemaStore
from ccvault.storage.tenants import TenantStore


@dataclass
class Vault:
    """Everything a request handler needs, in one place."""

    settings: Settings
    pool: Pool
    profiles: ProfileStore
    schema: SchemaStore
    scenarios: ScenarioStore
    tenants: TenantStore
    keys: KeyResolver
    cache: ProfileCache | None
    services: Services
    # Flushes buffered audit reads and seals pending entries (services/audit.py).
    audit_task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def close(self) -> None:
        """Release connections (the servers themselves are not ours to stop)."""
        if self.audit_task is not None:
            self.audit_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.audit_task
        await self.services.webhooks.close()
        if self.cache is not None:
            await self.cache.close()
        await self.pool.close()


async def open_vault(settings: Settings) -> Vault:
    """Connect to the configured PostgreSQL (and Redis unless the cache is off)."""
    if not settings.database_url:
        raise RuntimeError("CCV_DATABASE_URL is not set (ccv serve sets it for embedded mode)")
    pool = await open_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        pool_timeout=settings.db_pool_timeout_seconds,
        statement_timeout=settings.db_statement_timeout_seconds or None,
    )
    cache = None
    if settings.cache and settings.redis_url:
        epoch = DurableEpoch(pool)
        cache = ProfileCache.from_url(
            settings.redis_url,
            settings.cache_ttl_seconds,
            key_secret=await cache_key_secret(pool),
            durable_epoch=epoch.current,
            raise_durable_epoch=epoch.advance,
            catch_up_durable_epoch=epoch.catch_up,
            cluster=settings.redis_cluster,
        )
        await cache.start()
    tenants = TenantStore(pool)
    profiles = ProfileStore(pool, cache)
    schema = SchemaStore(pool)
    scenarios = ScenarioStore(pool)
    keys = KeyResolver(tenants, settings.api_key_cache_seconds)
    audit = AuditService(pool, reads=settings.audit_reads)
    services = Services(
        profiles=ProfileService(pool, profiles, schema, audit=audit),
        fields=FieldService(profiles, schema, audit=audit),
        assets=AssetService(profiles),
        lineage=LineageService(pool, audit=audit),
        definitions=DefinitionService(schema),
        requirements=RequirementService(schema),
        scenarios=ScenarioService(scenarios),
        review=ReviewService(scenarios),
        missing=MissingFieldsService(schema),
        tenants=TenantService(tenants, settings.validation_mode, keys),
        keys=keys,
        operations=OperationsService(settings, pool, profiles, tenants),
        health=HealthService(settings, pool, cache),
        context=ContextService(profiles, schema, audit=audit),
        imports=Importer(pool, cache),
        erasure=ErasureService(pool, cache),
        export=ExportService(pool, profiles, schema, audit=audit),
        agents=AgentDirectory(pool),
        asof=AsOfService(pool, schema, audit=audit),
        events=EventService(pool),
        audit=audit,
        webhooks=WebhookService(
            pool,
            allow_private=settings.webhook_allow_private,
            timeout=settings.webhook_timeout_seconds,
        ),
    )
    return Vault(
        settings=settings,
        pool=pool,
        profiles=profiles,
        schema=schema,
        scenarios=scenarios,
        tenants=tenants,
        keys=keys,
        cache=cache,
        services=services,
        audit_task=asyncio.create_task(audit.run(), name="ccv-audit"),
    )
