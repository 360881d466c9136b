"""`ccv` as a user runs it: real processes, real servers."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ccvault.cli import app
from ccvault.config import Settings
from serve_support import own_data_dir

CCV = str(Path(sys.executable).with_name("ccv"))
KEY = re.compile(r"default tenant API key \(shown once\): (ccv_\S+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCV_")}
    return {**env, **extra}


class Served:
    """A `ccv serve` process and what it printed."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.port = port
        self.log = data_dir.parent / f"serve-{port}.log"
        self.handle = self.log.open("w")
        self.proc = subprocess.Popen(
            [CCV, "serve", "--port", str(port)],
            env=_clean_env(CCV_DATA_DIR=str(data_dir), CCV_LOG_FORMAT="json"),
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(f"ccv serve did not come up:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.handle.close()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's basetemp (see own_data_dir); its servers are killed at the end."""
    with own_data_dir() as path:
        yield path


def test_serve_with_nothing_configured_starts_embedded_servers_and_prints_a_working_key(
    data_dir: Path,
) -> None:
    served = Served(data_dir, _free_port())
    try:
        served.wait_ready()
        out = served.output()
        assert f"listening on  http://127.0.0.1:{served.port}" in out
        assert "database      postgresql://" in out
        assert "cache         redis://127.0.0.1:" in out
        assert str(data_dir.resolve()) in out
        key = KEY.search(out)
        assert key, out
        base = f"http://127.0.0.1:{served.port}"
        headers = {"Authorization": f"Bearer {key.group(1)}"}
        put = httpx.put(
            f"{base}/v1/profiles/c1/fields/email",
            json={"value": "ada@example.com", "source": "user_provided"},
            headers=headers,
        )
        assert put.status_code == 201, put.text
        got = httpx.get(f"{base}/v1/profiles/c1", headers=headers)
        assert got.json()["fields"]["email"]["value"] == "ada@example.com"
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["checks"]["database"] == "ok"
        assert ready["checks"]["cache"] == "ok"
    finally:
        assert served.stop() == 0, served.output()

    again = Served(data_dir, _free_port())
    try:
        again.wait_ready()
        assert KEY.search(again.output()) is None, "the key must be shown only on first start"
        with_old_key = httpx.get(f"http://127.0.0.1:{again.port}/v1/profiles/c1", headers=headers)
        assert with_old_key.status_code == 200, "data and key survive a restart"
    finally:
        again.stop()


def test_tenant_create_prints_a_key_that_the_api_accepts(settings: Settings) -> None:
    assert settings.database_url
    result = subprocess.run(
        [CCV, "tenant", "create", "cli-tenant-a", "--validation-mode", "strict"],
        env=_clean_env(CCV_DATABASE_URL=settings.database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("ccv_")
    assert "validation mode strict" in result.stderr

    duplicate = subprocess.run(
        [CCV, "tenant", "create", "cli-tenant-a"],
        env=_clean_env(CCV_DATABASE_URL=settings.database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["--help"], ["serve", "worker", "migrate", "tenant"]),
        (["serve", "--help"], ["--host", "--port", "--workers", "--no-worker"]),
        (["worker", "--help"], ["--concurrency", "SIGTERM"]),
        (["tenant", "create", "--help"], ["--validation-mode"]),
    ],
)
def test_help_names_every_option(command: list[str], words: list[str]) -> None:
    result = CliRunner().invoke(app, command, terminal_width=200)
    assert result.exit_code == 0
    for word in words:
        assert word in result.output


def test_settings_read_a_toml_file_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ccv.toml"
    config.write_text('port = 9100\nvalidation_mode = "strict"\ncache = false\n')
    monkeypatch.setenv("CCV_CONFIG", str(config))
    monkeypatch.setenv("CCV_PORT", "9200")
    settings = Settings()
    assert settings.port == 9200
    assert settings.validation_mode == "strict"
    assert settings.cache is False


def test_settings_refuse_a_schedule_that_is_not_cron(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCV_EXPIRE_CRON", "every five minutes")
    with pytest.raises(ValueError, match="not a cron expression"):
        Settings()
