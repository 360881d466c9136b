"""Profile cache benchmark (issue #4): warm reads against a raw Redis GET, and HTTP throughput
of `ccv serve` against a bare FastAPI route serving the same bytes.

Part 1, latency (one process, interleaved like the core benchmark): a vault opened with
`open_vault` on a real PostgreSQL and a real Redis/Valkey, one profile of the core shape
(20 fields x 3 versions, 2 assets) read warm through the library (`get_profile_json`,
`get_profile`) and through the API app in-process (httpx.ASGITransport: no sockets), each
against a raw `redis.asyncio` GET of the same cache entry on a client of its own. Target:
p50 <= 2x that GET. The plain GET is answered by the pure-ASGI fast path (api/fast_read.py);
the same GET with a query string the route ignores (`?via=route`) goes through FastAPI's
routing and dependencies, timed next to it. A second group splits the in-process HTTP path
by calling ASGI apps directly (no HTTP client): bare FastAPI, its dependencies, the vault's
middleware stack, auth, the cache read.

Part 2, throughput over real sockets: `ccv serve --workers 2` on the same servers, and a
bare FastAPI app (bare_app.py, the same profile bytes as a constant) under
`uvicorn --workers 2`, loaded in turn by the same generator (wrk if installed, else a
Python asyncio client) for the same time. Target: the vault's requests/s >= 70% of the
bare app's. A third, diagnostic target is the bare app answering the same bytes from one
plain redis GET per request: the ceiling of a design with one Redis round trip per
request. The vault makes fewer: its cache sends the concurrent reads of one event-loop
turn as one MGET (Redis commands per request are recorded for every run). On a 2-core
machine the generator, Redis and the workers share the cores.

Run alone: `python benchmarks/cache_bench.py` (or `python benchmarks/run.py cache`).
Environment: CCV_BENCH_DATABASE_URL, CCV_BENCH_REDIS_URL, CCV_BENCH_ITERATIONS (2000),
CCV_BENCH_WARMUP (200), CCV_BENCH_LOOP, CCV_BENCH_CACHE_OUTPUT (results/cache.json),
CCV_BENCH_HTTP_SECONDS (8), CCV_BENCH_HTTP_ROUNDS (2), CCV_BENCH_HTTP_WARMUP_SECONDS (3),
CCV_BENCH_HTTP_CONNECTIONS (32), CCV_BENCH_HTTP_WORKERS (2), CCV_BENCH_WRK_THREADS (1),
CCV_BENCH_LOADGEN (auto | wrk | python).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import redis.asyncio as aioredis
from fastapi import FastAPI, Response
from prometheus_client import REGISTRY
from starlette.types import ASGIApp, Message

import bare_app
import loadgen
import report
import scenarios
from ccvault.api.app import create_app
from ccvault.api.auth import CurrentCaller
from ccvault.api.deps import CustomerId, ServicesDep
from ccvault.config import Settings
from ccvault.domain.models import Profile
from ccvault.runtime import Vault, open_vault
from harness import Stats, log, measure_interleaved, run_async
from scenarios import Group
from servers import Server, fresh_database, postgres_server, redact, redis_server, server_info

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "cache.json"
READ = scenarios.READ  # the customer_id read everywhere
PROFILE_PATH = f"/v1/profiles/{READ}"
# Any query string makes the fast path fall through; FastAPI ignores an unknown parameter.
VIA_ROUTE = b"via=route"
LATENCY_TARGET = 2.0  # p50 <= 2x a raw Redis GET of the same bytes
THROUGHPUT_TARGET = 0.70  # vault req/s >= 70% of the bare FastAPI route's
FLOOR = "floor: redis GET of the entry (own client)"
BARE_DIRECT = "floor: bare FastAPI route"
HITS, MISSES = "ccv_cache_hits_total", "ccv_cache_misses_total"


@dataclass(frozen=True)
class Config:
    """Knobs, from CCV_BENCH_* variables."""

    iterations: int
    warmup: int
    http_seconds: float
    http_rounds: int
    http_warmup_seconds: float
    connections: int
    workers: int
    wrk_threads: int
    loadgen: str
    output: Path

    @classmethod
    def from_env(cls) -> Config:
        """Defaults keep the section near a minute on a 2-core machine."""
        env = os.environ.get
        return cls(
            iterations=int(env("CCV_BENCH_ITERATIONS") or 2000),
            warmup=int(env("CCV_BENCH_WARMUP") or 200),
            http_seconds=float(env("CCV_BENCH_HTTP_SECONDS") or 8),
            http_rounds=int(env("CCV_BENCH_HTTP_ROUNDS") or 2),
            http_warmup_seconds=float(env("CCV_BENCH_HTTP_WARMUP_SECONDS") or 3),
            connections=int(env("CCV_BENCH_HTTP_CONNECTIONS") or 32),
            workers=int(env("CCV_BENCH_HTTP_WORKERS") or 2),
            wrk_threads=int(env("CCV_BENCH_WRK_THREADS") or 1),
            loadgen=env("CCV_BENCH_LOADGEN") or "auto",
            output=Path(env("CCV_BENCH_CACHE_OUTPUT") or DEFAULT_OUTPUT),
        )


# -- part 1: latency --------------------------------------------------------------------


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class AsgiGet:
    """A GET handed straight to an ASGI app: no client, no sockets, only the app's cost."""

    def __init__(
        self, app: ASGIApp, path: str, headers: dict[str, str], query: bytes = b""
    ) -> None:
        self.app = app
        self.path = path
        self.raw_path = path.encode()
        self.query = query
        self.headers = [(b"host", b"bench")] + [
            (k.lower().encode(), v.encode()) for k, v in headers.items()
        ]

    async def __call__(self) -> bytes:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.raw_path,
            "root_path": "",
            "query_string": self.query,
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
            "server": ("bench", 80),
            "state": {},
        }
        status = 0
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, _receive, send)
        if status != 200:
            raise RuntimeError(f"GET {self.path} answered {status}: {b''.join(chunks)[:300]!r}")
        return b"".join(chunks)


def _diagnostic_app(vault: Vault, body: bytes) -> FastAPI:
    """The vault's app with two constant routes put first in its router (where the profile
    route sits): one bare, one with the profile route's path parameter and dependencies."""
    app = create_app(vault=vault)

    async def constant() -> Response:
        return Response(content=body, media_type="application/json")

    async def constant_with_auth(
        customer_id: CustomerId, services: ServicesDep, caller: CurrentCaller
    ) -> Response:
        return Response(content=body, media_type="application/json")

    app.add_api_route("/bench/constant", constant, methods=["GET"])
    app.add_api_route("/bench/auth/{customer_id}", constant_with_auth, methods=["GET"])
    routes = app.router.routes
    routes[:0] = [routes.pop(), routes.pop()]
    return app


def _bare_with_deps(vault: Vault, body: bytes) -> FastAPI:
    """A bare FastAPI app whose one route takes the vault's two async dependencies."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.vault = vault
    app.state.services = vault.services
    app.state.settings = vault.settings

    async def constant(services: ServicesDep, caller: CurrentCaller) -> Response:
        return Response(content=body, media_type="application/json")

    app.add_api_route(PROFILE_PATH, constant, methods=["GET"])
    return app


class WarmReads:
    """The timed calls of part 1, over one seeded, warmed profile."""

    def __init__(
        self, vault: Vault, redis_url: str, tenant_id: UUID, api_key: str, body: bytes
    ) -> None:
        self.vault = vault
        self.tenant_id = tenant_id
        self.api_key = api_key
        self.body = body
        assert vault.cache is not None
        self.key = vault.cache.key(tenant_id, READ)
        self.floor_client = aioredis.Redis.from_url(redis_url)
        auth = {"authorization": f"Bearer {api_key}"}
        self.app = create_app(vault=vault)
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://bench", headers=auth
        )
        bare = bare_app.build(body, PROFILE_PATH)
        self.bare_http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=bare), base_url="http://bench"
        )
        diagnostic = _diagnostic_app(vault, body)
        bare_redis = bare_app.build(body, redis_url=redis_url, redis_key=self.key)
        bare_redis.state.redis = self.floor_client  # what its lifespan would open
        self.direct = AsgiGet(self.app, PROFILE_PATH, auth)
        self.route_direct = AsgiGet(self.app, PROFILE_PATH, auth, query=VIA_ROUTE)
        self.bare_direct = AsgiGet(bare, PROFILE_PATH, {})
        self.bare_deps_direct = AsgiGet(_bare_with_deps(vault, body), PROFILE_PATH, auth)
        self.stack_direct = AsgiGet(diagnostic, "/bench/constant", auth)
        self.auth_direct = AsgiGet(diagnostic, f"/bench/auth/{READ}", auth)
        self.bare_redis_direct = AsgiGet(bare_redis, bare_app.REDIS_PATH, {})

    async def close(self) -> None:
        """Close the clients (the vault is the caller's)."""
        await self.http.aclose()
        await self.bare_http.aclose()
        await self.floor_client.aclose()

    async def library_bytes(self) -> bytes:
        """The library's warm read: one MGET (a batch of one: nothing else reads meanwhile),
        the cached JSON bytes as they are."""
        return await self.vault.profiles.get_profile_json(self.tenant_id, READ)

    async def library_model(self) -> Profile:
        """The same read parsed into the pydantic model."""
        return await self.vault.profiles.get_profile(self.tenant_id, READ)

    async def http_in_process(self) -> bytes:
        """GET /v1/profiles/{id} through httpx's in-process ASGI transport (the fast path)."""
        response = await self.http.get(PROFILE_PATH)
        if response.status_code != 200:
            raise RuntimeError(f"in-process GET answered {response.status_code}")
        return response.content

    async def http_in_process_route(self) -> bytes:
        """The same GET with `?via=route`: FastAPI's routing and dependencies, as before."""
        response = await self.http.get(PROFILE_PATH, params={"via": "route"})
        if response.status_code != 200:
            raise RuntimeError(f"in-process GET via the route answered {response.status_code}")
        return response.content

    async def bare_in_process(self) -> bytes:
        """The bare FastAPI constant route through the same in-process transport."""
        return (await self.bare_http.get(PROFILE_PATH)).content

    async def cache_get(self) -> object:
        """ProfileCache.get alone: MGET of the epoch and the entry, breaker, counters."""
        assert self.vault.cache is not None
        return await self.vault.cache.get(self.tenant_id, READ)

    async def parse_only(self) -> Profile:
        """What get_profile adds to the bytes: pydantic parsing, no I/O."""
        return Profile.model_validate_json(self.body)

    async def floor_get(self) -> bytes | None:
        """Floor: a raw GET of the entry (`{epoch}:{version}|{json}`) on a client of its own."""
        value = await self.floor_client.get(self.key)
        return value if value is None or isinstance(value, bytes) else value.encode()

    async def resolve_key(self) -> object:
        """The auth key cache: sha256 of the key and a dict lookup."""
        return await self.vault.keys.resolve(self.api_key)

    def groups(self) -> list[Group]:
        """The latency groups, with targets from issue #4 and notes for diagnostics."""
        return [
            Group(
                name="warm profile read",
                ops={
                    "get_profile_json (bytes)": self.library_bytes,
                    "get_profile (model)": self.library_model,
                    "HTTP GET, in-process (httpx ASGITransport)": self.http_in_process,
                    "HTTP GET, direct ASGI call (no client)": self.direct,
                    "HTTP GET ?via=route, in-process httpx": self.http_in_process_route,
                    "HTTP GET ?via=route, direct ASGI call": self.route_direct,
                    "bare FastAPI route, in-process httpx": self.bare_in_process,
                    "ProfileCache.get (MGET epoch+entry)": self.cache_get,
                    "Profile.model_validate_json (no I/O)": self.parse_only,
                    FLOOR: self.floor_get,
                },
                floor=FLOOR,
                # Over HTTP, the target is on the app's own cost: httpx's in-process
                # transport alone costs about 1.8x a Redis GET (the bare route row), so
                # through it no app could be within 2x.
                targets={
                    "get_profile_json (bytes)": LATENCY_TARGET,
                    "get_profile (model)": LATENCY_TARGET,
                    "HTTP GET, direct ASGI call (no client)": LATENCY_TARGET,
                },
                notes={
                    "HTTP GET, in-process (httpx ASGITransport)": "+ the httpx client",
                    "HTTP GET ?via=route, in-process httpx": "FastAPI route, not fast path",
                    "HTTP GET ?via=route, direct ASGI call": "the route's own cost",
                    "bare FastAPI route, in-process httpx": "the transport+FastAPI alone",
                    "ProfileCache.get (MGET epoch+entry)": "the cache layer, a batch of one",
                    "Profile.model_validate_json (no I/O)": "what the model read adds",
                },
            ),
            Group(
                name="warm HTTP path split (direct ASGI calls, no client)",
                ops={
                    "bare route + get_vault, current_caller": self.bare_deps_direct,
                    "vault app, constant route": self.stack_direct,
                    "vault app, constant route + path + auth": self.auth_direct,
                    "vault app, GET /v1/profiles/{id}?via=route": self.route_direct,
                    "vault app, GET /v1/profiles/{id}": self.direct,
                    "KeyResolver.resolve (remembered key)": self.resolve_key,
                    "bare route + 1 redis GET": self.bare_redis_direct,
                    BARE_DIRECT: self.bare_direct,
                },
                floor=BARE_DIRECT,
                notes={
                    "bare route + get_vault, current_caller": "FastAPI solving the 2 deps",
                    "vault app, constant route": "+ the vault's middleware stack",
                    "vault app, constant route + path + auth": "+ path pattern, deps, auth",
                    "vault app, GET /v1/profiles/{id}?via=route": "+ the cache read",
                    "vault app, GET /v1/profiles/{id}": "fast path: auth + cache read",
                    "KeyResolver.resolve (remembered key)": "auth's per-request lookup",
                    "bare route + 1 redis GET": "least a read with its own round trip costs",
                },
            ),
        ]

    async def check(self) -> None:
        """Refuse to time a wrong setup: every path must answer the same warm bytes."""
        entry = await self.floor_get()
        if entry is None or not entry.endswith(b"|" + self.body):
            raise RuntimeError("the cache entry does not hold the profile's JSON")
        same = {
            "get_profile_json": await self.library_bytes(),
            "in-process HTTP": await self.http_in_process(),
            "direct ASGI": await self.direct(),
            "in-process HTTP via the route": await self.http_in_process_route(),
            "direct ASGI via the route": await self.route_direct(),
            "bare route": await self.bare_in_process(),
        }
        for what, got in same.items():
            if got != self.body:
                raise RuntimeError(f"{what} answered different bytes ({len(got)} B)")
        profile = await self.library_model()
        if len(profile.fields) != scenarios.FIELDS or len(profile.assets) != 2:
            raise RuntimeError("the seeded profile has the wrong shape")
        for call in (self.bare_deps_direct, self.stack_direct, self.auth_direct):
            await call()
        if await self.bare_redis_direct() != self.body:
            raise RuntimeError("the bare Redis route answered different bytes")


def _counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def create_tenant(vault: Vault, prefix: str) -> tuple[UUID, str]:
    """A fresh tenant and its API key."""
    tenant, key = await vault.tenants.create(f"{prefix}-{uuid.uuid4().hex[:8]}", "warn")
    return tenant.tenant_id, key


async def measure_latency(
    vault: Vault, redis_url: str, cfg: Config
) -> tuple[list[Group], dict[str, dict[str, Stats]], dict[str, Any]]:
    """Seed and warm a profile, then time both latency groups."""
    tenant_id, api_key = await create_tenant(vault, "bench-cache")
    await scenarios.seed_profile(vault.profiles, tenant_id, READ)
    body = await vault.profiles.get_profile_json(tenant_id, READ)  # the miss that fills it
    reads = WarmReads(vault, redis_url, tenant_id, api_key, body)
    try:
        await reads.check()
        groups = reads.groups()
        results: dict[str, dict[str, Stats]] = {}
        hits, misses = _counter(HITS), _counter(MISSES)
        for group in groups:
            started = time.perf_counter()
            results[group.name] = await measure_interleaved(
                group.ops, iterations=cfg.iterations, warmup=cfg.warmup
            )
            log(f"timed {group.name!r} in {time.perf_counter() - started:.1f}s")
        counters = {"hits": _counter(HITS) - hits, "misses": _counter(MISSES) - misses}
    finally:
        await reads.close()
    if counters["misses"]:
        log(f"WARNING: {counters['misses']:.0f} cache misses while timing warm reads")
    return groups, results, {"profile_bytes": len(body), "cache_counters": counters}


# -- part 2: throughput -----------------------------------------------------------------


@dataclass
class ServerProcess:
    """An HTTP server we started (in its own session, so its workers go with it)."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:port"""
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of its output, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(name: str, cmd: list[str], env: dict[str, str], workdir: Path) -> ServerProcess:
    """Start a server in a new session, its output going to a log file in `workdir`."""
    log_path = workdir / f"{name}.log"
    port = int(cmd[cmd.index("--port") + 1])
    with log_path.open("wb") as out:
        popen = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return ServerProcess(name, popen, port, log_path)


async def wait_ready(server: ServerProcess, path: str, headers: dict[str, str]) -> None:
    """Poll until the server answers 200 on `path` (60 s at most)."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
        while time.monotonic() < deadline:
            if server.popen.poll() is not None:
                raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(path, timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{server.name} did not become ready:\n{server.log_tail()}")


def stop_server(server: ServerProcess) -> float | None:
    """SIGTERM to the server we started (uvicorn stops its workers), SIGKILL to its
    process group if it has not gone in 15 s. Returns the seconds it took to exit on its
    own, None when it had to be killed."""
    if server.popen.poll() is not None:
        return 0.0
    started = time.monotonic()
    server.popen.send_signal(signal.SIGTERM)
    try:
        server.popen.wait(timeout=15)
    except subprocess.TimeoutExpired:
        log(f"{server.name} did not stop within 15 s of SIGTERM; killing its process group")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.popen.pid, signal.SIGKILL)
        server.popen.wait(timeout=5)
        return None
    return round(time.monotonic() - started, 2)


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (from /proc)."""
    found = [pid]
    for tasks in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            for child in tasks.read_text().split():
                found += process_tree(int(child))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU time used so far by these processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def connections_per_process(port: int) -> dict[str, int]:
    """Established connections to `port` per server pid (`ss`), to see how the kernel
    spread the generator's connections over the workers."""
    try:
        out = subprocess.run(
            ["ss", "-Htnp", "state", "established", "(", "sport", "=", f":{port}", ")"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    counts: dict[str, int] = {}
    for pid in re.findall(r"pid=(\d+)", out):
        counts[pid] = counts.get(pid, 0) + 1
    return dict(sorted(counts.items()))


async def redis_usage(client: aioredis.Redis) -> tuple[float, int]:
    """The Redis server's own CPU time (INFO cpu) and commands executed so far (INFO stats),
    whoever else is using it."""
    info = await client.info("all")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"]), int(
        info["total_commands_processed"]
    )


async def postgres_transactions(url: str) -> int:
    """Commits+rollbacks of the benchmark database so far (pg_stat_database, approximate:
    backends report at most once a second)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        row = await cur.fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Target:
    """One server under load."""

    label: str
    server: ServerProcess
    url: str
    headers: dict[str, str]


async def load_once(
    target: Target,
    tool: str,
    cfg: Config,
    seconds: float,
    redis_client: aioredis.Redis,
    database_url: str,
) -> dict[str, Any]:
    """One load run with the server-side costs measured around it."""
    pids = process_tree(target.server.popen.pid)
    log_offset = target.server.log_path.stat().st_size
    load_before = os.getloadavg()[0]
    cpu_before = cpu_seconds(pids)
    redis_before, commands_before = await redis_usage(redis_client)
    xact_before = await postgres_transactions(database_url)

    async def snapshot() -> dict[str, int]:
        await asyncio.sleep(seconds / 2)
        return await asyncio.to_thread(connections_per_process, target.server.port)

    spread = asyncio.create_task(snapshot())
    result = await loadgen.run(
        tool,
        target.url,
        seconds=seconds,
        connections=cfg.connections,
        threads=cfg.wrk_threads,
        headers=target.headers,
    )
    cpu = cpu_seconds(pids) - cpu_before
    redis_after, commands_after = await redis_usage(redis_client)
    redis_cpu = redis_after - redis_before
    await asyncio.sleep(1.1)  # let the workers' statistics reach pg_stat_database
    xacts = await postgres_transactions(database_url) - xact_before
    with target.server.log_path.open("rb") as server_log:
        server_log.seek(log_offset)
        events = cache_events(server_log.read().decode(errors="replace"))
    per_request = max(result.requests, 1)
    return {
        **asdict(result),
        "server_cpu_us_per_request": round(cpu / per_request * 1e6, 1),
        "server_cpu_pct": round(cpu / result.seconds * 100, 1),
        "redis_cpu_us_per_request": round(redis_cpu / per_request * 1e6, 1),
        # The vault batches concurrent reads into one MGET: well under 1 under load.
        "redis_commands_per_request": round((commands_after - commands_before) / per_request, 3),
        "loadgen_cpu_pct": round(result.loadgen_cpu_s / result.seconds * 100, 1),
        "postgres_xacts": xacts,
        "cache_events": {name: n for name, n in events.items() if n},
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "connections_per_process": await spread,
    }


async def prepare_vault_server(
    vault: Vault,
    database_url: str,
    redis_url: str,
    cfg: Config,
    workdir: Path,
    *,
    name: str = "ccv-serve",
    extra_env: dict[str, str] | None = None,
) -> tuple[ServerProcess, Target, bytes, UUID]:
    """`ccv serve --workers N` on our servers; a tenant made over HTTP, a profile seeded
    and warmed. Returns the server, its load target, the profile's JSON and the tenant."""
    admin_key = "ccv_admin_bench_" + secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "CCV_DATABASE_URL": database_url,
        "CCV_REDIS_URL": redis_url,
        "CCV_ADMIN_API_KEY": admin_key,
        "CCV_DATA_DIR": str(workdir / "ccv-data"),
        # As deployed: an access line per request (JSON into the log file), cache events
        # at INFO/WARNING.
        "CCV_LOG_LEVEL": "INFO",
        **(extra_env or {}),
    }
    ccv = Path(sys.executable).with_name("ccv")
    entry = (
        [str(ccv)] if ccv.exists() else [sys.executable, "-c", "from ccvault.cli import app; app()"]
    )
    cmd = [*entry, "serve", "--host", "127.0.0.1", "--port", str(free_port())]
    cmd += ["--workers", str(cfg.workers)]
    server = start_server(name, cmd, env, workdir)
    await wait_ready(server, "/healthz", {})
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        created = await client.post(
            "/admin/tenants",
            json={"name": f"bench-http-{uuid.uuid4().hex[:8]}"},
            headers={"authorization": f"Bearer {admin_key}"},
        )
        if created.status_code != 201:
            raise RuntimeError(f"POST /admin/tenants: {created.status_code} {created.text}")
        tenant = created.json()
        tenant_id = UUID(tenant["tenant_id"])
        await scenarios.seed_profile(vault.profiles, tenant_id, READ)
        auth = {"Authorization": f"Bearer {tenant['api_key']}"}
        bodies = [(await client.get(PROFILE_PATH, headers=auth)) for _ in range(3)]
    if any(r.status_code != 200 for r in bodies) or len({r.content for r in bodies}) != 1:
        raise RuntimeError(f"warm reads over HTTP disagree: {[r.status_code for r in bodies]}")
    target = Target(
        f"ccv serve --workers {cfg.workers}: GET /v1/profiles/{{id}}",
        server,
        server.base_url + PROFILE_PATH,
        auth,
    )
    return server, target, bodies[0].content, tenant_id


async def start_bare_server(
    body: bytes, redis_url: str, redis_key: str, cfg: Config, workdir: Path
) -> ServerProcess:
    """bare_app under `uvicorn --workers N`, options as `ccv serve` runs uvicorn with."""
    body_file = workdir / "profile.json"
    body_file.write_bytes(body)
    cmd = [sys.executable, "-m", "uvicorn", "bare_app:create_app", "--factory"]
    cmd += ["--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(free_port())]
    cmd += ["--workers", str(cfg.workers), "--no-access-log", "--no-proxy-headers"]
    cmd += ["--log-level", "warning"]
    env = {
        **os.environ,
        bare_app.BODY_FILE_ENV: str(body_file),
        bare_app.REDIS_URL_ENV: redis_url,
        bare_app.REDIS_KEY_ENV: redis_key,
    }
    server = start_server("bare-uvicorn", cmd, env, workdir)
    await wait_ready(server, bare_app.PATH, {})
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for path in (bare_app.PATH, bare_app.REDIS_PATH):
            answer = await client.get(path)
            if answer.status_code != 200 or answer.content != body:
                raise RuntimeError(f"bare app {path}: {answer.status_code}, not the profile")
    return server


async def measure_throughput(
    vault: Vault, database_url: str, redis_url: str, cfg: Config
) -> dict[str, Any]:
    """All servers up, loaded in turn; requests/s, latency and CPU per request."""
    tool = loadgen.choose(cfg.loadgen)
    described = loadgen.describe(tool, cfg.connections, cfg.wrk_threads)
    log(f"throughput: {described}, {cfg.http_rounds} x {cfg.http_seconds:g}s per target")
    servers: list[ServerProcess] = []
    redis_client = aioredis.Redis.from_url(redis_url)
    with tempfile.TemporaryDirectory(prefix="ccv-bench-http-") as tmp:
        workdir = Path(tmp)
        try:
            started = time.perf_counter()
            vault_server, vault_target, body, tenant_id = await prepare_vault_server(
                vault, database_url, redis_url, cfg, workdir
            )
            servers.append(vault_server)
            assert vault.cache is not None
            key = vault.cache.key(tenant_id, READ)
            bare = await start_bare_server(body, redis_url, key, cfg, workdir)
            servers.append(bare)
            workers = f"uvicorn --workers {cfg.workers}"
            targets = {
                "vault": vault_target,
                "bare": Target(
                    f"bare FastAPI, {workers}: constant {len(body)} B",
                    bare,
                    bare.base_url + bare_app.PATH,
                    vault_target.headers,  # the same request bytes, ignored by the bare app
                ),
                "bare+GET": Target(
                    f"bare FastAPI, {workers}: 1 redis GET/request",
                    bare,
                    bare.base_url + bare_app.REDIS_PATH,
                    vault_target.headers,
                ),
            }
            log(f"servers up in {time.perf_counter() - started:.1f}s; warming them")
            for target in targets.values():
                await loadgen.run(
                    tool,
                    target.url,
                    seconds=cfg.http_warmup_seconds,
                    connections=cfg.connections,
                    threads=cfg.wrk_threads,
                    headers=target.headers,
                )
            runs: list[dict[str, Any]] = []
            discarded: list[dict[str, Any]] = []
            for round_no in range(cfg.http_rounds):
                order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
                for name in order:
                    for attempt in range(2):
                        run = await load_once(
                            targets[name], tool, cfg, cfg.http_seconds, redis_client, database_url
                        )
                        run = {"server": name, "round": round_no + 1, **run}
                        spread = run["connections_per_process"]
                        if not spread or len(spread) >= cfg.workers or attempt:
                            break
                        # All connections went to fewer workers than there are (uvicorn's
                        # workers share one listening socket): that measures one worker.
                        log(f"round {round_no + 1} {name}: connections {spread}; run again")
                        discarded.append(run)
                    runs.append(run)
                    log(
                        f"round {round_no + 1} {name}: {run['rps']:.0f} req/s,"
                        f" {run['server_cpu_us_per_request']:.0f} µs server CPU/req,"
                        f" {run['redis_commands_per_request']:.2f} Redis commands/req,"
                        f" load {run['load_avg_1m_after']}"
                        + (f", cache events {run['cache_events']}" if run["cache_events"] else "")
                    )
        finally:
            stopped = {s.name: await asyncio.to_thread(stop_server, s) for s in servers}
            await redis_client.aclose()
            events = cache_events(servers[0].log_tail(2_000_000)) if servers else {}
    if any(events.values()):
        log(f"ccv serve logged cache events during the load: {events}")
    summary = summarise_throughput(runs, targets, tool, described, cfg, len(body))
    return {
        **summary,
        "discarded_runs": discarded,
        "stop_seconds": stopped,
        "ccv_serve_cache_events": events,
    }


CACHE_EVENTS = {
    "breaker_opened": "cache unavailable, serving from PostgreSQL",
    "breaker_closed": "cache available again",
    "epoch_raised": "cache invalidation lost; epoch raised",
    "epoch_sync_failed": "cache epoch sync failed",
}


def cache_events(server_log: str) -> dict[str, int]:
    """How often `ccv serve` logged each cache event (a breaker opening means requests
    were served from PostgreSQL for its cooldown: not warm reads)."""
    return {name: server_log.count(text) for name, text in CACHE_EVENTS.items()}


def summarise_throughput(
    runs: list[dict[str, Any]],
    targets: dict[str, Target],
    tool: str,
    described: str,
    cfg: Config,
    body_bytes: int,
) -> dict[str, Any]:
    """Per-target means, each target's ratio to the bare constant route, the verdict."""
    servers: dict[str, dict[str, Any]] = {}
    for name, target in targets.items():
        mine = [r for r in runs if r["server"] == name]
        servers[name] = {
            "label": target.label,
            "rps_runs": [r["rps"] for r in mine],
            "rps_mean": round(statistics.fmean(r["rps"] for r in mine), 1),
            "p50_ms_mean": _mean(r["p50_ms"] for r in mine),
            "p99_ms_mean": _mean(r["p99_ms"] for r in mine),
            "server_cpu_us_per_request": _mean(r["server_cpu_us_per_request"] for r in mine),
            "redis_cpu_us_per_request": _mean(r["redis_cpu_us_per_request"] for r in mine),
            "redis_commands_per_request": _mean(r["redis_commands_per_request"] for r in mine),
            "loadgen_cpu_pct": _mean(r["loadgen_cpu_pct"] for r in mine),
            "non_2xx": sum(r["non_2xx"] for r in mine),
            "errors": sum(r["errors"] for r in mine),
            "breaker_openings": sum(r["cache_events"].get("breaker_opened", 0) for r in mine),
        }
    bare = servers["bare"]
    for name, entry in servers.items():
        if name != "bare":
            entry["ratio_rps"] = round(entry["rps_mean"] / bare["rps_mean"], 3)
            entry["ratio_cpu_per_request"] = round(
                bare["server_cpu_us_per_request"] / entry["server_cpu_us_per_request"], 3
            )
    vault = servers["vault"]
    return {
        "loadgen": tool,
        "loadgen_settings": described,
        "workers": cfg.workers,
        "seconds_per_run": cfg.http_seconds,
        "rounds": cfg.http_rounds,
        "connections": cfg.connections,
        "body_bytes": body_bytes,
        "servers": servers,
        "judged": "vault",
        "baseline": "bare",
        "ratio_rps": vault["ratio_rps"],
        "target_ratio": THROUGHPUT_TARGET,
        "passed": vault["ratio_rps"] >= THROUGHPUT_TARGET
        and vault["non_2xx"] + vault["errors"] == 0,
        "runs": runs,
    }


def _mean(values: Iterator[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 2) if present else None


# -- the section --------------------------------------------------------------------------


async def redis_info(client_url: str, server: Server) -> dict[str, Any]:
    """Kind, version and address of the Redis/Valkey server."""
    client = aioredis.Redis.from_url(client_url)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    name = "valkey" if "valkey_version" in info else "redis"
    return {
        "kind": server.kind,
        "url": redact(server.url),
        "server": f"{name} {info.get(f'{name}_version', info.get('redis_version'))}",
        "transport": f"tcp {info.get('tcp_port')}" if info.get("tcp_port") else "unix socket",
    }


async def close_vault(vault: Vault) -> int:
    """vault.close(), after stopping the cache's epoch syncer so that it cannot hang.

    Workaround for a bug in src (see README, "Known problems"): on Python 3.11, redis-py
    sends through asyncio.wait_for when socket_timeout is set, and 3.11's wait_for can
    swallow a cancellation that lands as the send completes; ProfileCache.close() cancels
    the syncer once and awaits it, so it then waits forever. Cancelling until the task
    is really done avoids that without touching src.
    """
    syncer: asyncio.Task[None] | None = getattr(vault.cache, "_syncer", None)
    attempts = 0
    while syncer is not None and not syncer.done():
        syncer.cancel()
        await asyncio.wait({syncer}, timeout=0.5)
        attempts += 1
    ignored = max(0, attempts - 1)
    if ignored:
        log(f"the cache's epoch syncer ignored {ignored} cancellation(s) (known src bug)")
    await vault.close()
    return ignored


async def bench(server: Server, redis: Server, database_url: str, cfg: Config) -> dict[str, Any]:
    """Both parts on one vault; returns everything the report needs."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        pg = await server_info(conn, server)
    cache_server = await redis_info(redis.url, redis)
    log(f"PostgreSQL {pg['server_version']} ({server.kind})")
    log(f"{cache_server['server']} ({redis.kind}, {cache_server['transport']})")
    vault = await open_vault(Settings(database_url=database_url, redis_url=redis.url))
    try:
        groups, results, extra = await measure_latency(vault, redis.url, cfg)
        throughput = await measure_throughput(vault, database_url, redis.url, cfg)
    finally:
        ignored = await close_vault(vault)
    return {
        "syncer_cancellations_ignored": ignored,
        "servers": {"postgres": pg, "redis": cache_server},
        "groups": groups,
        "results": results,
        "throughput": throughput,
        **extra,
    }


def run_section(server: Server) -> None:
    """The cache section on a PostgreSQL server (Redis from the environment or embedded):
    print the tables and write cache.json. A missed target is reported, not raised."""
    cfg = Config.from_env()
    started = time.perf_counter()
    load_start = os.getloadavg()
    with redis_server() as redis, fresh_database(server.url) as url:
        outcome, loop = run_async(lambda: bench(server, redis, url, cfg))
    elapsed = time.perf_counter() - started

    table = report.rows(outcome["groups"], outcome["results"])
    throughput = outcome["throughput"]
    print(f"== profile cache (issue #4): {outcome['profile_bytes']} B profile JSON ==")
    print(report.render_table(table))
    print()
    print(report.render_throughput(throughput))
    commands = {k: v["redis_commands_per_request"] for k, v in throughput["servers"].items()}
    print(
        "  Redis commands per request (INFO stats, the whole server): "
        + ", ".join(f"{name} {n}" for name, n in commands.items())
    )
    print()
    print(report.summary(table, extra=[("HTTP throughput vs bare", throughput["passed"])]))
    print(
        f"load average (1 min) {load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end;"
        f" {os.cpu_count()} CPUs shared by the generator, Redis, PostgreSQL and the servers"
    )
    document = {
        "benchmark": "cache",
        "issue": 4,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "config": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
            "event_loop": loop,
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(),
            "python": platform.python_version(),
            **{pkg: version(pkg) for pkg in ("fastapi", "starlette", "uvicorn", "httpx", "redis")},
        },
        "servers": outcome["servers"],
        "profile_bytes": outcome["profile_bytes"],
        "cache_counters_while_timing": outcome["cache_counters"],
        # >0: ProfileCache.close() would have hung (see close_vault).
        "syncer_cancellations_ignored": outcome["syncer_cancellations_ignored"],
        "results": table,
        "throughput": throughput,
    }
    report.write_json(cfg.output, document)
    log(f"wrote {cfg.output} ({elapsed:.0f}s)")


def main() -> int:
    """Run the cache section alone (embedded PostgreSQL unless CCV_BENCH_DATABASE_URL)."""
    with postgres_server() as server:
        run_section(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
