"""Where the benchmark's PostgreSQL and Redis come from, and the throwaway database.

A server named by CCV_BENCH_DATABASE_URL is used as is (only a fresh database is created
on it); otherwise the embedded server `ccv serve` would start is started in a temporary
directory, so `make bench` works on a machine with nothing running. Likewise for Redis:
CCV_BENCH_REDIS_URL, else an embedded Valkey (the cache benchmark only writes keys of its
own fresh tenants, so a shared server is safe to use).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import AsyncConnection, sql

from ccvault import migrations
from ccvault.embedded import EmbeddedServers
from ccvault.storage.urls import libpq_url, with_database

ENV_URL = "CCV_BENCH_DATABASE_URL"
REDIS_ENV_URL = "CCV_BENCH_REDIS_URL"


@dataclass(frozen=True)
class Server:
    """A PostgreSQL or Redis server: `external` (from the environment) or `embedded`."""

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
def redis_server() -> Iterator[Server]:
    """The configured Redis, or an embedded Valkey stopped (and its data removed) on exit."""
    configured = os.environ.get(REDIS_ENV_URL)
    if configured:
        yield Server("external", configured)
        return
    with tempfile.TemporaryDirectory(prefix="ccv-bench-valkey-") as tmp:
        servers = EmbeddedServers(Path(tmp))
        try:
            yield Server("embedded", servers.start_valkey())
        finally:
            servers.stop_valkey()


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


async def server_info(conn: AsyncConnection[Any], server: Server) -> dict[str, Any]:
    """What the numbers depend on: version, durability settings and how we connect."""
    cur = await conn.execute(
        "SELECT current_setting('server_version'), current_setting('synchronous_commit'),"
        " current_setting('fsync'), current_setting('shared_buffers'), current_setting('jit')"
    )
    row = await cur.fetchone()
    assert row is not None
    host = conn.info.host
    return {
        "kind": server.kind,
        "url": server.display_url,
        "transport": "unix socket" if host.startswith("/") else f"tcp {host}:{conn.info.port}",
        "server_version": row[0],
        "synchronous_commit": row[1],
        "fsync": row[2],
        "shared_buffers": row[3],
        "jit": row[4],
    }
