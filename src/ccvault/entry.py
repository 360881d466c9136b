"""The `ccv` console script. The base distribution is only the client, so `ccv` may be
installed without the service's libraries: then it says which extra to install instead of
ending in an ImportError's traceback."""

from __future__ import annotations

import sys

# Distributions only the `server` extra brings; a missing one of these means the extra is
# not installed (any other ImportError is a real bug and keeps its traceback).
SERVER_ONLY = {
    "typer",
    "rich",
    "fastapi",
    "starlette",
    "uvicorn",
    "psycopg",
    "psycopg_pool",
    "alembic",
    "sqlalchemy",
    "pydantic_settings",
    "structlog",
    "prometheus_client",
    "redis",
    "psutil",
    "email_validator",
    "phonenumbers",
    "re2",
    "simpleeval",
    "procrastinate",
    "croniter",
    "tenacity",
    "pydantic_ai",
    "openai",
}


def main() -> None:
    """Run the CLI, or explain in one line that this install holds only the client."""
    try:
        from ccvault.cli import app
    except ModuleNotFoundError as missing:
        if (missing.name or "").split(".")[0] not in SERVER_ONLY:
            raise
        print(
            f"ccv needs the vault's server libraries ({missing.name} is missing):"
            " pip install 'ccvault[server]'",
            file=sys.stderr,
        )
        sys.exit(2)
    app()
