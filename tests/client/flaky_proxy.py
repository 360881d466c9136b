"""A small HTTP proxy in front of the live vault that answers 503 to its first requests and
passes the rest on: what a load balancer in front of a restarting vault looks like."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


class FlakyProxy:
    """Answers 503 (with `Retry-After`) to the first `failures` requests, then proxies."""

    def __init__(self, upstream: str, failures: int, retry_after: str | None = "0") -> None:
        self.upstream = upstream
        self.failures = failures
        self.retry_after = retry_after
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=upstream, timeout=30)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Fail or forward one request."""
        length = int(handler.headers.get("Content-Length") or 0)
        content = handler.rfile.read(length) if length else b""
        with self._lock:
            self.seen.append((handler.command, handler.path))
            fail = len(self.seen) <= self.failures
        if fail:
            body = b'{"type":"about:blank","title":"Service Unavailable","status":503}'
            handler.send_response(503)
            handler.send_header("Content-Type", "application/problem+json")
            if self.retry_after is not None:
                handler.send_header("Retry-After", self.retry_after)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        headers = {
            k: v for k, v in handler.headers.items() if k.lower() not in {"host", *HOP_BY_HOP}
        }
        answer = self._http.request(handler.command, handler.path, headers=headers, content=content)
        handler.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.content)))
        handler.end_headers()
        handler.wfile.write(answer.content)


@contextmanager
def flaky_proxy(
    upstream: str, failures: int, retry_after: str | None = "0"
) -> Iterator[tuple[str, FlakyProxy]]:
    """A running proxy: (its base URL, the proxy)."""
    proxy = FlakyProxy(upstream, failures, retry_after)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            proxy.handle(self)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _any

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet: the test reads `seen`

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", proxy
    finally:
        server.shutdown()
        server.server_close()
        proxy._http.close()
