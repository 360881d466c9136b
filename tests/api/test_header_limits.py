"""Request heads are bounded by the server (`ccv serve`, real sockets): size, header count
and time; the parser's own refusals are problem+json like every other error."""

from __future__ import annotations

import contextlib
import json
import secrets
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ccvault.config import Settings
from serve_support import Served, clean_env, free_port, own_data_dir

HEAD_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def served(settings: Settings) -> Iterator[Served]:
    """`ccv serve` on the suite's servers, with a short head timeout."""
    assert settings.database_url and settings.redis_url
    with own_data_dir() as data_dir:
        yield from _serve(settings, data_dir)


def _serve(settings: Settings, data_dir: Path) -> Iterator[Served]:
    assert settings.database_url and settings.redis_url
    env = clean_env(
        CCV_DATA_DIR=str(data_dir),
        CCV_DATABASE_URL=settings.database_url,
        CCV_REDIS_URL=settings.redis_url,
        CCV_ADMIN_API_KEY=secrets.token_urlsafe(16),
        CCV_HEADER_TIMEOUT_SECONDS=str(HEAD_TIMEOUT),
        CCV_LOG_FORMAT="json",
    )
    server = Served(data_dir, free_port(), "--no-worker", env=env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill_everything()


def _connect(served: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=20)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a timeout here fails the test)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _exchange(served: Served, payload: bytes) -> bytes:
    """Send `payload` (a server that has refused it may stop reading) and read the answer."""
    with _connect(served) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(payload)
        return _read_until_closed(sock)


def _parse(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, json.loads(body) if body else None


def _assert_problem(raw: bytes, status: int) -> dict[str, Any]:
    """One problem+json answer with `status`, and the connection closed after it."""
    assert raw.count(b"HTTP/1.1 ") == 1, raw[:500]
    got, headers, body = _parse(raw)
    assert got == status, raw[:500]
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert body["status"] == status
    assert body["type"].startswith("urn:ccvault:problem:")
    assert isinstance(body["title"], str) and isinstance(body["detail"], str)
    return dict(body)


def _request(*headers: str) -> bytes:
    lines = ["GET /healthz HTTP/1.1", "Host: vault", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_head_within_the_limits_is_answered(served: Served) -> None:
    headers = [f"X-Field-{i}: {'v' * 150}" for i in range(98)]  # 100 headers, ~16 KiB
    raw = _exchange(served, _request(*headers, "Connection: close"))
    assert _parse(raw)[0] == 200


def test_pipelined_requests_on_one_connection_are_all_answered(served: Served) -> None:
    raw = _exchange(served, _request() + _request("Connection: close"))
    assert raw.count(b"HTTP/1.1 200 OK") == 2


def test_a_header_over_the_size_limit_answers_431(served: Served) -> None:
    body = _assert_problem(_exchange(served, _request(f"X-Big: {'a' * 40_000}")), 431)
    assert body["title"] == "Request Header Fields Too Large"
    assert "32768 bytes" in body["detail"]


def test_too_many_headers_answer_431(served: Served) -> None:
    headers = [f"X-N{i}: 1" for i in range(101)]
    body = _assert_problem(_exchange(served, _request(*headers)), 431)
    assert "at most 100 headers" in body["detail"]


def test_a_request_target_over_the_limit_answers_414(served: Served) -> None:
    payload = f"GET /{'a' * 40_000} HTTP/1.1\r\nHost: vault\r\n\r\n".encode()
    _assert_problem(_exchange(served, payload), 414)


def test_a_huge_header_is_refused_early_while_other_clients_are_served(served: Served) -> None:
    answer: list[bytes] = []
    huge = _request(f"X-Huge: {'a' * (8 << 20)}")  # 8 MiB, in one header
    flood = threading.Thread(target=lambda: answer.append(_exchange(served, huge)))
    flood.start()
    try:
        statuses = [httpx.get(f"{served.base}/healthz", timeout=10).status_code for _ in range(20)]
    finally:
        flood.join(timeout=60)
    assert statuses == [200] * 20
    _assert_problem(answer[0], 431)


def test_a_head_still_incomplete_after_the_timeout_answers_408(served: Served) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: vault\r\n")
        assert httpx.get(f"{served.base}/healthz", timeout=10).status_code == 200
        body = _assert_problem(_read_until_closed(sock), 408)
    assert f"{HEAD_TIMEOUT:g} seconds" in body["detail"]


def test_a_head_trickled_a_byte_at_a_time_still_times_out(served: Served) -> None:
    """Every byte restarts uvicorn's keep-alive timer; the head timer is not restarted."""
    trickle = b"X-Slow: " + b"s" * 200
    with _connect(served) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: vault\r\n")
        for byte in trickle:
            if select.select([sock], [], [], 0.1)[0]:
                break  # the server has answered
            sock.sendall(bytes([byte]))
        _assert_problem(_read_until_closed(sock), 408)


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(served: Served) -> None:
    with _connect(served) as sock:
        started = time.monotonic()
        assert _read_until_closed(sock) == b""
    assert time.monotonic() - started >= HEAD_TIMEOUT * 0.9


@pytest.mark.parametrize(
    "payload",
    [
        b"GE\x01T /healthz HTTP/1.1\r\nHost: vault\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: vault\r\nBad Name: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: vault\r\nContent-Length: nope\r\n\r\n",
        b"GET /healthz HTTP/7.1\r\nHost: vault\r\n\r\n",
    ],
    ids=["bad-method", "bad-header-name", "bad-content-length", "bad-version"],
)
def test_the_parsers_400_is_problem_json(served: Served, payload: bytes) -> None:
    body = _assert_problem(_exchange(served, payload), 400)
    assert body["title"] == "Bad Request"
    assert body["detail"].startswith("The request is not valid HTTP/1.1")
