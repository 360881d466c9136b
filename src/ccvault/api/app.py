"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp

from ccvault import __version__
from ccvault.api.docs import install_docs
from ccvault.api.errors import install_error_handlers
from ccvault.api.fast_read import FastProfileRead
from ccvault.api.limits import BodyLimitMiddleware
from ccvault.api.methods import install_method_handling
from ccvault.api.observe import RequestObserver, RouteGuesser
from ccvault.api.openapi import DESCRIPTION, TAGS, install_openapi, operation_id
from ccvault.api.routes import (
    admin,
    assets,
    audit,
    context,
    events,
    fields,
    health,
    imports,
    lineage,
    missing,
    privacy,
    profiles,
    scenarios,
    schema,
    webhooks,
)
from ccvault.config import Settings
from ccvault.mcp.http import McpHttp
from ccvault.runtime import Vault, open_vault
from ccvault.services.events import sequencing


class VaultApp(FastAPI):
    """FastAPI with the request observer around everything, then the hot profile read,
    then Starlette's own stack (ServerErrorMiddleware first).

    Middleware added with `add_middleware` runs inside ServerErrorMiddleware, which sends
    500s itself: an observer there would see the exception but not the answer, and the
    answer would go out without its X-Request-Id. The fast read sits in front of that
    stack too: its requests skip three middleware layers (about a sixth of a warm read's
    CPU time here, more than the observer costs), and anything it does not answer goes
    through them as before.
    """

    access_log: bool = True
    http_metrics: bool = True
    fast_read: bool = True  # tests compare answers with the route's alone

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack behind the fast read, wrapped by the observer."""
        stack = super().build_middleware_stack()
        if self.fast_read:
            stack = FastProfileRead(stack)
        return RequestObserver(
            stack,
            access_log=self.access_log,
            metrics=self.http_metrics,
            guess_route=RouteGuesser(lambda: self.routes),
        )


def _attach(app: FastAPI, vault: Vault) -> None:
    """Routes see the services and settings; the vault itself (stores, pool) is kept
    only to be closed."""
    app.state.vault = vault
    app.state.services = vault.services
    app.state.settings = vault.settings


def create_server_app() -> FastAPI:
    """The app `ccv serve` runs in each API process: logging is configured here because
    `--workers N` starts processes that inherit none of the parent's set-up."""
    from ccvault.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def create_app(settings: Settings | None = None, vault: Vault | None = None) -> FastAPI:
    """Build the app; with no `vault` it opens (and later closes) its own from settings."""
    settings = settings or (vault.settings if vault else Settings())
    mcp = McpHttp(check_seconds=settings.mcp_schema_check_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp.running(), _vault_lifespan(app):
            yield

    @asynccontextmanager
    async def _vault_lifespan(app: FastAPI) -> AsyncIterator[None]:
        if vault is not None:
            _attach(app, vault)
            yield
            return
        own = await open_vault(settings)
        _attach(app, own)
        worker = None
        if settings.in_process_worker:
            from ccvault.jobs.queue import run_worker

            worker = asyncio.create_task(
                run_worker(own, install_signal_handlers=False, name=f"ccv-serve-{os.getpid()}"),
                name="ccv-in-process-worker",
            )
        try:
            async with sequencing(own.pool):
                yield
        finally:
            if worker is not None:
                # Cancelling lets the job in hand finish (procrastinate's graceful stop).
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await own.close()

    app = VaultApp(
        title="Customer Context Vault",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # A trailing slash is another path (404): the redirect built its Location from the
        # Host header and answered before any key was checked.
        redirect_slashes=False,
        # /docs is served by install_docs from packaged files; ReDoc would need a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.access_log = settings.access_log
    app.http_metrics = settings.http_metrics
    app.state.settings = settings
    if vault is not None:
        _attach(app, vault)
    install_error_handlers(app)
    install_method_handling(app)
    install_openapi(app)
    install_docs(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        # Streamed line by line, with its own bound per line.
        unlimited={("POST", imports.IMPORT_PATH)},
    )
    for module in (
        imports,
        profiles,
        context,
        fields,
        assets,
        lineage,
        schema,
        scenarios,
        missing,
        privacy,
        events,
        audit,
        webhooks,
        admin,
        health,
    ):
        app.include_router(module.router)
    app.include_router(privacy.admin_router)
    # MCP over streamable HTTP (DESIGN §8); the SDK's transport answers GET, POST, DELETE.
    app.router.routes.append(Route("/mcp", mcp, include_in_schema=False))
    if settings.console:
        from ccvault.console import mount_console

        mount_console(app, settings)
    return app
