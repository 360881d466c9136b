"""Capturing what the process logs, in the format `ccv serve` writes it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog

from ccvault import logs
from ccvault.api.observe import drain_observers
from ccvault.config import LogFormat
from ccvault.logs import CHATTY_LOGGERS, configure_logging, flush_access_logs


@contextmanager
def logging_configured(level: str, log_format: LogFormat, stream: TextIO) -> Iterator[None]:
    """configure_logging onto `stream` for a while; everything it set is put back after
    (module-level loggers are not cached meanwhile, so they see the change)."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    access = logging.getLogger("uvicorn.access")
    access_state = access.handlers[:], access.propagate
    output = logs._output
    configure_logging(level, log_format, stream, cache=False)
    try:
        yield
    finally:
        drain_observers()
        flush_access_logs()
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(root_level)
        for name, chatty_level in levels.items():
            logging.getLogger(name).setLevel(chatty_level)
        access.handlers[:], access.propagate = access_state
        logs._output = output


@contextmanager
def captured_logs(
    level: str = "INFO", log_format: LogFormat = LogFormat.json
) -> Iterator[io.StringIO]:
    """Every log line into a string buffer for a while; the previous set-up afterwards."""
    stream = io.StringIO()
    with logging_configured(level, log_format, stream):
        yield stream


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """The captured lines, each parsed (each must be one JSON object)."""
    drain_observers()  # requests are logged when the event loop's turn ends
    flush_access_logs()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """The access log's lines among the captured ones."""
    return [line for line in json_lines(stream) if line.get("logger") == "ccvault.access"]
