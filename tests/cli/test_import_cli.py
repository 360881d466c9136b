"""`ccv import FILE --tenant NAME` and `ccv export --tenant NAME` as an operator runs them:
real processes on the suite's database; export → import round-trips, and the cache of a
running server never serves a profile the import changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from ccvault.config import Settings
from ccvault.runtime import Vault

CCV = str(Path(sys.executable).with_name("ccv"))


def ccv(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `ccv ARGS` on the suite's database, no cache configured (as an operator's shell)."""
    assert settings.database_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCV_")}
    return subprocess.run(
        [CCV, *args],
        env={**env, "CCV_DATABASE_URL": settings.database_url},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
async def tenant_name(vault: Vault) -> str:
    name = f"imp-{uuid.uuid4().hex[:10]}"
    await vault.tenants.create(name, "strict")
    return name


LINES = [
    {
        "customer_id": "cli-1",
        "fields": {
            "email": {"value": "Ana@Example.COM", "value_type": "email", "verified": True},
            "plan": "gold",
        },
        "channel_identities": [{"channel": "sms", "channel_user_id": "+15550100"}],
        "consents": {"marketing_email": True},
    },
    {"customer_id": "cli-2", "fields": {"seats": 3}},
    {"customer_id": "cli-3", "fields": {"email": {"value": "nope", "value_type": "email"}}},
]


def write_lines(path: Path, lines: list[object]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


async def test_import_then_export_round_trips(
    settings: Settings, tenant_name: str, vault: Vault, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "crm.ndjson", LINES)
    imported = ccv(settings, "import", str(source), "--tenant", tenant_name)
    assert imported.returncode == 1, "a refused line makes the exit status 1"
    summary = json.loads(imported.stdout)
    assert (summary["profiles"], summary["fields"], summary["failed"]) == (2, 3, 1)
    assert [e["line"] for e in summary["errors"]] == [3]
    assert "\x1b[" not in imported.stderr, "no progress bar when stderr is not a terminal"

    exported = ccv(settings, "export", "--tenant", tenant_name)
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [line["customer_id"] for line in lines] == ["cli-1", "cli-2"]
    assert lines[0]["fields"]["email"]["value"] == "Ana@example.com"
    assert lines[0]["channel_identities"][0]["channel_user_id"] == "+15550100"

    other = f"imp-{uuid.uuid4().hex[:10]}"
    await vault.tenants.create(other, "strict")
    again = ccv(settings, "import", "-", "--tenant", other, stdin=exported.stdout)
    assert again.returncode == 0, again.stderr
    second = ccv(settings, "export", "--tenant", other)
    assert second.stdout == exported.stdout
    # The same file once more: nothing new.
    third = ccv(settings, "import", "-", "--tenant", other, stdin=exported.stdout)
    assert json.loads(third.stdout)["fields"] == 0


async def test_an_unknown_tenant_or_file_is_refused(
    settings: Settings, tenant_name: str, tmp_path: Path
) -> None:
    source = write_lines(tmp_path / "crm.ndjson", LINES[:1])
    unknown = ccv(settings, "import", str(source), "--tenant", "no-such-tenant")
    assert unknown.returncode == 1 and "no tenant" in unknown.stderr
    missing = ccv(settings, "import", str(tmp_path / "absent.ndjson"), "--tenant", tenant_name)
    assert missing.returncode == 2 and "no file" in missing.stderr
    assert ccv(settings, "export", "--tenant", "no-such-tenant").returncode == 1


async def test_a_running_server_never_serves_what_an_import_replaced(
    settings: Settings,
    vault: Vault,
    api: httpx.AsyncClient,
    tenant_id: uuid.UUID,
    tmp_path: Path,
) -> None:
    """The CLI has no cache configured: it raises the durable epoch, which the server's
    cache lifts to before it serves another entry (within its sync interval)."""
    put = await api.put(
        "/v1/profiles/cached/fields/tier", json={"value": "gold", "source": "user_provided"}
    )
    assert put.status_code == 201
    assert (await api.get("/v1/profiles/cached")).json()["fields"]["tier"]["value"] == "gold"
    name = await vault.tenants.list_tenants()
    tenant = next(t.name for t in name if t.tenant_id == tenant_id)
    source = write_lines(
        tmp_path / "x.ndjson", [{"customer_id": "cached", "fields": {"tier": "silver"}}]
    )
    assert ccv(settings, "import", str(source), "--tenant", tenant).returncode == 0
    assert vault.cache is not None
    await vault.cache.sync_epoch()  # what the server's syncer does once a second
    assert (await api.get("/v1/profiles/cached")).json()["fields"]["tier"]["value"] == "silver"
