"""How `ccv serve` runs uvicorn: the port is taken before anything starts, signals never
cut a start-up step in half, and a stop reaches uvicorn first and the embedded servers last.

uvicorn.run() re-raises the signal that stopped it once its handlers are gone: SIGTERM
then killed the process before anything after it ran, so the embedded servers outlived
it. Here our own handlers are in place whenever uvicorn's are not, and they only record
the stop.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import signal
import socket
import sys
from types import FrameType, TracebackType
from typing import cast

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from ccvault.config import Settings
from ccvault.http_limits import HeadLimits, LimitedHttpToolsProtocol

PARENT_PID_ENV = "CCVAULT_SERVE_PARENT_PID"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(Exception):
    """A stop was asked for while `ccv serve` was starting."""


class StopSignals:
    """SIGTERM/SIGINT handlers that record the stop (and pass it to a running uvicorn);
    the start-up checks the record between its steps."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.server: uvicorn.Server | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, cast(signal.Handlers, handler))

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        if self.server is not None:
            # Arrived between the last check and uvicorn's own handlers: it stops at once.
            self.server.should_exit = True

    def check(self) -> None:
        """Raise Interrupted if a stop signal has arrived."""
        if self.received is not None:
            raise Interrupted(signal.Signals(self.received).name)


def listen_socket(host: str, port: int) -> socket.socket:
    """Bind the API's socket (uvicorn listens on it later); OSError if the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def uvicorn_config(settings: Settings, host: str, port: int, workers: int) -> uvicorn.Config:
    """The API under uvicorn, with the request-head limits of http_limits."""
    limits = HeadLimits(
        max_bytes=settings.max_header_bytes,
        max_count=settings.max_headers,
        timeout_seconds=settings.header_timeout_seconds,
    )
    # A partial of a module-level class pickles, so --workers N children get it too.
    protocol = functools.partial(LimitedHttpToolsProtocol, limits=limits)
    return uvicorn.Config(
        "ccvault.serve:create_worker_app" if workers > 1 else "ccvault.api.app:create_server_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=cast(type[asyncio.Protocol], protocol),
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
    )


def run_uvicorn(config: uvicorn.Config, sock: socket.socket, stop: StopSignals) -> None:
    """Serve on `sock` until SIGTERM/SIGINT; returns once every request in hand is answered
    (or the graceful timeout cut it) and the app's shutdown ran."""
    if config.workers > 1:
        os.environ[PARENT_PID_ENV] = str(os.getpid())
        supervisor = Multiprocess(config, sockets=[sock])  # its handlers replace ours here
        stop.check()
        supervisor.run()
        return
    server = uvicorn.Server(config)
    stop.server = server
    stop.check()
    server.run(sockets=[sock])


def create_worker_app() -> FastAPI:
    """The app in a --workers child, which stops when its parent dies (a killed parent
    left its children serving, holding the port and using the embedded servers)."""
    from ccvault.api.app import create_server_app

    _exit_with_parent()
    return create_server_app()


def _exit_with_parent() -> None:
    parent = int(os.environ.get(PARENT_PID_ENV) or 0)
    if not parent or not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)
