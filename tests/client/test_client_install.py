"""The client installs and imports without the server's libraries (DESIGN §8): importing it
pulls in no server-only module, and in a fresh virtualenv holding only the base
distribution (httpx, pydantic) it talks to a live vault."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from ccvault.entry import SERVER_ONLY

ROOT = Path(__file__).resolve().parents[2]
# Top-level modules of the server extra (the list `ccv` itself judges an ImportError by),
# and the parts of ccvault that need them.
SERVER_PARTS = ("api", "storage", "services", "jobs", "extraction", "runtime", "config", "cli")


def loaded_modules(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    shown = subprocess.run(
        [sys.executable, "-c", f"{code}; import json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(shown.stdout))


def test_importing_the_client_pulls_in_no_server_module() -> None:
    # httpx itself imports its CLI's rich and click when they happen to be installed (they
    # are here, for ccv): that is httpx's doing, so its own imports are the baseline.
    baseline = loaded_modules("import httpx, pydantic")
    added = loaded_modules("import ccvault.client") - baseline
    assert not {m for m in added if m.split(".")[0] in SERVER_ONLY}
    ours = {m for m in added if m.startswith("ccvault.")}
    assert not {m for m in ours if m.split(".")[1] in SERVER_PARTS}
    assert "ccvault.domain.models" in ours


SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.util, json, sys
    from ccvault.client import AsyncVault, NotFound, Vault

    base, key = sys.argv[1], sys.argv[2]
    assert importlib.util.find_spec("fastapi") is None, "the server extra is installed"
    with Vault(base, key) as vault:
        written = vault.fields.put("fresh", "email", value="a@b.c", source="user_provided")
        assert vault.profiles.get("fresh").fields["email"].id == written.id
        try:
            vault.fields.get("fresh", "phone")
        except NotFound as error:
            assert error.status == 404
        else:
            raise AssertionError("no NotFound")

    async def main():
        async with AsyncVault(base, key) as vault:
            return [p.customer_id async for p in vault.profiles.iter_all()]

    print(json.dumps({"ids": asyncio.run(main()), "modules": sorted(sys.modules)}))
    """
)


@pytest.mark.fresh_venv
def test_in_a_fresh_virtualenv_with_only_the_base_distribution_the_client_works(
    tmp_path: Path, live: str, key: str
) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--constraint", ROOT / "constraints.txt", ROOT],
        capture_output=True,
        text=True,
        timeout=300,
        env=environ,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    ran = subprocess.run(
        [python, "-c", SCRIPT, live, key],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        cwd=tmp_path,  # not the repo: `src/` must not shadow the installed package
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout)
    assert result["ids"] == ["fresh"]
    assert not {m for m in result["modules"] if m.split(".")[0] in SERVER_ONLY}
    ccv = subprocess.run(
        [env_dir / "bin" / "ccv", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        check=False,
    )
    assert ccv.returncode == 2
    assert ccv.stderr.strip().endswith("pip install 'ccvault[server]'")
    assert "Traceback" not in ccv.stderr
