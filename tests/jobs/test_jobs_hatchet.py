"""The optional Hatchet backend. No Hatchet engine can run on our machines (its binaries
come from outside the package registries), so these tests cover what can be checked
without one: how the tasks are registered, the SDK's mock runs against real PostgreSQL,
and the fallback to the PostgreSQL queue when the engine is unreachable."""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from hatchet_sdk import ClientConfig, Hatchet
from hatchet_sdk.config import ClientTLSConfig

from ccvault.config import JobsBackend, Settings
from ccvault.domain.admin import RetentionChange
from ccvault.domain.writes import NewField
from ccvault.jobs import hatchet_backend
from ccvault.jobs.hatchet_backend import SweepInput, register
from ccvault.jobs.queue import EXPIRE_TASK, RETENTION_TASK, build_app
from ccvault.runtime import Vault


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket is


def _offline_client() -> Hatchet:
    """A client that never connects: a syntactically valid token, an address that refuses."""

    def part(data: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    address = f"127.0.0.1:{_closed_port()}"
    claims = {
        "sub": str(UUID(int=0)),
        "server_url": f"http://{address}",
        "grpc_broadcast_address": address,
    }
    token = f"{part({'alg': 'none'})}.{part(claims)}.unsigned"
    return Hatchet(
        config=ClientConfig(
            token=token,
            host_port=address,
            server_url=f"http://{address}",
            tenant_id=str(UUID(int=0)),
            tls_config=ClientTLSConfig(strategy="none"),
        )
    )


def _task_config(task: Any) -> Any:
    return task._task  # the SDK keeps a standalone task's settings here


def test_sweeps_register_with_the_configured_crons_and_retries(settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "expire_cron": "*/7 * * * *",
            "orphan_cron": "*/11 * * * *",
            "retention_cron": "23 3 * * *",
            "job_retry_attempts": 4,
            "job_retry_base_seconds": 30,
        }
    )
    expire, orphans, retention, prune = register(_offline_client(), configured, lambda: None)  # type: ignore[arg-type, return-value]
    assert expire.name == hatchet_backend.EXPIRE_TASK
    assert orphans.name == hatchet_backend.ORPHAN_TASK
    assert retention.name == hatchet_backend.RETENTION_TASK
    assert prune.name == hatchet_backend.PRUNE_EVENTS_TASK
    crons = (
        (expire, "*/7 * * * *"),
        (orphans, "*/11 * * * *"),
        (retention, "23 3 * * *"),
        (prune, "23 * * * *"),
    )
    for task, cron in crons:
        proto = task.to_proto()
        assert list(proto.cron_triggers) == [cron]
        config = _task_config(task)
        assert config.retries == 3  # four attempts in all, as on the PostgreSQL queue
        assert config.backoff_factor == 2.0
        assert config.backoff_max_seconds == 120  # 30 s doubling over three retries


async def test_mock_run_of_the_expiry_task_expires_due_fields(
    vault: Vault, tenant_id: UUID
) -> None:
    past = datetime.now(UTC) - timedelta(seconds=5)
    await vault.profiles.save_field(
        tenant_id, "c1", "otp", NewField(value="1", source="user_provided", expires_at=past)
    )
    expire, *_ = register(_offline_client(), vault.settings, lambda: vault)
    result = await expire.aio_mock_run(SweepInput(tenant_id=tenant_id))
    assert result == {"updated": 1, "fields": 1, "assets": 0}
    again = await expire.aio_mock_run(SweepInput(tenant_id=tenant_id), retry_count=1)
    assert again == {"updated": 0, "fields": 0, "assets": 0}


async def test_mock_run_of_the_retention_task_deletes_old_history(
    vault: Vault, tenant_id: UUID
) -> None:
    await vault.services.tenants.patch(tenant_id, history_retention=RetentionChange(30))
    for value in ("old", "new"):
        await vault.profiles.save_field(
            tenant_id, "c1", "tier", NewField(value=value, source="user_provided")
        )
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET collected_at = now() - interval '31 days'"
            " WHERE tenant_id = %s",
            (tenant_id,),
        )
    _, _, retention, *_ = register(_offline_client(), vault.settings, lambda: vault)
    result = await retention.aio_mock_run(SweepInput(tenant_id=tenant_id))
    assert result == {"updated": 1, "fields": 1, "assets": 0}
    again = await retention.aio_mock_run(SweepInput(tenant_id=tenant_id), retry_count=1)
    assert again == {"updated": 0, "fields": 0, "assets": 0}
    history = await vault.profiles.field_history(tenant_id, "c1", "tier")
    assert [v.value for v in history] == ["new"]


async def test_mock_run_of_the_orphan_task_runs_the_same_sweep(
    vault: Vault, tenant_id: UUID
) -> None:
    source = await vault.profiles.save_field(
        tenant_id, "c1", "email", NewField(value="a@b.co", source="user_provided")
    )
    await vault.profiles.save_field(
        tenant_id,
        "c1",
        "domain",
        NewField(
            value="b.co",
            source="system_inferred",
            source_item_id=str(source.id),
            source_item_type="profile_field",
        ),
    )
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET deleted_at = now() WHERE id = %s", (source.id,)
        )
    _, orphans, *_ = register(_offline_client(), vault.settings, lambda: vault)
    assert await orphans.aio_mock_run(SweepInput(tenant_id=tenant_id)) == {
        "updated": 1,
        "fields": 1,
        "assets": 0,
    }
    history = await vault.profiles.field_history(tenant_id, "c1", "domain")
    assert history[0].status == "orphaned"


async def test_unreachable_engine_is_detected_quickly(settings: Settings) -> None:
    offline = settings.model_copy(update={"hatchet_host_port": f"127.0.0.1:{_closed_port()}"})
    assert await hatchet_backend.engine_reachable(offline) is False


async def test_without_an_engine_the_postgres_queue_keeps_the_schedules(
    settings: Settings,
) -> None:
    # A worker that finds the engine away builds the queue with the periodic sweeps.
    app = build_app(settings, periodic=True)
    scheduled = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert EXPIRE_TASK in scheduled
    assert scheduled[RETENTION_TASK] == settings.retention_cron == "23 3 * * *"
    hatchet_owned = build_app(settings, periodic=False)
    assert not hatchet_owned.periodic_registry.periodic_tasks


async def test_api_serves_and_readyz_says_degraded_while_the_engine_is_unreachable(
    vault: Vault, api: httpx.AsyncClient, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline = vault.settings.model_copy(
        update={
            "jobs_backend": JobsBackend.hatchet,
            "hatchet_host_port": f"127.0.0.1:{_closed_port()}",
        }
    )
    monkeypatch.setattr(vault, "settings", offline)
    monkeypatch.setattr(vault.services.health, "settings", offline)
    put = await api.put(
        "/v1/profiles/c1/fields/tier", json={"value": "gold", "source": "user_provided"}
    )
    assert put.status_code == 201
    assert (await api.get("/v1/profiles/c1")).status_code == 200
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["checks"]["jobs"] == "degraded"
    assert "hatchet engine unreachable" in body["details"]["jobs"]
    assert "due jobs on the PostgreSQL queue" in body["details"]["jobs"]
