"""Log output: text for a person at a terminal, JSON lines anywhere else (no colour codes
in files), and quiet at INFO while nothing happens."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import select
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import pytest
import structlog

from ccvault.config import LogFormat
from ccvault.jobs.sweeps import detect_orphaned_items, expire_stale_fields
from ccvault.logs import AccessLog, flush_access_logs
from ccvault.runtime import Vault
from log_support import captured_logs, json_lines, logging_configured

ANSI_ESCAPE = "\x1b["


@contextmanager
def logging_to(stream: TextIO, log_format: LogFormat = LogFormat.auto) -> Iterator[None]:
    """Logging configured on `stream` at INFO for a while."""
    with logging_configured("INFO", log_format, stream):
        yield


def log_both_kinds(request_id: str) -> None:
    """One line from our structlog loggers and one from a stdlib library logger."""
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        structlog.get_logger("ccvault.test").info("ours", answer=42)
        logging.getLogger("uvicorn.error").warning("theirs %s", "formatted")
    finally:
        structlog.contextvars.unbind_contextvars("request_id")


def test_a_file_gets_json_lines_without_colour_codes(tmp_path: Path) -> None:
    path = tmp_path / "ccv.log"
    with path.open("w") as stream, logging_to(stream):
        log_both_kinds("rid-file")
    text = path.read_text()
    assert ANSI_ESCAPE not in text
    ours, theirs = (json.loads(line) for line in text.splitlines())
    assert ours["event"] == "ours"
    assert ours["answer"] == 42
    assert ours["logger"] == "ccvault.test"
    assert ours["level"] == "info"
    assert ours["request_id"] == "rid-file"
    assert theirs["event"] == "theirs formatted"
    assert theirs["logger"] == "uvicorn.error"
    assert theirs["level"] == "warning"
    assert theirs["request_id"] == "rid-file"


def test_a_terminal_gets_human_text() -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal, logging_to(terminal):
        log_both_kinds("rid-tty")
    written = drain(leader)
    lines = [line for line in written.splitlines() if line.strip()]
    assert len(lines) == 2
    assert ANSI_ESCAPE in written, "a terminal gets colours"
    plain = [_strip_ansi(line) for line in lines]
    assert "ours" in plain[0]
    assert "answer=42" in plain[0]
    assert "request_id=rid-tty" in plain[0]
    assert "theirs formatted" in plain[1]
    for line in plain:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)


def test_console_format_in_a_file_is_text_without_colour_codes() -> None:
    stream = io.StringIO()
    with logging_to(stream, LogFormat.console):
        log_both_kinds("rid-console")
    assert ANSI_ESCAPE not in stream.getvalue()
    assert "answer=42" in stream.getvalue()


def test_json_format_on_a_terminal_is_json() -> None:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal, logging_to(terminal, LogFormat.json):
        log_both_kinds("rid-json")
    written = drain(leader)
    assert [json.loads(line)["request_id"] for line in written.splitlines()] == ["rid-json"] * 2


def test_ccv_serve_writes_json_when_stderr_is_a_file(tmp_path: Path) -> None:
    """The server's own configuration, in a process of its own, as `ccv serve` starts."""
    script = (
        "from ccvault.api.app import create_server_app; create_server_app();"
        " import logging; logging.getLogger('uvicorn.error').info('started')"
    )
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        subprocess.run(
            [sys.executable, "-c", script],
            env={k: v for k, v in os.environ.items() if not k.startswith("CCV_")},
            stderr=stderr,
            check=True,
            timeout=60,
        )
    [line] = log.read_text().splitlines()
    assert json.loads(line)["event"] == "started"


def test_uvicorns_own_access_log_stays_off() -> None:
    """It would write raw paths and query strings; uvicorn logs it when its logger has
    a handler up its chain, so the root's must not count."""
    with captured_logs("DEBUG"):
        assert not logging.getLogger("uvicorn.access").hasHandlers()
        assert logging.getLogger("uvicorn.error").hasHandlers()


@pytest.mark.parametrize(("level", "chatty_shown"), [("INFO", False), ("DEBUG", True)])
def test_procrastinates_routine_lines_show_only_at_debug(level: str, chatty_shown: bool) -> None:
    with captured_logs(level) as stream:
        logging.getLogger("procrastinate.worker.ccv-serve-1").info("Starting job")
        logging.getLogger("procrastinate.periodic").info("Periodic job deferred")
        logging.getLogger("procrastinate.worker").warning("Job failed")
    events = [line["event"] for line in json_lines(stream)]
    routine = ["Starting job", "Periodic job deferred"] if chatty_shown else []
    assert events == [*routine, "Job failed"]


async def test_sweeps_that_change_nothing_say_so_only_at_debug(vault: Vault) -> None:
    nobody = uuid.uuid4()  # a tenant with nothing due: the usual periodic run
    with captured_logs("INFO") as info:
        await expire_stale_fields(vault.profiles, nobody)
        await detect_orphaned_items(vault.profiles, nobody, pause=0)
    assert json_lines(info) == []
    with captured_logs("DEBUG") as debug:
        await expire_stale_fields(vault.profiles, nobody)
    assert [line["event"] for line in json_lines(debug)] == ["expire_stale_fields finished"]


def drain(fd: int) -> str:
    """Everything written to the terminal whose leader side is `fd` (then closed)."""
    chunks = []
    while select.select([fd], [], [], 0.5)[0]:
        try:
            chunks.append(os.read(fd, 65536))
        except OSError:  # EIO: the follower side is closed and everything was read
            break
    os.close(fd)
    return b"".join(chunks).decode()


def _strip_ansi(text: str) -> str:
    """Text without its colour codes."""
    out, skipping = [], False
    for char in text:
        if char == "\x1b":
            skipping = True
        elif skipping and char == "m":
            skipping = False
        elif not skipping:
            out.append(char)
    return "".join(out).replace("\r", "")


class RecordingStream(io.StringIO):
    """A stream that remembers each write it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


ACCESS = {
    "method": "GET",
    "route": "/v1/profiles/{customer_id}",
    "status": 200,
    "duration_ms": 0.25,
    "tenant": "5f8e2c1a-0000-4000-8000-000000000000",
    "key_id": None,
}


def test_the_access_line_is_written_as_structlog_would_write_it() -> None:
    stream = io.StringIO()
    with logging_to(stream, LogFormat.json):
        structlog.contextvars.bind_contextvars(request_id="rid-same")
        try:
            structlog.get_logger("ccvault.access").info("request", **ACCESS)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        AccessLog().request(logging.INFO, **ACCESS, request_id="rid-same")
        flush_access_logs()
    generic, direct = stream.getvalue().splitlines()
    as_structlog, ours = json.loads(generic), json.loads(direct)
    assert list(ours) == list(as_structlog), "same keys in the same order"
    assert ours.pop("timestamp")[:19] == as_structlog.pop("timestamp")[:19]
    assert ours == as_structlog
    assert re.fullmatch(r'.*"timestamp": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"\}', direct)


class RecordingPipe:
    """The writing end of a real pipe, remembering each write it was given."""

    def __init__(self) -> None:
        self.read_fd, write_fd = os.pipe()
        self.file = os.fdopen(write_fd, "w")
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return self.file.write(text)

    def flush(self) -> None:
        self.file.flush()

    def fileno(self) -> int:
        return self.file.fileno()

    def isatty(self) -> bool:
        return False

    def read_all(self) -> str:
        self.file.close()
        with os.fdopen(self.read_fd) as reader:
            return reader.read()


async def test_access_lines_of_one_loop_turn_go_out_together_in_whole_pipe_writes() -> None:
    pipe = RecordingPipe()
    with logging_to(pipe, LogFormat.json):  # type: ignore[arg-type]
        access = AccessLog()
        for n in range(40):
            access.request(logging.INFO, **ACCESS, request_id=f"rid-{n:02d}")
        assert pipe.writes == [], "nothing is written before the loop's turn ends"
        await asyncio.sleep(0)
    assert 1 < len(pipe.writes) < 40
    assert all(len(w) <= select.PIPE_BUF and w.endswith("\n") for w in pipe.writes)
    ids = [json.loads(line)["request_id"] for line in pipe.read_all().splitlines()]
    assert ids == [f"rid-{n:02d}" for n in range(40)]


async def test_access_lines_of_one_loop_turn_go_to_a_file_in_one_write() -> None:
    stream = RecordingStream()
    with logging_to(stream, LogFormat.json):
        access = AccessLog()
        for n in range(40):
            access.request(logging.INFO, **ACCESS, request_id=f"rid-{n:02d}")
        await asyncio.sleep(0)
    assert len(stream.writes) == 1
    assert len(stream.getvalue().splitlines()) == 40


def test_access_lines_outside_an_event_loop_are_written_at_once() -> None:
    stream = RecordingStream()
    with logging_to(stream, LogFormat.json):
        AccessLog().request(logging.INFO, **ACCESS, request_id="rid-sync")
        assert len(stream.writes) == 1


def test_access_lines_below_the_level_are_not_written() -> None:
    stream = io.StringIO()
    with logging_to(stream, LogFormat.json):
        access = AccessLog()
        assert not access.enabled(logging.DEBUG)
        access.request(logging.DEBUG, **ACCESS, request_id="rid-debug")
        flush_access_logs()
    assert stream.getvalue() == ""
