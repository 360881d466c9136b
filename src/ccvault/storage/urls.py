"""Database URL spellings: one libpq URL in settings, adapted for each consumer."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def libpq_url(url: str) -> str:
    """Return a URL psycopg accepts (drops a SQLAlchemy driver suffix if present)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def sqlalchemy_url(url: str) -> str:
    """Return the same URL with SQLAlchemy's psycopg 3 driver named, for Alembic."""
    return "postgresql+psycopg://" + libpq_url(url)[len("postgresql://") :]


def with_database(url: str, dbname: str) -> str:
    """The same server URL naming another database."""
    parts = urlsplit(libpq_url(url))
    return urlunsplit(parts._replace(path="/" + dbname))
