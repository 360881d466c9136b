"""Logs on stderr, one line per event: text for a person at a terminal, JSON for anything
else (a file, a pipe, a log collector), from structlog and stdlib loggers alike."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import select
import stat
import sys
import time
import weakref
from contextvars import ContextVar
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any, TextIO

import structlog

from ccvault.config import LogFormat

# Libraries that report routine work at INFO: procrastinate logs every periodic job it
# defers, starts and finishes (the janitor alone: three lines a minute on an idle vault).
CHATTY_LOGGERS = ("procrastinate",)


class LineWriter:
    """structlog's final logger: writes each rendered line to one stream.

    Our own loggers go straight here (structlog's native path: about a fifth of the cost
    of a trip through the logging module, which matters for one access line per request);
    other libraries' stdlib records are rendered alike by a ProcessorFormatter.
    """

    def __init__(self, name: str, stream: TextIO) -> None:
        self.name = name  # read by add_logger_name
        self._stream = stream

    def msg(self, message: str) -> None:
        """Write one line (flushed: a crash must not eat the lines before it)."""
        self._stream.write(message + "\n")
        self._stream.flush()

    debug = info = warning = error = critical = exception = log = msg


@dataclass(frozen=True)
class Output:
    """Where and how lines go, as configure_logging last set it."""

    stream: TextIO
    human: bool
    level: int
    pipe: bool  # a pipe or a socket: writes above PIPE_BUF bytes may interleave


_output: Output | None = None


# The id of the HTTP request being answered (api/observe.py sets it around each one):
# one context variable costs a request a fifth of structlog's bind/reset pair.
REQUEST_ID: ContextVar[str | None] = ContextVar("ccv_request_id", default=None)


def add_request_id(logger: Any, method_name: str, event_dict: Any) -> Any:
    """structlog processor: every line written while a request is answered names it."""
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def _is_pipe(stream: TextIO) -> bool:
    """Whether writes to `stream` share a pipe or socket with other writers' lines."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (AttributeError, OSError, ValueError):  # no file descriptor (a StringIO)
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def is_human(log_format: LogFormat, stream: TextIO) -> bool:
    """`auto` means text when a person is watching (a terminal), JSON otherwise."""
    if log_format is LogFormat.auto:
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())
    return log_format is LogFormat.console


def configure_logging(
    level: str = "INFO",
    log_format: LogFormat = LogFormat.auto,
    stream: TextIO | None = None,
    *,
    cache: bool = True,
) -> None:
    """Route every log line of the process to `stream` (stderr) in one format.

    `cache=False` keeps module-level loggers from binding to this configuration for good
    on first use (tests that configure logging for a while and then put it back).
    """
    global _output
    out = stream or sys.stderr
    human = is_human(log_format, out)
    number = logging.getLevelNamesMapping()[level.upper()]
    _output = Output(out, human, number, _is_pipe(out))
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Colours only on a terminal: CCV_LOG_FORMAT=console into a file stays plain text.
    tail: list[structlog.types.Processor] = (
        [structlog.dev.ConsoleRenderer(colors=bool(out.isatty()))]
        if human
        else [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    )
    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=lambda *args: LineWriter(str(args[0]) if args else "", out),
        cache_logger_on_first_use=cache,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(number)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        # CCV_LOG_LEVEL decides, not a level a uvicorn.Config(log_level=...) left here.
        logger.setLevel(logging.NOTSET)
    # Ours (api/observe.py) replaces uvicorn's access log, which writes raw paths and
    # query strings (customer ids). uvicorn logs access lines while this logger has a
    # handler anywhere up its chain, so it must not reach the root's.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(number if number <= logging.DEBUG else logging.WARNING)


# One request as the access log takes it: (time.time() it was answered, level, method,
# route template, status, duration in ms, tenant id, key id, request id).
AccessEntry = tuple[float, int, str, str, int, float, object | None, object | None, str]


class AccessLog:
    """The access log's writer: one line per request, which JSON output writes directly.

    A request pays for its line, and structlog's generic chain (context merge, time
    stamp, json.dumps, processor calls) costs several times the rest of the observer; on
    this path it would cost a tenth of a warm read's throughput. The line written here
    has the keys, order and format of a structlog JSON line of the same event, which a
    test checks. Human output (a terminal) and a process whose logging was never
    configured (tests) go through structlog as usual.
    """

    def __init__(self, name: str = "ccvault.access") -> None:
        output = _output
        self.name = name
        self._logger = structlog.get_logger(name).bind()
        self._direct = output if output is not None and not output.human else None
        self._level = output.level if output is not None else logging.DEBUG
        self._name_json = encode_basestring_ascii(name)
        self._pending: list[AccessEntry] = []
        self._heads: dict[tuple[str, str, int], str] = {}
        self._callers: dict[tuple[object, object], str] = {}
        _access_logs.add(self)

    def enabled(self, level: int) -> bool:
        """Whether a line at `level` would be written (callers skip building it)."""
        return level >= self._level

    def request(
        self,
        level: int,
        *,
        method: str,
        route: str,
        status: int,
        duration_ms: float,
        tenant: object | None,
        key_id: object | None,
        request_id: str,
        at: float | None = None,
    ) -> None:
        """Write one access line for a request: `tenant` and `key_id` as the caller holds
        them (ids or None), `at` the time.time() it was answered (default now)."""
        when = time.time() if at is None else at
        self.add([(when, level, method, route, status, duration_ms, tenant, key_id, request_id)])

    def add(self, entries: list[AccessEntry]) -> None:
        """Write the access lines of several requests, as `request` takes them."""
        if self._direct is None:
            for _at, level, method, route, status, ms, tenant, key_id, rid in entries:
                if level < self._level:
                    continue
                log = self._logger.info if level >= logging.INFO else self._logger.debug
                log(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(ms, 3),
                    tenant=None if tenant is None else str(tenant),
                    key_id=None if key_id is None else str(key_id),
                    request_id=rid,
                )
            return
        # Rendered when the event loop's turn ends, with the turn's other lines, and
        # written in one go: see flush.
        if not self._pending:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: nothing would flush later
                self._pending.extend(e for e in entries if e[1] >= self._level)
                self.flush()
                return
        self._pending.extend(e for e in entries if e[1] >= self._level)

    def flush(self) -> None:
        """Render the pending lines and write them at once; to a pipe or a socket, in
        writes of at most PIPE_BUF bytes (that much is written whole, so the lines of two
        workers sharing stderr never mix; a file's offset keeps each write whole)."""
        if not self._pending or self._direct is None:
            return
        pending, self._pending = self._pending, []
        lines = [self._render(*entry) for entry in pending]  # ASCII: characters are bytes
        chunks: list[str] = []
        if self._direct.pipe:
            chunk: list[str] = []
            size = 0
            for line in lines:
                if chunk and size + len(line) > select.PIPE_BUF:
                    chunks.append("".join(chunk))
                    chunk, size = [], 0
                chunk.append(line)
                size += len(line)
            chunks.append("".join(chunk))
        else:
            chunks.append("".join(lines))
        stream = self._direct.stream
        try:
            for text in chunks:
                stream.write(text)
                stream.flush()
        except (OSError, ValueError):
            pass  # as logging's handlers do: a broken log stream never fails a request

    def _render(
        self,
        at: float,
        level: int,
        method: str,
        route: str,
        status: int,
        duration_ms: float,
        tenant: object | None,
        key_id: object | None,
        request_id: str,
    ) -> str:
        """One JSON line; the parts that repeat from request to request rendered once."""
        head = self._heads.get((method, route, status))
        if head is None:
            head = (
                f'{{"method": {encode_basestring_ascii(method)},'
                f' "route": {encode_basestring_ascii(route)}, "status": {status},'
            )
            _remember(self._heads, (method, route, status), head)
        who = self._callers.get((tenant, key_id))
        if who is None:
            who = f' "tenant": {_json_or_null(tenant)}, "key_id": {_json_or_null(key_id)},'
            _remember(self._callers, (tenant, key_id), who)
        return (
            f'{head} "duration_ms": {duration_ms:.3f},{who} "event": "request",'
            f' "request_id": {encode_basestring_ascii(request_id)},'
            f' "level": "{"info" if level >= logging.INFO else "debug"}",'
            f' "logger": {self._name_json}, "timestamp": "{iso_utc(at)}"}}\n'
        )


_access_logs: weakref.WeakSet[AccessLog] = weakref.WeakSet()


@atexit.register
def flush_access_logs() -> None:
    """Write every access line still waiting for its event-loop turn to end (at exit;
    and for tests, which read the log right after a request)."""
    for access_log in list(_access_logs):
        access_log.flush()


def _remember(cache: dict[Any, str], key: Any, rendered: str) -> None:
    """Keep a rendered part; a cache past its bound starts over (routes are few, callers
    may be many)."""
    if len(cache) >= 10_000:
        cache.clear()
    cache[key] = rendered


def _json_or_null(value: object | None) -> str:
    return "null" if value is None else encode_basestring_ascii(str(value))


_stamp_second = -1
_stamp_prefix = ""


def iso_utc(at: float) -> str:
    """A time.time() value as structlog's TimeStamper(fmt="iso", utc=True) writes it,
    microseconds always included; the date and time of day are formatted once a second."""
    global _stamp_second, _stamp_prefix
    second = int(at)
    if second != _stamp_second:
        _stamp_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _stamp_second = second
    return f"{_stamp_prefix}.{int((at - second) * 1_000_000):06d}Z"
