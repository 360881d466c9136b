"""A 500 answer is problem+json with `Connection: close`: the server drops the connection
after it, so a keep-alive client must be told not to reuse it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api_support import assert_problem
from ccvault.api.app import create_app
from ccvault.runtime import Vault


def failing_app(vault: Vault) -> FastAPI:
    """The real app plus one route with a bug in it."""
    app = create_app(vault=vault)

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    return app


@pytest.fixture
async def server(vault: Vault) -> AsyncIterator[str]:
    """uvicorn serving the failing app on a free port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(failing_app(vault), lifespan="off", log_level="critical")
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve(sockets=[sock]))
    while not served.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        await task
        sock.close()


async def test_a_500_from_a_real_server_says_connection_close_and_closes_it(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        request = f"GET /boom HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=30)  # until the server closes
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 500 Internal Server Error"
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    assert headers["connection"].lower() == "close"
    assert headers["content-type"] == "application/problem+json"
    assert b'"status":500' in body


async def test_a_keep_alive_client_gets_a_fresh_connection_after_a_500(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        failed = await client.get("/boom")
        assert_problem(failed, 500)
        assert failed.headers["connection"] == "close"
        assert (await client.get("/healthz")).status_code == 200


async def test_a_500_says_connection_close_at_the_asgi_level(vault: Vault) -> None:
    transport = httpx.ASGITransport(app=failing_app(vault), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://vault") as client:
        resp = await client.get("/boom")
    assert_problem(resp, 500)
    assert resp.headers["connection"] == "close"
