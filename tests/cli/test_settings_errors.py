"""Settings are checked when a command starts: one line per problem on stderr and exit
status 2, never a traceback; the CCV_CONFIG file must exist and hold only known keys."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ccvault import __version__
from ccvault.cli import app
from ccvault.config import LogFormat, Settings, SettingsError, load_settings

CCV = str(Path(sys.executable).with_name("ccv"))


@pytest.fixture(autouse=True)
def no_ccv_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start every test from an environment without CCV_* variables, and leave none of
    the test's own behind (monkeypatch then puts the original ones back)."""
    for name in list(os.environ):
        if name.upper().startswith("CCV_"):
            monkeypatch.delenv(name)
    yield
    for name in list(os.environ):
        if name.upper().startswith("CCV_"):
            del os.environ[name]


def run_ccv(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `ccv` entry point, as a user runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("CCV_")}
    return subprocess.run(
        [CCV, *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def problems(**env: str) -> list[str]:
    """The lines load_settings reports for this environment."""
    for name, value in env.items():
        os.environ[name] = value
    with pytest.raises(SettingsError) as caught:
        load_settings()
    return caught.value.problems


def test_a_bad_value_is_one_line_and_exit_status_2() -> None:
    result = run_ccv("migrate", CCV_PORT="70000")
    assert result.returncode == 2
    assert result.stderr == "CCV_PORT: must be ≤ 65535 (got 70000)\n"
    assert result.stdout == ""


def test_every_bad_value_gets_its_own_line() -> None:
    assert problems(
        CCV_PORT="0",
        CCV_CACHE="maybe",
        CCV_VALIDATION_MODE="lenient",
        CCV_LOG_LEVEL="LOUD",
        CCV_EXPIRE_CRON="every five minutes",
        CCV_DB_POOL_MAX="ten",
        CCV_ORPHAN_PAUSE="-1",
    ) == [
        "CCV_CACHE: must be on or off (true/false, yes/no, 1/0) (got maybe)",
        "CCV_PORT: must be ≥ 1 (got 0)",
        "CCV_VALIDATION_MODE: must be one of 'strict', 'warn' or 'disabled' (got lenient)",
        "CCV_DB_POOL_MAX: must be a whole number (got ten)",
        "CCV_EXPIRE_CRON: not a cron expression (got every five minutes)",
        "CCV_ORPHAN_PAUSE: must be ≥ 0 (got -1)",
        "CCV_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (got LOUD)",
    ]


@pytest.mark.parametrize(
    "command",
    [["serve"], ["worker"], ["migrate"], ["tenant", "create", "acme"]],
)
def test_every_command_that_reads_settings_refuses_them_in_one_line(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCV_WORKER_CONCURRENCY", "0")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2
    assert result.stderr == "CCV_WORKER_CONCURRENCY: must be ≥ 1 (got 0)\n"
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unknown_keys_in_the_toml_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "ccv.toml"
    config.write_text('prot = 9000\ncache_ttl = 60\nvalidation_mode = "strict"\n')
    result = run_ccv("migrate", CCV_CONFIG=str(config))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"prot in {config}: unknown setting (did you mean port?)",
        f"cache_ttl in {config}: unknown setting (did you mean cache_ttl_seconds?)",
    ]


def test_a_bad_value_in_the_toml_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "ccv.toml"
    config.write_text("port = 70000\nadmin_api_key = 12345\n")
    assert problems(CCV_CONFIG=str(config)) == [
        f"port in {config}: must be ≤ 65535 (got 70000)",
        f"admin_api_key in {config}: must be a string (got ***)",  # secrets never shown
    ]


def test_the_environment_still_wins_over_the_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "ccv.toml"
    config.write_text("port = 70000\n")
    os.environ["CCV_CONFIG"] = str(config)
    os.environ["CCV_PORT"] = "8100"
    assert load_settings().port == 8100


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = run_ccv("migrate", CCV_CONFIG=str(missing))
    assert result.returncode == 2
    assert result.stderr == f"CCV_CONFIG: no such file: {missing}\n"
    assert problems(CCV_CONFIG=str(tmp_path)) == [f"CCV_CONFIG: not a file: {tmp_path}"]


def test_a_config_file_that_is_not_toml_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "ccv.toml"
    config.write_text("port = \n")
    [line] = problems(CCV_CONFIG=str(config))
    assert line.startswith(f"CCV_CONFIG: {config} is not valid TOML: ")


def test_unknown_ccv_environment_variables_are_ignored() -> None:
    """Decided: only the file is strict. A deployment's environment may hold CCV_*
    variables of other tools or other versions, and refusing them would stop a pod."""
    os.environ["CCV_SOMETHING_ELSE"] = "1"
    assert load_settings().port == 8000


def test_log_level_accepts_any_case_and_log_format_its_three_words() -> None:
    os.environ["CCV_LOG_LEVEL"] = "debug"
    os.environ["CCV_LOG_FORMAT"] = "json"
    settings = load_settings()
    assert settings.log_level == "DEBUG"
    assert settings.log_format is LogFormat.json
    assert problems(CCV_LOG_FORMAT="xml") == [
        "CCV_LOG_FORMAT: must be one of 'auto', 'json' or 'console' (got xml)"
    ]


def test_the_hatchet_backend_without_its_extra_is_refused_at_start(tmp_path: Path) -> None:
    blocked = "import sys; sys.modules['hatchet_sdk'] = None; from ccvault.cli import app; app()"
    result = subprocess.run(
        [sys.executable, "-c", blocked, "migrate"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CCV_")},
            "CCV_JOBS_BACKEND": "hatchet",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "CCV_JOBS_BACKEND: hatchet needs the [hatchet] extra: install ccvault[hatchet]"
        " (got hatchet)\n"
    )


def test_version_option_and_command_print_the_version() -> None:
    for args in (["--version"], ["version"]):
        result = run_ccv(*args)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{__version__}\n"
    helped = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert "--version" in helped.output


def test_settings_class_defaults_load_without_any_environment() -> None:
    assert load_settings() == Settings()
