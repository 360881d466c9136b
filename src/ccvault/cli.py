"""`ccv`: run the vault, its migrations and its tenants from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ccvault import __version__, migrations
from ccvault.config import Settings, SettingsError, load_settings
from ccvault.domain.errors import NotFound
from ccvault.domain.models import ValidationMode
from ccvault.domain.writes import KEY_LABEL_PATTERN
from ccvault.embedded import EmbeddedServers, EmbeddedUnavailable

if TYPE_CHECKING:
    from ccvault.domain.admin import CreatedKey
    from ccvault.domain.models import ApiKey, Tenant
    from ccvault.services.tenants import TenantService

KEY_LABEL = re.compile(KEY_LABEL_PATTERN)

app = typer.Typer(
    help="Customer Context Vault: verified customer facts for AI agents.",
    no_args_is_help=True,
    add_completion=False,
)
tenant_app = typer.Typer(help="Manage tenants and their API keys.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
key_app = typer.Typer(
    help="Issue, list and revoke a tenant's API keys (the tenant named by its name).",
    no_args_is_help=True,
)
app.add_typer(key_app, name="key")
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
events_app = typer.Typer(help="The change feed, through the HTTP API.", no_args_is_help=True)
app.add_typer(events_app, name="events")
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


def _resolve_servers(
    settings: Settings, *, with_cache: bool, servers: EmbeddedServers | None = None
) -> tuple[Settings, EmbeddedServers]:
    """Fill in embedded server URLs for whatever is not configured, and export them so
    worker processes see the same servers."""
    servers = servers or EmbeddedServers(settings.data_dir)
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
    from ccvault.services.tenants import tenant_admin

    assert settings.database_url
    async with tenant_admin(settings.database_url, settings.validation_mode) as tenants:
        return await tenants.ensure(DEFAULT_TENANT)


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
    """Run the HTTP API; with nothing configured, on embedded PostgreSQL and Valkey.
    SIGTERM or SIGINT: requests in hand are answered, then the embedded servers stop."""
    from ccvault.logs import configure_logging
    from ccvault.serve import Interrupted, StopSignals, listen_socket, run_uvicorn, uvicorn_config

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    bind_host = host or settings.host
    bind_port = settings.port if port is None else port
    # The port first: when it is taken nothing is started, created or printed.
    try:
        sock = listen_socket(bind_host, bind_port)
    except OSError as exc:
        out.print(f"[red]ccv serve: cannot listen on {bind_host}:{bind_port}: {exc.strerror}[/]")
        raise typer.Exit(1) from None
    servers = EmbeddedServers(settings.data_dir)
    with StopSignals() as stop:
        try:
            settings, _ = _resolve_servers(settings, with_cache=True, servers=servers)
            assert settings.database_url
            stop.check()
            out.print("[dim]applying migrations[/]")
            migrations.upgrade(settings.database_url)
            stop.check()
            new_key = asyncio.run(_ensure_default_tenant(settings))
            admin_key = None
            if settings.admin_api_key is None:
                admin_key = "ccv_admin_" + secrets.token_urlsafe(24)
                os.environ["CCV_ADMIN_API_KEY"] = admin_key
            if settings.session_secret is None:
                # Random per start, but one for every --workers process (a console
                # session signed by one must open on the others).
                os.environ["CCV_SESSION_SECRET"] = secrets.token_urlsafe(32)
            port_bound = sock.getsockname()[1]
            _print_banner(settings, bind_host, port_bound, workers, worker, new_key, admin_key)
            os.environ["CCV_IN_PROCESS_WORKER"] = "1" if worker else "0"
            config = uvicorn_config(settings, bind_host, bind_port, workers)
            run_uvicorn(config, sock, stop)
        except Interrupted as why:
            out.print(f"[dim]stopped by {why} while starting[/]")
        finally:
            sock.close()
            servers.stop()


def _print_banner(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    worker: bool,
    new_key: str | None,
    admin_key: str | None,
) -> None:
    """What `ccv serve` runs on; the default tenant's key on its first start."""
    assert settings.database_url
    out.print(f"[bold]Customer Context Vault {__version__}[/]")
    out.print(f"  listening on  http://{host}:{port}  (docs at /docs)")
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
        f"orphans '{settings.orphan_cron}', retention '{settings.retention_cron}'"
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

    try:
        created = _with_tenants(lambda tenants: tenants.create(name, validation_mode))
    except Conflict as exc:
        out.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(1) from None
    mode = created.validation_mode.value
    out.print(f"tenant {name} ({created.tenant_id}), validation mode {mode}")
    print(created.api_key)


T = TypeVar("T")
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def _with_tenants(work: Callable[[TenantService], Awaitable[T]]) -> T:
    """Run `work` with the tenant service on the configured database (the admin routes'
    own use cases)."""
    from ccvault.services.tenants import tenant_admin

    settings, _servers = _resolve_servers(_settings(), with_cache=False)
    assert settings.database_url
    migrations.upgrade(settings.database_url)
    url = settings.database_url

    async def run() -> T:
        async with tenant_admin(url, settings.validation_mode) as tenants:
            return await work(tenants)

    return asyncio.run(run())


async def _tenant_named(store: TenantService, name: str) -> Tenant:
    tenant = await store.named(name)
    if tenant is None:
        out.print(f"[red]no tenant {name!r}[/]")
        raise typer.Exit(1)
    return tenant


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds")


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(*columns, title=title, title_justify="left", box=None, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    # Piped, the table keeps its natural width: ids must reach a script whole.
    width = None if sys.stdout.isatty() else 10_000
    Console(highlight=False, width=width).print(table)


@tenant_app.command("list")
def tenant_list(as_json: AsJson = False) -> None:
    """List every tenant, oldest first."""
    tenants = _with_tenants(lambda store: store.list_all())
    if as_json:
        print(json.dumps([t.model_dump(mode="json") for t in tenants]))
        return
    rows = [[t.name, str(t.tenant_id), t.validation_mode, _when(t.created_at)] for t in tenants]
    _table("tenants", ["name", "tenant_id", "validation_mode", "created_at"], rows)


@key_app.command("create")
def key_create(
    tenant: Annotated[str, typer.Argument(help="tenant name")],
    label: Annotated[str | None, typer.Option(help="what the key is for (for people)")] = None,
) -> None:
    """Issue another API key for a tenant and print it (shown once; only a hash is kept)."""
    if label is not None and not KEY_LABEL.fullmatch(label):
        out.print("[red]a label is 1 to 100 characters without control characters[/]")
        raise typer.Exit(2)

    async def create(store: TenantService) -> CreatedKey:
        found = await _tenant_named(store, tenant)
        return await store.create_key(found.tenant_id, label)

    issued = _with_tenants(create)
    out.print(f"key {issued.key_id} for tenant {tenant}" + (f" ({label})" if label else ""))
    print(issued.api_key)


@key_app.command("list")
def key_list(
    tenant: Annotated[str, typer.Argument(help="tenant name")], as_json: AsJson = False
) -> None:
    """List a tenant's keys, revoked ones included (never the keys themselves)."""

    async def keys(store: TenantService) -> list[ApiKey]:
        return await store.list_keys((await _tenant_named(store, tenant)).tenant_id)

    found = _with_tenants(keys)
    if as_json:
        print(json.dumps([k.model_dump(mode="json") for k in found]))
        return
    rows = [
        [
            str(k.key_id),
            k.label or "-",
            _when(k.created_at),
            _when(k.last_used_at),
            _when(k.revoked_at),
        ]
        for k in found
    ]
    _table(
        f"keys of {tenant}", ["key_id", "label", "created_at", "last_used_at", "revoked_at"], rows
    )


@key_app.command("revoke")
def key_revoke(
    tenant: Annotated[str, typer.Argument(help="tenant name")],
    key_id: Annotated[str, typer.Argument(help="the key's id (from `ccv key list`)")],
) -> None:
    """Revoke a key; running servers refuse it within CCV_API_KEY_CACHE_SECONDS."""
    try:
        key_uuid = uuid.UUID(key_id)
    except ValueError:
        out.print(f"[red]not a key id: {key_id!r}[/]")
        raise typer.Exit(2) from None

    async def revoke(store: TenantService) -> None:
        await store.revoke_key((await _tenant_named(store, tenant)).tenant_id, key_uuid)

    try:
        _with_tenants(revoke)
    except NotFound:
        out.print(f"[red]tenant {tenant} has no live key {key_id}[/]")
        raise typer.Exit(1) from None
    seconds = _settings().api_key_cache_seconds
    out.print(f"revoked key {key_id} of tenant {tenant}; servers refuse it within {seconds:g} s")


@app.command("mcp")
def mcp_command(
    agent_id: Annotated[
        str, typer.Option("--agent-id", help="The agent this server acts for (its schema applies).")
    ],
    url: Annotated[
        str, typer.Option("--url", help="The running vault's base URL.")
    ] = "http://127.0.0.1:8000",
    purpose: Annotated[
        str | None,
        typer.Option("--purpose", help="What reads are for (default: the agent id)."),
    ] = None,
) -> None:
    """Serve MCP over stdio for one agent, through a running vault's HTTP API.

    The tenant's API key is read from CCV_API_KEY (never a flag: it would show in process
    lists). For MCP clients that start servers as child processes, e.g. Claude Desktop.
    """
    from ccvault.domain.models import CALLER_ID_PATTERN
    from ccvault.mcp.stdio import serve_stdio

    api_key = os.environ.get("CCV_API_KEY", "").strip()
    if not api_key:
        typer.echo("CCV_API_KEY is not set: give the tenant's API key in it.", err=True)
        raise typer.Exit(2)
    for option, given in (("--agent-id", agent_id), ("--purpose", purpose)):
        if given is not None and not re.fullmatch(CALLER_ID_PATTERN, given):
            typer.echo(f"{option} must match {CALLER_ID_PATTERN}", err=True)
            raise typer.Exit(2)
    check = _settings().mcp_schema_check_seconds
    asyncio.run(serve_stdio(url, api_key, agent_id, purpose=purpose, check_seconds=check))


_CHUNK = 1024 * 1024


def _offline_settings() -> Settings:
    """The configured database (embedded when unset), migrated; the cache only when a
    Redis URL is configured (an embedded one belongs to a running server)."""
    settings, _servers = _resolve_servers(_settings(), with_cache=False)
    assert settings.database_url
    migrations.upgrade(settings.database_url)
    return settings


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="NDJSON file, one profile a line ('-' for stdin)")],
    tenant: Annotated[str, typer.Option("--tenant", help="tenant name")],
) -> None:
    """Import profiles from NDJSON (the line format of POST /v1/profiles/import), validated
    like field writes in the tenant's mode; prints the summary as JSON. Exit status 1 when
    some lines were not stored."""
    from ccvault.services.imports import offline_importer

    settings = _offline_settings()
    stdin = str(file) == "-"
    if not stdin and not file.is_file():
        out.print(f"[red]no file {file}[/]")
        raise typer.Exit(2)
    size = None if stdin else file.stat().st_size

    async def run() -> dict[str, object]:
        assert settings.database_url
        redis_url = settings.redis_url if settings.cache else None
        async with offline_importer(
            settings.database_url, redis_url, settings.cache_ttl_seconds
        ) as importer:
            found = await importer.tenant(tenant)
            if found is None:
                out.print(f"[red]no tenant {tenant!r}[/]")
                raise typer.Exit(1)
            with _progress("importing", size) as advance:
                summary = await importer.run(
                    found.tenant_id, found.validation_mode, _chunks(file, stdin), progress=advance
                )
            return summary.as_json()

    summary = asyncio.run(run())
    print(json.dumps(summary))
    out.print(
        f"{summary['profiles']} profiles ({summary['created']} new), {summary['fields']} "
        f"fields written, {summary['unchanged']} unchanged, {summary['failed']} lines refused"
    )
    if summary["failed"]:
        raise typer.Exit(1)


@app.command("export")
def export_command(tenant: Annotated[str, typer.Option("--tenant", help="tenant name")]) -> None:
    """Write every profile of a tenant to stdout as NDJSON, one profile a line, in the
    format `ccv import` reads (current field versions, identities, consents)."""
    from ccvault.services.imports import offline_importer

    settings = _offline_settings()

    async def run() -> int:
        assert settings.database_url
        async with offline_importer(settings.database_url) as importer:
            found = await importer.tenant(tenant)
            if found is None:
                out.print(f"[red]no tenant {tenant!r}[/]")
                raise typer.Exit(1)
            total = await importer.count(found.tenant_id)
            written = 0
            with _progress("exporting", total) as advance:
                async for line in importer.export(found.tenant_id):
                    sys.stdout.write(line + "\n")
                    written += 1
                    advance(1)
            sys.stdout.flush()
            return written

    written = asyncio.run(run())
    out.print(f"{written} profiles exported")


def _chunks(file: Path, stdin: bool) -> AsyncIterator[bytes]:
    """The file (or stdin) in chunks of _CHUNK bytes."""

    async def read() -> AsyncIterator[bytes]:
        handle = sys.stdin.buffer if stdin else file.open("rb")
        try:
            while chunk := handle.read(_CHUNK):
                yield chunk
        finally:
            if not stdin:
                handle.close()

    return read()


@contextlib.contextmanager
def _progress(what: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal (else nothing); yields `advance`."""
    if not out.is_terminal:
        yield lambda _: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    amount = DownloadColumn() if what == "importing" else MofNCompleteColumn()
    columns = (TextColumn(what), BarColumn(), amount, TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=out, transient=False) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


@audit_app.command("verify")
def audit_verify(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="tenant name (default: every tenant)")
    ] = None,
) -> None:
    """Seal pending entries, then walk every tenant's hash chain (or the named one's).
    Exit status 1 naming the first entry that was changed, removed or reordered."""
    from ccvault.services.audit import offline_audit

    settings = _offline_settings()

    async def run() -> list[tuple[str, int, str | None]]:
        assert settings.database_url
        async with offline_audit(settings.database_url) as audit:
            seen = 0
            with _progress("verifying", None) as advance:

                def progress(done: int, _total: int) -> None:
                    nonlocal seen
                    advance(done - seen)
                    seen = done

                chains = await audit.verify(tenant, progress=progress)
        return [(c.name, c.checked, c.broken.problem if c.broken else None) for c in chains]

    chains = asyncio.run(run())
    if tenant is not None and not chains:
        out.print(f"[red]no tenant {tenant!r}[/]")
        raise typer.Exit(1)
    broken = 0
    for name, checked, problem in chains:
        if problem is None:
            print(f"{name}: {checked} entries, chain intact")
        else:
            broken += 1
            print(f"{name}: BROKEN at {problem}")
    if broken:
        out.print(f"[red]{broken} tenant chain(s) broken[/]")
        raise typer.Exit(1)


@app.command("eval-extraction")
def eval_extraction(
    dataset: Annotated[
        str,
        typer.Argument(
            help="a JSON Lines file of labeled texts, or `dev` / `test` for the sets "
            "shipped with ccvault"
        ),
    ],
    llm: Annotated[
        bool, typer.Option("--llm", help="score the configured model (CCV_LLM_*)")
    ] = False,
    min_f1: Annotated[
        float | None,
        typer.Option("--min-f1", help="exit 1 when the overall F1 is below this"),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Score requirement extraction on labeled texts: precision, recall and F1 per case
    and overall (`fields`: the right field names; `strict`: also the level, condition and
    bounds). Offline by default; --llm measures the configured model."""
    from ccvault.extraction.evaluate import DatasetError
    from ccvault.services.extraction_eval import NoModelConfigured, dataset_path, score

    path = dataset_path(dataset)
    try:
        name, report = asyncio.run(score(path, _settings() if llm else None))
    except (OSError, DatasetError) as exc:
        out.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except NoModelConfigured as exc:
        out.print(f"[red]--llm: no model configured ({exc})[/]")
        raise typer.Exit(BAD_CONFIGURATION) from None
    totals = {"extractor": name, "dataset": str(path), **report.totals()}
    if as_json:
        print(json.dumps({"overall": totals, "cases": report.rows()}, indent=2))
    else:
        _table(
            f"{name} on {path.name}",
            ["case", "domain", "P", "R", "F1", "strict F1", "missed", "extra"],
            [
                [
                    row["id"],
                    row["domain"],
                    f"{row['precision']:.2f}",
                    f"{row['recall']:.2f}",
                    f"{row['f1']:.2f}",
                    f"{row['strict_f1']:.2f}",
                    ", ".join(row["missed"]) or (row["error"] or "-"),
                    ", ".join(row["extra"]) or "-",
                ]
                for row in report.rows()
            ],
        )
        print(
            f"overall: precision {totals['precision']:.3f}  recall {totals['recall']:.3f}  "
            f"F1 {totals['f1']:.3f}  |  strict: precision {totals['strict_precision']:.3f}  "
            f"recall {totals['strict_recall']:.3f}  F1 {totals['strict_f1']:.3f}  |  "
            f"{totals['cases']} cases ({totals['failed']} failed), "
            f"p50 {totals['p50_ms']:.2f} ms per text"
        )
    if min_f1 is not None and totals["f1"] < min_f1:
        out.print(f"[red]F1 {totals['f1']:.3f} is below --min-f1 {min_f1:g}[/]")
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


@events_app.command("tail")
def events_tail(
    types: Annotated[
        str | None,
        typer.Option("--types", help="event types to show, comma-separated (default: all)"),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option("--after", help="resume after this cursor (default: the oldest kept)"),
    ] = None,
    url: Annotated[
        str, typer.Option("--url", envvar="CCV_URL", help="the vault's base URL")
    ] = "http://127.0.0.1:8000",
    key: Annotated[str, typer.Option("--key", envvar="CCV_KEY", help="the tenant's API key")] = "",
    as_json: AsJson = False,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="seconds between polls")] = 1.0,
) -> None:
    """Follow the tenant's change feed: one line per event as it commits, until Ctrl-C
    (the cursor to resume from is printed on stderr then)."""
    from ccvault.client import Vault
    from ccvault.client.errors import VaultError

    if not key:
        out.print("[red]an API key is needed: --key or CCV_KEY[/]")
        raise typer.Exit(BAD_CONFIGURATION)
    wanted = [t for t in (types or "").split(",") if t] or None
    cursor = after
    try:
        with Vault(url, key) as vault:
            while True:
                page = vault.events.list(after=cursor, limit=200, types=wanted)
                for event in page.items:
                    if as_json:
                        print(event.model_dump_json(), flush=True)
                    else:
                        data = json.dumps(event.data, separators=(",", ":"))
                        who = event.customer_id or "-"
                        print(f"{event.at.isoformat()} {event.type} {who} {data}", flush=True)
                cursor = page.next_cursor
                if len(page.items) < 200:
                    time.sleep(poll)
    except KeyboardInterrupt:
        if cursor:
            out.print(f"resume with --after {cursor}")
    except VaultError as exc:
        out.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
