"""A real browser for the console tests: Debian's chromium driven by Playwright, against
the app served by uvicorn on a loopback port (in a thread of this process, with a vault of
its own on the suite's servers). Without chromium the browser tests skip, unless
CCV_REQUIRE_BROWSER=1 (CI) makes them fail."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from ccvault.api.app import create_app
from ccvault.config import Settings

VIEWPORT = {"width": 1280, "height": 800}


def chromium_path() -> str:
    """The chromium to drive; skips (or fails under CCV_REQUIRE_BROWSER=1) without one."""
    found = os.environ.get("CCV_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if Path(found).exists():
        return found
    message = "no chromium (apt-get install chromium); CCV_REQUIRE_BROWSER=1 makes this fail"
    if os.environ.get("CCV_REQUIRE_BROWSER", "").lower() in ("1", "on", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(settings: Settings) -> Iterator[str]:
    """The whole app (API and console) on a loopback port; yields its base URL."""
    port = _free_port()
    app = create_app(settings.model_copy(update={"in_process_worker": False}))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, name="console-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the live server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
