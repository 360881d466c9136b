"""Capturing what the process logs, in the format `ccv serve` writes it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from ccvault.config import LogFormat
from ccvault.logs import CHATTY_LOGGERS, configure_logging


@contextmanager
def captured_logs(
    level: str = "INFO", log_format: LogFormat = LogFormat.json
) -> Iterator[io.StringIO]:
    """Every log line into a string buffer for a while; the previous set-up afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    chatty = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    stream = io.StringIO()
    configure_logging(level, log_format, stream, cache=False)
    try:
        yield stream
    finally:
        structlog.configure(**saved)
        root.handlers[:] = handlers
        root.setLevel(root_level)
        for name, chatty_level in chatty.items():
            logging.getLogger(name).setLevel(chatty_level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """The captured lines, each parsed (each must be one JSON object)."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """The access log's lines among the captured ones."""
    return [line for line in json_lines(stream) if line.get("logger") == "ccvault.access"]
