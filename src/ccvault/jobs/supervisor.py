"""Keep a job worker alive across database outages.

procrastinate stops its worker for good when a side task (the LISTEN connection, the
heartbeat, the periodic deferrer) loses the database, and the jobs then wait until
someone restarts the process. `supervise` starts it again once the database answers.

Stopping keeps procrastinate's graceful semantics: a stop (SIGTERM/SIGINT when signal
handlers are on, or cancelling the task) reaches the running worker as a cancellation,
which lets the job in hand finish; a stop while waiting for the database ends at once.
After the first signal the previous handlers are back, so a second one ends the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import psycopg
import structlog

from ccvault.outage import Outage
from ccvault.storage.db import wait_for_database

log = structlog.get_logger("ccvault.jobs")
T = TypeVar("T")

# A worker that fails sooner than this after its start while the database answers waits
# as long before the next start, so a failure that is no outage cannot spin.
QUICK_FAILURE_SECONDS = 10.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _StopRequested(Exception):
    """A signal asked the supervised worker to stop."""


async def supervise(
    run: Callable[[], Awaitable[None]],
    *,
    database_url: str,
    name: str,
    install_signal_handlers: bool,
) -> None:
    """Run `run` (one life of a worker) until stopped; whenever it fails or ends by
    itself, start it again once the database answers."""
    task = asyncio.current_task()
    assert task is not None
    outage = Outage(
        log.bind(worker=name),
        down="job worker stopped: restarting it when the database answers",
        up="job worker restarting",
    )
    stopping = _Stopping(task)
    with stopping.on_signals() if install_signal_handlers else contextlib.nullcontext():
        try:
            while True:
                started = time.monotonic()
                failure = await stopping.guard(_life(run))
                outage.begin(failure)
                quick = time.monotonic() - started < QUICK_FAILURE_SECONDS
                await stopping.guard(_until_restart(database_url, quick=quick))
                outage.end()
        except _StopRequested:
            return


async def _life(run: Callable[[], Awaitable[None]]) -> BaseException | str:
    """Run the worker once; what ended it, when it ended without being asked to."""
    try:
        await run()
    except Exception as exc:
        return exc
    return "the worker stopped by itself (a side task lost the database)"


async def _until_restart(database_url: str, *, quick: bool) -> None:
    """Until the database answers; first a pause when the worker failed quickly although
    the database answers (not an outage: restarting at once would only fail again)."""
    if quick and await _answers(database_url):
        await asyncio.sleep(QUICK_FAILURE_SECONDS)
    await wait_for_database(database_url)


async def _answers(database_url: str) -> bool:
    try:
        await wait_for_database(database_url, within=0)
    except psycopg.OperationalError:
        return False
    return True


class _Stopping:
    """Turns a signal into a cancellation of the supervising task (which procrastinate
    treats as a graceful stop), and that cancellation into a clean return afterwards."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.requested = False
        self._previous: dict[signal.Signals, Any] = {}

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT request a graceful stop while the block runs."""
        loop = asyncio.get_running_loop()
        try:
            for sig in _STOP_SIGNALS:
                previous = signal.getsignal(sig)
                loop.add_signal_handler(sig, self._signalled, sig)
                self._previous[sig] = previous
        except (ValueError, RuntimeError, NotImplementedError) as exc:
            # Not the main thread, or no loop signal support: stop by cancelling instead.
            log.warning("stop signals not handled by the job worker", error=str(exc))
            self._restore_handlers()
        try:
            yield
        finally:
            self._restore_handlers()

    def _signalled(self, sig: signal.Signals) -> None:
        log.info("stop requested: the job in hand finishes first", signal=sig.name)
        self.requested = True
        self._restore_handlers()
        self.task.cancel()

    def _restore_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig, previous in self._previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, previous)
        self._previous.clear()

    async def guard(self, step: Awaitable[T]) -> T:
        """Await one step of the supervision; a stop that arrived meanwhile ends it:
        _StopRequested after a signal, CancelledError after a cancellation."""
        try:
            result = await step
        except asyncio.CancelledError:
            self._raise_if_stopping()
            raise
        # A worker told to stop may end with another error (its shutdown needs the
        # database): the stop still wins over a restart.
        self._raise_if_stopping()
        return result

    def _raise_if_stopping(self) -> None:
        if self.requested:
            self.task.uncancel()
            raise _StopRequested
        if self.task.cancelling():
            raise asyncio.CancelledError
