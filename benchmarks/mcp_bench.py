"""MCP overhead (issue 12): an MCP `remember_fact` call over streamable HTTP against the
equivalent `PUT /v1/profiles/{id}/fields/{name}` (the raw baseline), on the same server in
the same run. Goal: MCP p50 at most 1.5 times the PUT's.

Both write the same field of the same profile for the same agent (a definition of type
email, so both validate against it) as one strict-mode tenant: the MCP tool calls the
same service the route calls, so what differs is the protocol (JSON-RPC in an SSE answer,
session lookup, argument checks, the tool's result). The app runs under uvicorn in this
process with its clients (one keep-alive connection each), calls interleaved and
rotated.

Run: `python benchmarks/mcp_bench.py`. Environment: CCV_BENCH_DATABASE_URL /
CCV_BENCH_REDIS_URL (embedded servers otherwise), CCV_BENCH_ITERATIONS (500),
CCV_BENCH_WARMUP (50), CCV_BENCH_LOOP, CCV_BENCH_MCP_OUTPUT (results/mcp.json).
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from pydantic import SecretStr

import report
from ccvault.api.app import create_app
from ccvault.config import Settings
from ccvault.runtime import open_vault
from ccvault.storage.tenants import TenantStore
from harness import log, measure_interleaved, run_async
from servers import fresh_database, postgres_server, redis_server

AGENT = "bench-agent"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "mcp.json"
GOAL = 1.5


async def measure(database_url: str, redis_url: str, iterations: int, warmup: int) -> Any:
    settings = Settings(
        database_url=database_url, redis_url=redis_url, admin_api_key=SecretStr("bench")
    )
    vault = await open_vault(settings)
    _, key = await TenantStore(vault.pool).create(f"bench-{uuid.uuid4().hex[:8]}", "strict")
    app = create_app(settings, vault=vault)
    app.access_log = False
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.01)
    headers = {"Authorization": f"Bearer {key}", "CCV-Agent-Id": AGENT}
    customer = "bench-customer"
    try:
        async with (
            httpx.AsyncClient(base_url=base, headers=headers) as rest,
            create_mcp_http_client(headers=headers) as mcp_http,
            streamable_http_client(f"{base}/mcp", http_client=mcp_http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            resp = await rest.put(
                f"/v1/agents/{AGENT}/field-definitions/email",
                json={"display_name": "Email", "value_type": "email"},
            )
            resp.raise_for_status()
            await session.list_tools()
            counter = iter(range(10**9))

            async def put() -> None:
                resp = await rest.put(
                    f"/v1/profiles/{customer}/fields/email",
                    json={
                        "value": f"a{next(counter)}@example.com",
                        "source": "user_provided",
                        "agent_id": AGENT,
                    },
                )
                assert resp.status_code == 201, resp.text

            async def remember() -> None:
                result = await session.call_tool(
                    "remember_fact",
                    {
                        "customer_id": customer,
                        "field_name": "email",
                        "value": f"a{next(counter)}@example.com",
                    },
                )
                assert not result.is_error, result.content

            stats = await measure_interleaved(
                {"put": put, "mcp_remember_fact": remember},
                iterations=iterations,
                warmup=warmup,
            )
    finally:
        server.should_exit = True
        await serving
        sock.close()
        await vault.close()
    put_s, mcp_s = stats["put"], stats["mcp_remember_fact"]
    return {
        "iterations": iterations,
        "put": put_s.__dict__,
        "mcp_remember_fact": mcp_s.__dict__,
        "ratio_p50": round(mcp_s.p50_us / put_s.p50_us, 2),
        "ratio_p99": round(mcp_s.p99_us / put_s.p99_us, 2),
        "goal_p50": GOAL,
        "passed": mcp_s.p50_us / put_s.p50_us <= GOAL,
    }


def main() -> int:
    iterations = int(os.environ.get("CCV_BENCH_ITERATIONS") or 500)
    warmup = int(os.environ.get("CCV_BENCH_WARMUP") or 50)
    output = Path(os.environ.get("CCV_BENCH_MCP_OUTPUT") or DEFAULT_OUTPUT)
    started = time.perf_counter()
    with postgres_server() as pg, redis_server() as redis, fresh_database(pg.url) as url:
        result, loop = run_async(lambda: measure(url, redis.url, iterations, warmup))
    put, mcp = result["put"], result["mcp_remember_fact"]
    print("== MCP remember_fact over streamable HTTP vs the equivalent PUT (issue 12) ==")
    print(f"{'operation':<22}{'p50 µs':>10}{'p99 µs':>10}")
    print(f"{'PUT field':<22}{put['p50_us']:>10}{put['p99_us']:>10}")
    print(f"{'MCP remember_fact':<22}{mcp['p50_us']:>10}{mcp['p99_us']:>10}")
    verdict = "ok" if result["passed"] else "MISS"
    print(f"ratio p50 {result['ratio_p50']} (goal ≤ {GOAL}: {verdict}), p99 {result['ratio_p99']}")
    report.write_json(
        output,
        {
            "benchmark": "mcp",
            "issue": 12,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "elapsed_s": round(time.perf_counter() - started, 1),
            "machine": {
                "cpu_count": os.cpu_count(),
                "load_avg": [round(x, 2) for x in os.getloadavg()],
                "platform": platform.platform(),
                "python": platform.python_version(),
                "event_loop": loop,
            },
            "result": result,
        },
    )
    log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
