"""The throughput baselines: a bare FastAPI app returning the profile's JSON bytes.

Same framework, same server (uvicorn, same workers and options as `ccv serve`), same
response size and path shape as the vault's warm profile read, but no middleware, no auth,
no cache layer: what serving those bytes costs before the vault does anything.

    uvicorn bare_app:create_app --factory --app-dir benchmarks --workers 2

Routes: PATH answers a constant body. When CCV_BENCH_BARE_REDIS_URL and
CCV_BENCH_BARE_REDIS_KEY are set, REDIS_PATH answers the same bytes read by one plain
`redis.asyncio` GET of the vault's cache entry per request (the JSON after its
`{epoch}:{version}|` head): the cheapest a design with one Redis round trip per request
can be with this client.

The body comes from the file named by CCV_BENCH_BARE_BODY_FILE (the benchmark writes the
profile JSON it reads from the vault there), else it is CCV_BENCH_BARE_BODY_SIZE bytes of
padding JSON (default 14 000).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Response

PATH = "/v1/profiles/bench-read"
REDIS_PATH = "/v1/profiles/bench-redis"
BODY_FILE_ENV = "CCV_BENCH_BARE_BODY_FILE"
BODY_SIZE_ENV = "CCV_BENCH_BARE_BODY_SIZE"
REDIS_URL_ENV = "CCV_BENCH_BARE_REDIS_URL"
REDIS_KEY_ENV = "CCV_BENCH_BARE_REDIS_KEY"


def padding_json(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (at least 12)."""
    head, tail = b'{"pad":"', b'"}'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


def body_from_env() -> bytes:
    """The body this process serves: the named file, else padding of the named size."""
    path = os.environ.get(BODY_FILE_ENV)
    if path:
        return Path(path).read_bytes()
    return padding_json(int(os.environ.get(BODY_SIZE_ENV) or 14_000))


def build(
    body: bytes, path: str = PATH, *, redis_url: str | None = None, redis_key: str = ""
) -> FastAPI:
    """The bare app serving `body` at `path`, and with `redis_url` the Redis-read route
    (also used in-process by the benchmark)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if redis_url is None:
            yield
            return
        app.state.redis = aioredis.Redis.from_url(redis_url)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)

    async def constant() -> Response:
        return Response(content=body, media_type="application/json")

    app.add_api_route(path, constant, methods=["GET"])
    if redis_url is not None:
        key = redis_key

        async def from_redis() -> Response:
            value = await app.state.redis.get(key)
            if value is None:
                raise HTTPException(404, "no cache entry")
            return Response(content=value.partition(b"|")[2], media_type="application/json")

        app.add_api_route(REDIS_PATH, from_redis, methods=["GET"])
    return app


def create_app() -> FastAPI:
    """uvicorn factory: the bare app configured by the environment."""
    return build(
        body_from_env(),
        redis_url=os.environ.get(REDIS_URL_ENV) or None,
        redis_key=os.environ.get(REDIS_KEY_ENV, ""),
    )
