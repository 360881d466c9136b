"""Logs on stderr, one line per event: text for a person at a terminal, JSON for anything
else (a file, a pipe, a log collector), from structlog and stdlib loggers alike."""

from __future__ import annotations

import logging
import sys
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
    out = stream or sys.stderr
    human = is_human(log_format, out)
    number = logging.getLevelNamesMapping()[level.upper()]
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,  # the request id, bound per request
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
    # Ours (api/observe.py) replaces uvicorn's access log, which writes raw paths and
    # query strings (customer ids). uvicorn logs access lines while this logger has a
    # handler anywhere up its chain, so it must not reach the root's.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(number if number <= logging.DEBUG else logging.WARNING)


def bound_logger(name: str, **values: Any) -> Any:
    """A logger bound now, to the configuration in force now (module-level loggers bind
    on first use): for objects built after configure_logging, like the access log."""
    return structlog.get_logger(name).bind(**values)
