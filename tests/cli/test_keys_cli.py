"""`ccv tenant list` and `ccv key create|list|revoke` as an operator runs them: real
processes on the suite's database, checked against what the vault then accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ccvault.cli import app
from ccvault.config import Settings
from ccvault.runtime import Vault

CCV = str(Path(sys.executable).with_name("ccv"))


def ccv(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `ccv ARGS` on the suite's database, nothing else configured."""
    assert settings.database_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCV_")}
    return subprocess.run(
        [CCV, *args],
        env={**env, "CCV_DATABASE_URL": settings.database_url, "CCV_API_KEY_CACHE_SECONDS": "7"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a `--json` command printed (it must have succeeded)."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
async def tenant_name(vault: Vault) -> str:
    """A fresh tenant's name."""
    name = f"cli-{uuid.uuid4().hex[:10]}"
    await vault.tenants.create(name, "warn")
    return name


async def test_tenant_list_shows_every_tenant(settings: Settings, tenant_name: str) -> None:
    listed = as_json(ccv(settings, "tenant", "list", "--json"))
    mine = [t for t in listed if t["name"] == tenant_name]
    assert len(mine) == 1
    assert mine[0].keys() == {
        "tenant_id",
        "name",
        "validation_mode",
        "created_at",
        "require_purpose",
        "history_retention_days",
    }
    table = ccv(settings, "tenant", "list")
    assert table.returncode == 0, table.stderr
    assert tenant_name in table.stdout and mine[0]["tenant_id"] in table.stdout
    assert "\x1b[" not in table.stdout, "no colour codes when not on a terminal"


async def test_a_key_created_listed_and_revoked_from_the_cli_is_the_vaults_own(
    settings: Settings, vault: Vault, tenant_name: str
) -> None:
    created = ccv(settings, "key", "create", tenant_name, "--label", "nightly export")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("ccv_")
    caller = await vault.tenants.caller_for_key(key)
    assert caller is not None and caller.name == tenant_name

    keys = as_json(ccv(settings, "key", "list", tenant_name, "--json"))
    assert [k["label"] for k in keys] == [None, "nightly export"]
    assert keys[1]["key_id"] == str(caller.key_id)
    assert keys[1]["last_used_at"] is not None, "resolving the key above used it"
    assert all(k["revoked_at"] is None for k in keys)
    table = ccv(settings, "key", "list", tenant_name)
    assert "nightly export" in table.stdout and key not in table.stdout

    revoked = ccv(settings, "key", "revoke", tenant_name, str(caller.key_id))
    assert revoked.returncode == 0, revoked.stderr
    assert "within 7 s" in revoked.stderr
    assert await vault.tenants.caller_for_key(key) is None
    keys = as_json(ccv(settings, "key", "list", tenant_name, "--json"))
    assert keys[1]["revoked_at"] is not None and keys[0]["revoked_at"] is None

    again = ccv(settings, "key", "revoke", tenant_name, str(caller.key_id))
    assert again.returncode == 1
    assert "no live key" in again.stderr


async def test_key_commands_name_a_missing_tenant_or_a_bad_argument(
    settings: Settings, vault: Vault, tenant_name: str
) -> None:
    for args in (
        ["key", "create", "no-such-tenant"],
        ["key", "list", "no-such-tenant"],
        ["key", "revoke", "no-such-tenant", str(uuid.uuid4())],
    ):
        result = ccv(settings, *args)
        assert result.returncode == 1, args
        assert "no tenant 'no-such-tenant'" in result.stderr
    other, _ = await vault.tenants.create(f"cli-{uuid.uuid4().hex[:10]}", "warn")
    their_key = (await vault.tenants.list_keys(other.tenant_id))[0]
    result = ccv(settings, "key", "revoke", tenant_name, str(their_key.key_id))
    assert result.returncode == 1, "another tenant's key is not this tenant's to revoke"
    assert (await vault.tenants.list_keys(other.tenant_id))[0].revoked_at is None
    assert ccv(settings, "key", "revoke", tenant_name, "not-a-uuid").returncode == 2
    assert ccv(settings, "key", "create", tenant_name, "--label", "").returncode == 2


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["--help"], ["tenant", "key"]),
        (["tenant", "--help"], ["create", "list"]),
        (["key", "--help"], ["create", "list", "revoke"]),
        (["key", "create", "--help"], ["--label", "tenant name"]),
        (["tenant", "list", "--help"], ["--json"]),
    ],
)
def test_help_names_the_key_commands(command: list[str], words: list[str]) -> None:
    result = CliRunner().invoke(app, command, terminal_width=200)
    assert result.exit_code == 0
    for word in words:
        assert word in result.output
