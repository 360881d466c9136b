"""Webhooks (DESIGN §8 "Events"): deliveries through the job queue, signed, retried with
growing gaps until delivered once, logged attempt by attempt; an endpoint that never
answers holds up no other; private addresses refused unless allowed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from jobs_support import start_worker, stop_worker, wait_until

from ccvault.api.app import create_app
from ccvault.config import Settings
from ccvault.runtime import Vault, open_vault
from ccvault.storage.tenants import TenantStore

SECRET = "s3cret-for-tests"


@dataclass
class Hit:
    """One request the receiver got."""

    path: str
    at: float
    body: bytes
    headers: dict[str, str]
    signed: bool


@dataclass
class Receiver:
    """A local HTTP endpoint: answers each path by its behaviour, checks signatures."""

    behaviour: dict[str, Callable[[int], Awaitable[int]]]
    hits: list[Hit] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {
                k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:] if h)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            hit = Hit(path, time.monotonic(), body, headers, _verify(headers, body))
            self.hits.append(hit)
            n = sum(1 for h in self.hits if h.path == path)
            status = await self.behaviour[path](n)
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        finally:
            writer.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _verify(headers: dict[str, str], body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in headers["ccv-signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    fresh = abs(int(parts["t"]) - time.time()) < 60
    return fresh and hmac.compare_digest(parts["v1"], expected.hexdigest())


@contextlib.asynccontextmanager
async def receiving(
    behaviour: dict[str, Callable[[int], Awaitable[int]]],
) -> AsyncIterator[Receiver]:
    receiver = Receiver(behaviour)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        server.close()


@pytest.fixture
def hook_settings(isolated_settings: Settings) -> Settings:
    return isolated_settings.model_copy(
        update={
            "webhook_allow_private": True,
            "webhook_backoff_seconds": 2.0,
            "webhook_timeout_seconds": 3.0,
            "webhook_attempts": 5,
        }
    )


@pytest.fixture
async def hook_vault(hook_settings: Settings) -> AsyncIterator[Vault]:
    opened = await open_vault(hook_settings)
    yield opened
    await opened.close()


@pytest.fixture
async def hook_api(hook_vault: Vault) -> AsyncIterator[httpx.AsyncClient]:
    _, key = await TenantStore(hook_vault.pool).create(f"t-{uuid.uuid4().hex}", "warn")
    app = create_app(vault=hook_vault)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://vault",
        headers={"Authorization": f"Bearer {key}"},
    ) as client:
        yield client


async def answer(status: int) -> int:
    return status


async def register(api: httpx.AsyncClient, url: str, types: list[str]) -> str:
    resp = await api.post("/v1/webhooks", json={"url": url, "types": types, "secret": SECRET})
    assert resp.status_code == 201, resp.text
    assert "secret" not in resp.json()
    return str(resp.json()["id"])


async def write(api: httpx.AsyncClient, customer: str, name: str = "city") -> str:
    resp = await api.put(
        f"/v1/profiles/{customer}/fields/{name}", json={"value": "x", "source": "user_provided"}
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


@pytest.mark.timeout(60)
async def test_500_twice_then_200_is_retried_with_growing_gaps_and_delivered_once(
    hook_vault: Vault, hook_api: httpx.AsyncClient
) -> None:
    async def flaky(n: int) -> int:
        return 500 if n <= 2 else 200

    async with receiving({"/flaky": flaky}) as receiver:
        hook = await register(hook_api, receiver.url("/flaky"), ["field.written"])
        worker = start_worker(hook_vault, "hooks-1")
        try:
            field_id = await write(hook_api, "alice")

            async def delivered() -> bool:
                return len(receiver.hits) >= 3

            await wait_until(delivered, 30, "three attempts")
            await asyncio.sleep(1.5)  # no fourth attempt follows a 200
        finally:
            await stop_worker(worker)
    hits = receiver.hits
    assert len(hits) == 3
    assert all(h.signed for h in hits)
    bodies = [json.loads(h.body) for h in hits]
    assert {b["id"] for b in bodies} == {bodies[0]["id"]}
    assert bodies[0]["type"] == "field.written"
    assert bodies[0]["data"] == {"id": field_id, "name": "city"}
    assert bodies[0]["customer_id"] == "alice"
    gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
    # 2 s then 4 s (the worker polls for due retries once a second).
    assert gaps[0] >= 1.9 and gaps[1] >= 3.9 and gaps[1] > gaps[0], gaps

    resp = await hook_api.get(f"/v1/webhooks/{hook}/deliveries")
    assert resp.status_code == 200
    log = sorted(resp.json()["items"], key=lambda d: d["attempt"])
    assert [(d["attempt"], d["status_code"], d["error"]) for d in log] == [
        (1, 500, "HTTP 500"),
        (2, 500, "HTTP 500"),
        (3, 200, None),
    ]
    assert {d["event_id"] for d in log} == {bodies[0]["id"]}


@pytest.mark.timeout(60)
async def test_an_endpoint_that_never_answers_holds_up_no_other(
    hook_vault: Vault, hook_api: httpx.AsyncClient
) -> None:
    async def hang(n: int) -> int:
        await asyncio.sleep(3600)
        return 200

    async with receiving({"/hang": hang, "/ok": lambda n: answer(204)}) as receiver:
        stuck = await register(hook_api, receiver.url("/hang"), [])
        await register(hook_api, receiver.url("/ok"), ["field.written"])
        worker = start_worker(hook_vault, "hooks-2")
        try:
            for i in range(4):
                await write(hook_api, f"c{i}")
            started = time.monotonic()

            async def all_ok() -> bool:
                return sum(1 for h in receiver.hits if h.path == "/ok") >= 4

            await wait_until(all_ok, 20, "the healthy endpoint's deliveries")
            took = time.monotonic() - started
            # Less than one timeout of the hanging endpoint (3 s) for all four.
            assert took < 2.5, took

            async def logged_timeout() -> bool:
                resp = await hook_api.get(f"/v1/webhooks/{stuck}/deliveries")
                return any(d["error"] == "timeout" for d in resp.json()["items"])

            await wait_until(logged_timeout, 10, "the hanging endpoint's timeout logged")
        finally:
            await stop_worker(worker)
    assert [h.path for h in receiver.hits].count("/ok") == 4


async def test_private_urls_are_refused_by_default_and_secrets_never_answered(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest",
    ):
        resp = await api.post("/v1/webhooks", json={"url": url, "types": [], "secret": SECRET})
        assert resp.status_code == 422, (url, resp.text)
    for body in (
        {"url": "ftp://example.com/x", "types": [], "secret": SECRET},
        {"url": "https://93.184.216.34/x", "types": ["nope"], "secret": SECRET},
        {"url": "https://93.184.216.34/x", "types": [], "secret": "short"},
    ):
        assert (await api.post("/v1/webhooks", json=body)).status_code == 422
    created = await api.post(
        "/v1/webhooks",
        json={"url": "https://93.184.216.34/x", "types": ["field.written"], "secret": SECRET},
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert set(hook) == {"id", "url", "types", "created_at"}
    listed = (await api.get("/v1/webhooks")).json()["items"]
    assert listed == [hook] and SECRET not in json.dumps(listed)
    assert (await api.get(f"/v1/webhooks/{hook['id']}/deliveries")).json() == {"items": []}
    # Another tenant's endpoint does not exist for this one.
    assert (await other_api.delete(f"/v1/webhooks/{hook['id']}")).status_code == 404
    assert (await other_api.get(f"/v1/webhooks/{hook['id']}/deliveries")).status_code == 404
    assert (await api.delete(f"/v1/webhooks/{hook['id']}")).status_code == 204
    assert (await api.delete(f"/v1/webhooks/{hook['id']}")).status_code == 404
