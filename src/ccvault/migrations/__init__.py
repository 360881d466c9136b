"""Alembic environment and versions, shipped inside the package so `ccv migrate` works anywhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (with SQLAlchemy) is imported where it is used: it is half of `ccv`'s start-up
# time, and commands such as `ccv mcp` never migrate anything.


def alembic_config(database_url: str) -> Config:
    """Build an Alembic config pointing at our packaged scripts and the given database."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "ccvault:migrations")
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (idempotent; serialized by an advisory lock)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Revert migrations down to `revision` (`base` empties the schema)."""
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)
