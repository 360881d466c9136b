"""What the request-head limits cost (issue #11): warm GET /v1/profiles/{id} throughput
through uvicorn's stock httptools protocol against ccvault.http_limits' subclass.

Both servers run the same app (`uvicorn ccvault.api.app:create_app --factory`, one
worker, on the same PostgreSQL and Redis/Valkey), differ only in `--http`, and are loaded
in turn, A B B A, by the same generator (wrk if installed, else the Python client of
loadgen.py) with the same vault key and profile (20 fields x 3 versions, 2 assets, warm
in the cache). Goal: the limited protocol's requests/s within noise of the stock one's.

Run alone: `python benchmarks/http_limits_bench.py`. Environment: CCV_BENCH_DATABASE_URL,
CCV_BENCH_REDIS_URL, CCV_BENCH_HTTP_SECONDS (8), CCV_BENCH_HTTP_ROUNDS (2: each round
loads A, B, B, A), CCV_BENCH_HTTP_CONNECTIONS (32), CCV_BENCH_LOADGEN (auto | wrk |
python), CCV_BENCH_LIMITS_OUTPUT (results/http_limits.json).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import loadgen
import report
import scenarios
from cache_bench import ServerProcess, free_port, start_server, stop_server, wait_ready
from ccvault.config import Settings
from ccvault.runtime import open_vault
from ccvault.storage.tenants import TenantStore
from harness import log
from servers import fresh_database, postgres_server, redis_server

HERE = Path(__file__).resolve().parent
PATH = f"/v1/profiles/{scenarios.READ}"
PROTOCOLS = {
    "stock": "httptools",
    "limited": "ccvault.http_limits:LimitedHttpToolsProtocol",
}


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


async def _seed(database_url: str, redis_url: str) -> str:
    """A tenant with the benchmark's profile; returns its API key."""
    settings = Settings(database_url=database_url, redis_url=redis_url)
    vault = await open_vault(settings)
    try:
        tenant, key = await TenantStore(vault.pool).create(f"bench-{uuid.uuid4().hex[:8]}", "warn")
        await scenarios.seed_profile(vault.profiles, tenant.tenant_id, scenarios.READ)
    finally:
        await vault.close()
    return key


def _start(name: str, http: str, env: dict[str, str], workdir: Path) -> ServerProcess:
    cmd = [sys.executable, "-m", "uvicorn", "ccvault.api.app:create_app", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(free_port()), "--http", http]
    cmd += ["--no-access-log", "--no-proxy-headers", "--log-level", "warning"]
    return start_server(name, cmd, env, workdir)


async def measure(database_url: str, redis_url: str) -> dict[str, Any]:
    """Both servers up; A B B A rounds; requests/s per protocol and the ratio."""
    seconds = float(_env("CCV_BENCH_HTTP_SECONDS", "8"))
    rounds = int(_env("CCV_BENCH_HTTP_ROUNDS", "2"))
    connections = int(_env("CCV_BENCH_HTTP_CONNECTIONS", "32"))
    tool = loadgen.choose(_env("CCV_BENCH_LOADGEN", "auto"))
    key = await _seed(database_url, redis_url)
    auth = {"Authorization": f"Bearer {key}"}
    env = {
        **os.environ,
        "CCV_DATABASE_URL": database_url,
        "CCV_REDIS_URL": redis_url,
        "CCV_ADMIN_API_KEY": secrets.token_urlsafe(16),
        "CCV_IN_PROCESS_WORKER": "0",
        "CCV_LOG_LEVEL": "WARNING",
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PROTOCOLS}
    with tempfile.TemporaryDirectory(prefix="ccv-bench-limits-") as tmp:
        servers = {name: _start(name, http, env, Path(tmp)) for name, http in PROTOCOLS.items()}
        try:
            bodies = set()
            for server in servers.values():
                await wait_ready(server, PATH, auth)
                async with httpx.AsyncClient(base_url=server.base_url, headers=auth) as client:
                    bodies.add((await client.get(PATH)).content)
            if len(bodies) != 1:
                raise RuntimeError("the two servers answer different profiles")
            for server in servers.values():  # warm-up, untimed
                await loadgen.run(
                    tool, server.base_url + PATH, seconds=2, connections=connections, headers=auth
                )
            order = ["stock", "limited", "limited", "stock"] * rounds
            for name in order:
                result = await loadgen.run(
                    tool,
                    servers[name].base_url + PATH,
                    seconds=seconds,
                    connections=connections,
                    headers=auth,
                )
                log(f"{name:8} {result.rps:9.1f} req/s  p50 {result.p50_ms} ms")
                runs[name].append(result.__dict__)
        finally:
            for server in servers.values():
                stop_server(server)
    rps = {name: statistics.mean(r["rps"] for r in results) for name, results in runs.items()}
    return {
        "loadgen": loadgen.describe(tool, connections, 1),
        "seconds_per_run": seconds,
        "runs": runs,
        "mean_rps": {name: round(value, 1) for name, value in rps.items()},
        "ratio_limited_to_stock": round(rps["limited"] / rps["stock"], 3),
        "errors": sum(r["errors"] + r["non_2xx"] for rs in runs.values() for r in rs),
    }


def main() -> None:
    """Run on the configured or embedded servers, print and write the JSON."""
    output = Path(_env("CCV_BENCH_LIMITS_OUTPUT", str(HERE / "results" / "http_limits.json")))
    with postgres_server() as pg, fresh_database(pg.url) as database_url, redis_server() as redis:
        result = asyncio.run(measure(database_url, redis.url))
    document = {"measured_at": datetime.now(UTC).isoformat(), **result}
    report.write_json(output, document)
    log(
        f"stock {result['mean_rps']['stock']} req/s, limited {result['mean_rps']['limited']}"
        f" req/s: ratio {result['ratio_limited_to_stock']} ({result['loadgen']}); {output}"
    )


if __name__ == "__main__":
    main()
