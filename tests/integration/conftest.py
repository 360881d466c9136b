"""Fixtures shared by the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from ccvault.storage.urls import libpq_url, with_database


@pytest.fixture
def fresh_database_url(database_server_url: str) -> Iterator[str]:
    """An empty database on the suite's server (for migrations run from the start),
    dropped afterwards."""
    name = f"ccv_fresh_{uuid.uuid4().hex[:10]}"
    server = libpq_url(database_server_url)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(database_server_url, name)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
