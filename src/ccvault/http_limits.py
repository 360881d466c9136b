"""uvicorn's httptools protocol with bounds on the request head, which httptools lacks.

httptools buffers a header until it is complete and counts neither headers nor time: a
client could send megabytes of one header (buffered by repeated concatenation, which slowed
every other client) or trickle a head forever. Here the head (request line and headers) is
bounded in bytes, in header count and in the time from the connection (or the request's
first byte) to its last header: 431/414/408 problem+json, then the connection is closed.
The parser's own 400s are problem+json too.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

PROBLEM_JSON = b"application/problem+json"


@dataclass(frozen=True)
class HeadLimits:
    """Bounds on one request head; `linger_seconds` is how long a refused client may keep
    sending (discarded) before the socket closes, so it can read the answer first."""

    max_bytes: int = 32 * 1024
    max_count: int = 100
    timeout_seconds: float = 10.0
    linger_seconds: float = 2.0


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the answer waits in `_refusal`."""


def problem_body(status: int, detail: str) -> bytes:
    """The same problem+json shape the app answers with (api/errors.py)."""
    phrase = HTTPStatus(status).phrase
    slug = phrase.lower().replace(" ", "-")
    body = {"type": f"urn:ccvault:problem:{slug}", "title": phrase, "status": status}
    return json.dumps({**body, "detail": detail}).encode()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses oversized, overlong and slow request heads."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HeadLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits or HeadLimits()
        self._head_open = True  # the next bytes received belong to a request head
        self._head_received = 0  # bytes fed while the head is open (httptools may buffer them)
        self._head_size = 0  # bytes of request target and headers parsed so far
        self._head_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None
        self._lingering = False
        self._linger_timer: asyncio.TimerHandle | None = None

    # -- connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a whole head is closed too (uvicorn has no timer
        # until the first response).
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # refused: what the client still sends is read and dropped until close
        self._unset_keepalive_if_required()
        if self._head_open:
            self._head_received += len(data)
            if self._head_timer is None:
                self._arm_head_timer()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            status, detail = self._refusal or (400, _parser_detail(exc))
            self.refuse(status, detail)
            return
        # Still inside a head after all of this chunk: httptools holds it all, so bound it
        # here, before the header that is being buffered is complete.
        if self._head_open and self._head_received > self.limits.max_bytes:
            self.refuse(431, self._too_large())

    def send_400_response(self, msg: str) -> None:
        self.refuse(400, msg)

    # -- parser callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0
        self._head_count = 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        if self._head_size > self.limits.max_bytes:
            self._stop(414, f"Request targets are limited to {self.limits.max_bytes} bytes.")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_count > self.limits.max_count:
            self._stop(431, f"Requests may carry at most {self.limits.max_count} headers.")
        if self._head_size > self.limits.max_bytes:
            self._stop(431, self._too_large())
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._head_received = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_open = True

    # -- refusing ----------------------------------------------------------------------

    def refuse(self, status: int, detail: str) -> None:
        """Answer problem+json and close: after a bad head the stream cannot be trusted."""
        self._cancel_head_timer()
        self._refusal = None
        if self._lingering or self.transport.is_closing():
            return
        self._lingering = True
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head went wrong while an earlier response is being written:
            # that response finishes, then the connection closes.
            self.cycle.keep_alive = False
            return
        body = problem_body(status, detail)
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: ",
                PROBLEM_JSON,
                b"\r\ncontent-length: ",
                str(len(body)).encode("ascii"),
                b"\r\nconnection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        # Half-close and drain for a moment: closing with unread input would reset the
        # connection, and a client still sending its head might never read the answer.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._linger_timer = self.loop.call_later(
                self.limits.linger_seconds, self.transport.close
            )
        else:
            self.transport.close()

    def _stop(self, status: int, detail: str) -> None:
        self._refusal = (status, detail)
        raise _Refused(detail)

    def _too_large(self) -> str:
        return f"Request heads are limited to {self.limits.max_bytes} bytes."

    # -- the head timer ----------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.timeout_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_received == 0:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        seconds = f"{self.limits.timeout_seconds:g}"
        self.refuse(408, f"Request heads must arrive within {seconds} seconds.")


def _parser_detail(exc: httptools.HttpParserError) -> str:
    """llhttp's reason (e.g. 'Invalid method encountered'); a callback's failure is the
    request target, which httptools parses inside one."""
    if isinstance(exc, httptools.HttpParserCallbackError):
        return "The request is not valid HTTP/1.1: invalid request target."
    reason = str(exc).strip().rstrip(".") or "malformed request"
    return f"The request is not valid HTTP/1.1: {reason}."
