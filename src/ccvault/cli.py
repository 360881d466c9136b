"""`ccv`: run the vault, its migrations and its tenants from the command line."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from typing import Annotated

import typer
from rich.console import Console

from ccvault import __version__, migrations
from ccvault.config import Settings, SettingsError, ValidationMode, load_settings
from ccvault.embedded import EmbeddedServers, EmbeddedUnavailable

app = typer.Typer(
    help="Customer Context Vault: verified customer facts for AI agents.",
    no_args_is_help=True,
    add_completion=False,
)
tenant_app = typer.Typer(help="Manage tenants and their API keys.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
out = Console(stderr=True, highlight=False, soft_wrap=True)
DEFAULT_TENANT = "default"
# Exit status for a configuration the service cannot start with (as for a usage error).
BAD_CONFIGURATION = 2


def _print_version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Customer Context Vault: verified customer facts for AI agents."""


def _settings() -> Settings:
    """The settings, or one line per problem on stderr and exit status 2 (not a traceback)."""
    try:
        return load_settings()
    except SettingsError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise typer.Exit(BAD_CONFIGURATION) from None


def _redact(url: str) -> str:
    """The URL without a password, for start-up lines."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{host}" if ":" in creds else url


def _resolve_servers(settings: Settings, *, with_cache: bool) -> tuple[Settings, EmbeddedServers]:
    """Fill in embedded server URLs for whatever is not configured, and export them so
    worker processes see the same servers."""
    servers = EmbeddedServers(settings.data_dir)
    updates: dict[str, str] = {}
    try:
        if not settings.database_url:
            out.print(f"[dim]starting embedded PostgreSQL in {settings.data_dir / 'postgres'}[/]")
            updates["database_url"] = servers.start_postgres()
        if with_cache and settings.cache and not settings.redis_url:
            out.print(f"[dim]starting embedded Valkey in {settings.data_dir / 'valkey'}[/]")
            updates["redis_url"] = servers.start_valkey()
    except EmbeddedUnavailable as exc:
        servers.stop()
        print(exc, file=sys.stderr)
        raise typer.Exit(BAD_CONFIGURATION) from None
    for key, value in updates.items():
        os.environ[f"CCV_{key.upper()}"] = value
    return settings.model_copy(update=updates), servers


async def _ensure_default_tenant(settings: Settings) -> str | None:
    """Create the `default` tenant on first start; its key is returned (and shown) once."""
    from ccvault.storage.db import open_pool
    from ccvault.storage.tenants import TenantStore

    assert settings.database_url
    pool = await open_pool(settings.database_url, min_size=1, max_size=1)
    try:
        tenants = TenantStore(pool)
        if await tenants.get_by_name(DEFAULT_TENANT) is not None:
            return None
        _, key = await tenants.create(DEFAULT_TENANT, settings.validation_mode.value)
        return key
    finally:
        await pool.close()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to bind (CCV_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on (CCV_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="API processes sharing DB and cache")] = 1,
    worker: Annotated[
        bool,
        typer.Option(
            help="run background jobs in the API processes (--no-worker: "
            "separate `ccv worker` pods run them)"
        ),
    ] = True,
) -> None:
    """Run the HTTP API; with nothing configured, on embedded PostgreSQL and Valkey."""
    from ccvault.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    settings, _servers = _resolve_servers(settings, with_cache=True)
    assert settings.database_url
    out.print("[dim]applying migrations[/]")
    migrations.upgrade(settings.database_url)
    new_key = asyncio.run(_ensure_default_tenant(settings))
    if settings.admin_api_key is None:
        admin_key = "ccv_admin_" + secrets.token_urlsafe(24)
        os.environ["CCV_ADMIN_API_KEY"] = admin_key
    else:
        admin_key = None
    os.environ["CCV_IN_PROCESS_WORKER"] = "1" if worker else "0"
    bind_host = host or settings.host
    bind_port = port or settings.port
    out.print(f"[bold]Customer Context Vault {__version__}[/]")
    out.print(f"  listening on  http://{bind_host}:{bind_port}  (docs at /docs)")
    out.print(f"  database      {_redact(settings.database_url)}")
    cache = _redact(settings.redis_url) if settings.cache and settings.redis_url else "off"
    out.print(f"  cache         {cache}")
    out.print(f"  data dir      {settings.data_dir.resolve()}")
    out.print(
        f"  workers       {workers} API process(es); jobs "
        f"{'in process' if worker else 'left to `ccv worker`'}"
    )
    if new_key:
        out.print(f"  [bold green]default tenant API key (shown once): {new_key}[/]")
    if admin_key:
        out.print(f"  admin API key for this run (set CCV_ADMIN_API_KEY to fix one): {admin_key}")

    import uvicorn

    uvicorn.run(
        "ccvault.api.app:create_server_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


@app.command("worker")
def worker_command(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="jobs run at once (CCV_WORKER_CONCURRENCY)")
    ] = None,
) -> None:
    """Run background jobs (expiry, orphan detection, extraction) until SIGTERM; the job
    in hand finishes before the process exits."""
    from ccvault.jobs.queue import run_worker
    from ccvault.logs import configure_logging
    from ccvault.runtime import open_vault

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    settings, _servers = _resolve_servers(settings, with_cache=True)
    assert settings.database_url
    migrations.upgrade(settings.database_url)
    out.print(
        f"worker on {_redact(settings.database_url)}; expiry '{settings.expire_cron}', "
        f"orphans '{settings.orphan_cron}'"
    )

    async def main() -> None:
        vault = await open_vault(settings)
        try:
            await run_worker(vault, concurrency=concurrency, name=f"ccv-worker-{os.getpid()}")
        finally:
            await vault.close()

    asyncio.run(main())


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Apply database migrations (embedded PostgreSQL when CCV_DATABASE_URL is unset)."""
    settings, _servers = _resolve_servers(_settings(), with_cache=False)
    assert settings.database_url
    migrations.upgrade(settings.database_url, revision)
    out.print(f"migrated {_redact(settings.database_url)} to {revision}")


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Argument(help="unique tenant name")],
    validation_mode: Annotated[
        ValidationMode | None, typer.Option(help="strict | warn | disabled")
    ] = None,
) -> None:
    """Create a tenant and print its API key (shown once; only a hash is stored)."""
    from ccvault.domain.errors import Conflict
    from ccvault.storage.db import open_pool
    from ccvault.storage.tenants import TenantStore

    settings, _servers = _resolve_servers(_settings(), with_cache=False)
    assert settings.database_url
    migrations.upgrade(settings.database_url)
    mode = (validation_mode or settings.validation_mode).value

    async def create() -> tuple[str, str]:
        assert settings.database_url
        pool = await open_pool(settings.database_url, min_size=1, max_size=1)
        try:
            tenant, key = await TenantStore(pool).create(name, mode)
            return str(tenant.tenant_id), key
        finally:
            await pool.close()

    try:
        tenant_id, key = asyncio.run(create())
    except Conflict as exc:
        out.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(1) from None
    out.print(f"tenant {name} ({tenant_id}), validation mode {mode}")
    print(key)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)
