"""Alembic environment and versions, shipped inside the package so `ccv migrate` works anywhere."""

from __future__ import annotations

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    """Build an Alembic config pointing at our packaged scripts and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", "ccvault:migrations")
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (idempotent; serialized by an advisory lock)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Revert migrations down to `revision` (`base` empties the schema)."""
    command.downgrade(alembic_config(database_url), revision)
