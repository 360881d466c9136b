"""Where the benchmark's PostgreSQL comes from, and the throwaway database it runs in.

A server named by CCV_BENCH_DATABASE_URL is used as is (only a fresh database is created
on it); otherwise the embedded server `ccv serve` would start is started in a temporary
directory, so `make bench` works on a machine with nothing running.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from ccvault import migrations
from ccvault.embedded import EmbeddedServers
from ccvault.storage.urls import libpq_url, with_database

ENV_URL = "CCV_BENCH_DATABASE_URL"


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server: `external` (from the environment) or `embedded` (started here)."""

    kind: str
    url: str

    @property
    def display_url(self) -> str:
        """The URL without a password, fit for a report."""
        return redact(self.url)


def redact(url: str) -> str:
    """Drop the password from a URL so results can be shared."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@contextmanager
def postgres_server() -> Iterator[Server]:
    """The configured server, or an embedded one stopped (and its data removed) on exit."""
    configured = os.environ.get(ENV_URL)
    if configured:
        yield Server("external", configured)
        return
    with tempfile.TemporaryDirectory(prefix="ccv-bench-") as tmp:
        servers = EmbeddedServers(Path(tmp))
        try:
            yield Server("embedded", servers.start_postgres())
        finally:
            servers.stop()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A uniquely named, migrated database on the server, dropped on exit whatever happens."""
    name = f"ccv_bench_{uuid.uuid4().hex[:10]}"
    admin_url = libpq_url(server_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = with_database(server_url, name)
        migrations.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
