"""The README tells the truth: its settings table is the Settings class, and its API
quickstart runs as written against a real `ccv serve`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest

from ccvault.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CCV = str(Path(sys.executable).with_name("ccv"))
ADMIN_KEY = "readme-admin-key"
# Documented in the table without being a field: it names the file the fields come from.
NOT_FIELDS = {"CCV_CONFIG"}


def section(title: str) -> str:
    """The README's `## title` section, up to the next `## ` heading."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def settings_table() -> dict[str, tuple[str, str]]:
    """Each documented setting name -> (default cell, meaning cell)."""
    rows: dict[str, tuple[str, str]] = {}
    for line in section("Running it").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`CCV_"):
            continue
        for name in re.findall(r"`(CCV_[A-Z0-9_]+)`", cells[0]):
            assert name not in rows, f"{name} is documented twice"
            rows[name] = (cells[1], cells[2])
    return rows


def documented_default(value: Any) -> str:
    """How the table writes a default value."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_settings_table_names_every_setting_and_nothing_else() -> None:
    documented = set(settings_table()) - NOT_FIELDS
    fields = {f"CCV_{name.upper()}" for name in Settings.model_fields}
    missing, extra = sorted(fields - documented), sorted(documented - fields)
    assert (missing, extra) == ([], []), f"not in the README: {missing}; not settings: {extra}"


def test_the_settings_table_gives_each_default_and_a_meaning() -> None:
    table = settings_table()
    wrong = []
    for name, info in Settings.model_fields.items():
        default_cell, meaning = table[f"CCV_{name.upper()}"]
        if f"`{documented_default(info.default)}`" not in default_cell and (
            info.default is not None or "unset" not in default_cell
        ):
            wrong.append(f"CCV_{name.upper()}: default {info.default!r}, README {default_cell}")
        assert meaning, f"CCV_{name.upper()} has no meaning"
    assert wrong == []


# -- the quickstart ---------------------------------------------------------------------


def quickstart_blocks() -> list[str]:
    """The ```sh blocks of the API quickstart, as written."""
    return re.findall(r"```sh\n(.*?)```", section("API quickstart"), re.DOTALL)


def json_documents(text: str) -> list[Any]:
    """Each JSON document curl printed, in order."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while (at := _skip_space(text, at)) < len(text):
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
    return docs


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`ccv serve` on the suite's servers: (its URL, its log file)."""
    assert settings.database_url and settings.redis_url
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCV_")}
    env |= {
        "CCV_DATABASE_URL": settings.database_url,
        "CCV_REDIS_URL": settings.redis_url,
        "CCV_ADMIN_API_KEY": ADMIN_KEY,
        "CCV_DATA_DIR": str(tmp_path / "data"),
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [CCV, "serve", "--port", str(port), "--no-worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_api_quickstart_runs_as_written(served: tuple[str, Path]) -> None:
    url, log = served
    created = httpx.post(
        f"{url}/admin/tenants",
        json={"name": f"readme-{uuid.uuid4().hex[:8]}"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert created.status_code == 201, created.text
    env = {**os.environ, "CCV_URL": url, "CCV_KEY": created.json()["api_key"]}
    outputs = []
    for block in quickstart_blocks():
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{block}\n{result.stdout}\n{result.stderr}"
        assert result.stderr == ""
        outputs.append(json_documents(result.stdout))

    profile, phone, read, (definition, requirement), missing, (dob, after) = outputs
    assert [len(docs) for docs in (profile, phone, read, missing)] == [1, 1, 1, 1]
    assert profile[0]["customer_id"] == "cust-42"
    assert profile[0]["channel_identities"][0]["channel_user_id"] == "ada@example.com"
    assert phone[0]["value"] == "+442079460958"
    assert phone[0]["status"] == "active"
    assert read[0]["fields"]["phone"]["value"] == "+442079460958"
    assert (definition["name"], definition["value_type"]) == ("date_of_birth", "date")
    assert (requirement["field_name"], requirement["origin"]) == ("date_of_birth", "manual")
    assert missing[0]["can_proceed"] is False
    assert [m["field_name"] for m in missing[0]["missing"]] == ["date_of_birth"]
    assert missing[0]["missing"][0]["collection_prompt"] == "What is your date of birth?"
    assert dob["value"] == "1990-02-14"
    assert after == {"can_proceed": True, "missing": []}

    # One access line per request: the admin call and each curl (the server writes a
    # line when its event loop's turn ends, so the last may still be on its way).
    requests = 1 + sum(block.count("curl ") for block in quickstart_blocks())
    deadline = time.monotonic() + 10
    while len(access := access_lines(log)) < requests and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(access) == requests, [(a["method"], a["route"], a["status"]) for a in access]
    assert "cust-42" not in log.read_text(), "the server logged a customer id"


def access_lines(log: Path) -> list[dict[str, Any]]:
    """The access lines the server has written so far."""
    lines = (json.loads(raw) for raw in log.read_text().splitlines() if raw.startswith("{"))
    return [line for line in lines if line.get("logger") == "ccvault.access"]
