"""`ccv serve` as a real process for the lifecycle and HTTP-limit tests, and the process
table checks that find what it left running on its data dir."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

CCV = str(Path(sys.executable).with_name("ccv"))
KEY = re.compile(r"default tenant API key \(shown once\): (ccv_\S+)")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without CCV_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCV_")}
    return {**env, **extra}


class Served:
    """A `ccv serve` process (in a session of its own) and what it printed."""

    def __init__(
        self, data_dir: Path, port: int, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = data_dir.parent / f"serve-{port}-{time.monotonic_ns()}.log"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("w") as handle:
            self.proc = subprocess.Popen(
                [CCV, "serve", "--port", str(port), *args],
                env=env or clean_env(CCV_DATA_DIR=str(data_dir), CCV_LOG_FORMAT="json"),
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 90) -> None:
        """Until /healthz answers; fails with the server's output if it exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=1).is_success:
                    return
            time.sleep(0.2)
        raise AssertionError(f"ccv serve did not come up:\n{self.output()}")

    def output(self) -> str:
        """Everything it printed so far."""
        return self.log.read_text()

    def tree(self) -> list[psutil.Process]:
        """The process and its descendants (the --workers children)."""
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def send(self, sig: int, timeout: float = 60) -> int:
        """Send `sig` and wait for the exit code."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill_everything(self) -> None:
        """Teardown whatever happened: its process group, then what it left on its data dir."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        kill_leftovers(self.data_dir)


@contextlib.contextmanager
def own_data_dir() -> Iterator[Path]:
    """A data dir outside pytest's basetemp: pytest keeps that private to root (the embedded
    PostgreSQL runs as another user when we are root) and prunes it under concurrent runs.
    Whatever runs on it is killed at the end."""
    parent = Path(tempfile.mkdtemp(prefix="ccv-serve-test-"))
    try:
        yield parent / "ccv-data"
    finally:
        kill_leftovers(parent / "ccv-data")
        shutil.rmtree(parent, ignore_errors=True)


def leftovers(data_dir: Path) -> list[psutil.Process]:
    """PostgreSQL and Valkey processes of this data dir: run in it or named in their
    command line (a postmaster names its -D; its children and Valkey run in their dir)."""
    root = str(data_dir.resolve())
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "cwd"]):
        if proc.info["name"] not in ("postgres", "valkey-server"):
            continue
        cwd = proc.info["cwd"] or ""
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cwd == root or cwd.startswith(root + os.sep) or root in cmdline:
            found.append(proc)
    return found


def wait_no_leftovers(data_dir: Path, timeout: float = 15) -> list[psutil.Process]:
    """Leftovers still there after `timeout` (a stopping server takes a moment)."""
    deadline = time.monotonic() + timeout
    while (found := leftovers(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def describe(procs: list[psutil.Process]) -> list[str]:
    """pid and command line, for assertion messages."""
    out = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            out.append(f"{proc.pid} {' '.join(proc.cmdline())}")
    return out


def kill_leftovers(data_dir: Path) -> None:
    """SIGKILL this data dir's servers (only ever ours: matched by our own directory)."""
    for proc in leftovers(data_dir):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(leftovers(data_dir), timeout=10)
