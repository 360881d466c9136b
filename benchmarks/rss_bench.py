"""RSS of one API process under mixed load (issue 17: goal <= 200 MB after 10 minutes).

`ccv serve --workers 1` (one process: the API and, as deployed by default, the in-process
job worker) on a fresh database and the configured Redis, with access logs at INFO as in
production. Seeded over HTTP: PROFILES profiles of 20 fields each, an agent with a
scenario of 10 requirements, and a 6-field lineage chain. Then CONNECTIONS clients keep
one request each in flight for SECONDS, choosing per request:

  40% GET /v1/profiles/{id} (mostly warm), 20% PUT a field (new value, so a new version
  and an invalidation), 8% GET a field, 6% a field's history, 6% the profile with
  ?include=history, 6% missing fields, 5% GET /v1/lineage/{leaf}, 4% the profile list,
  3% POST a new profile, 2% an unknown profile (404 problem+json).

The server process's RSS (VmRSS from /proc) is sampled every SAMPLE_SECONDS; reported:
after start-up and seeding, the peak, the end, and the growth over the last half of the
run (a leak keeps growing; a warm-up does not). Every answer is checked for its status.

Run: `python benchmarks/rss_bench.py` (SECONDS + about a minute). Environment:
CCV_BENCH_DATABASE_URL (else an embedded PostgreSQL), CCV_BENCH_REDIS_URL (else an
embedded Valkey), CCV_BENCH_RSS_SECONDS (600), CCV_BENCH_RSS_CONNECTIONS (8),
CCV_BENCH_RSS_PROFILES (2000), CCV_BENCH_RSS_OUTPUT (benchmarks/results/rss.json).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

import report
from cache_bench import free_port, process_tree, start_server, stop_server, wait_ready
from harness import log
from servers import fresh_database, postgres_server, redis_server

SECONDS = float(os.environ.get("CCV_BENCH_RSS_SECONDS", "600"))
CONNECTIONS = int(os.environ.get("CCV_BENCH_RSS_CONNECTIONS", "8"))
PROFILES = int(os.environ.get("CCV_BENCH_RSS_PROFILES", "2000"))
OUTPUT = Path(os.environ.get("CCV_BENCH_RSS_OUTPUT", "benchmarks/results/rss.json"))
SAMPLE_SECONDS = 5.0
GOAL_MB = 200.0
FIELDS = 20
AGENT = "rss-agent"
SCENARIO = "rss-scenario"
CHAIN = 6


def rss_mb(pid: int) -> float:
    """A process's resident set now (VmRSS), in MB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def customer(i: int) -> str:
    return f"rss-{i:05d}"


class Load:
    """The seeded ids and the request mix."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.random = random.Random(5)
        self.statuses: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.created = 0
        self.writes = 0
        self.leaf_id = ""

    async def seed(self) -> None:
        lines = []
        for i in range(PROFILES):
            fields = {f"field_{n:02d}": f"value {n} of {i}" for n in range(FIELDS)}
            fields["field_00"] = {"value": f"user{i}@example.com", "value_type": "email"}
            lines.append(
                httpx.Request(
                    "POST", "/", json={"customer_id": customer(i), "fields": fields}
                ).content.decode()
            )
        body = ("\n".join(lines) + "\n").encode()
        answer = await self.client.post(
            "/v1/profiles/import",
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
            timeout=600,
        )
        answer.raise_for_status()
        assert answer.json()["failed"] == 0, answer.text[:500]
        base = f"/v1/agents/{AGENT}"
        for n in range(10):
            name = f"field_{n * 2:02d}" if n < 5 else f"extra_{n}"
            await self._ok(
                "PUT",
                f"{base}/field-definitions/{name}",
                {"display_name": name, "value_type": "string" if n else "email"},
            )
            await self._ok(
                "PUT",
                f"{base}/scenarios/{SCENARIO}/requirements/{name}",
                {"required_level": "hard" if n % 2 else "soft", "fallback_action": "ask"},
            )
        parent: str | None = None
        for depth in range(CHAIN):
            body_json: dict[str, Any] = {"value": f"step {depth}", "source": "llm_extracted"}
            if parent:
                body_json |= {"source_item_id": parent, "source_item_type": "profile_field"}
            answer = await self._ok(
                "PUT", f"/v1/profiles/rss-chain/fields/chain_{depth}", body_json
            )
            parent = answer.json()["id"]
        assert parent is not None
        self.leaf_id = parent

    async def _ok(self, method: str, path: str, body: Any = None) -> httpx.Response:
        answer = await self.client.request(method, path, json=body)
        if answer.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer

    async def one(self) -> None:
        roll = self.random.random()
        who = customer(self.random.randrange(PROFILES))
        field = f"field_{self.random.randrange(FIELDS):02d}"
        expect = {200}
        if roll < 0.40:
            kind, call = "read", self.client.get(f"/v1/profiles/{who}")
        elif roll < 0.60:
            self.writes += 1
            value = f"written {self.writes} " + secrets.token_hex(8)
            kind, expect = "write", {200, 201}
            call = self.client.put(
                f"/v1/profiles/{who}/fields/{field}",
                json={"value": value, "source": "user_provided"},
            )
        elif roll < 0.68:
            kind, call = "field", self.client.get(f"/v1/profiles/{who}/fields/{field}")
        elif roll < 0.74:
            kind, call = "history", self.client.get(f"/v1/profiles/{who}/fields/{field}/history")
        elif roll < 0.80:
            kind = "profile+history"
            call = self.client.get(f"/v1/profiles/{who}", params={"include": "history"})
        elif roll < 0.86:
            kind = "missing"
            call = self.client.get(
                f"/v1/profiles/{who}/missing-fields",
                params={"agent_id": AGENT, "scenario_id": SCENARIO},
            )
        elif roll < 0.91:
            kind, call = "lineage", self.client.get(f"/v1/lineage/{self.leaf_id}")
        elif roll < 0.95:
            kind, call = "list", self.client.get("/v1/profiles", params={"limit": 20})
        elif roll < 0.98:
            self.created += 1
            kind, expect = "create", {201}
            call = self.client.post(
                "/v1/profiles", json={"customer_id": f"new-{uuid.uuid4().hex[:12]}"}
            )
        else:
            kind, expect = "unknown", {404}
            call = self.client.get(f"/v1/profiles/nobody-{self.random.randrange(10**9)}")
        answer = await call
        self.statuses[f"{kind} {answer.status_code}"] += 1
        if answer.status_code not in expect and len(self.unexpected) < 20:
            self.unexpected.append(f"{kind}: {answer.status_code} {answer.text[:200]}")

    async def worker(self, until: float) -> None:
        while time.monotonic() < until:
            await self.one()


async def sample(pid: int, until: float, samples: list[tuple[float, float]]) -> None:
    started = time.monotonic()
    while time.monotonic() < until:
        samples.append((round(time.monotonic() - started, 1), rss_mb(pid)))
        await asyncio.sleep(SAMPLE_SECONDS)


async def bench(database_url: str, redis_url: str, workdir: Path) -> dict[str, Any]:
    admin_key = "ccv_admin_bench_" + secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "CCV_DATABASE_URL": database_url,
        "CCV_REDIS_URL": redis_url,
        "CCV_ADMIN_API_KEY": admin_key,
        "CCV_DATA_DIR": str(workdir / "ccv-data"),
        "CCV_LOG_LEVEL": "INFO",
    }
    ccv = Path(sys.executable).with_name("ccv")
    entry = [str(ccv)] if ccv.exists() else [sys.executable, "-m", "ccvault.cli"]
    cmd = [*entry, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--workers", "1"]
    server = start_server("ccv-serve-rss", cmd, env, workdir)
    try:
        await wait_ready(server, "/healthz", {})
        pids = process_tree(server.popen.pid)
        started_mb = {pid: rss_mb(pid) for pid in pids}
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as admin:
            created = await admin.post(
                "/admin/tenants",
                json={"name": f"rss-{uuid.uuid4().hex[:8]}"},
                headers={"authorization": f"Bearer {admin_key}"},
            )
            created.raise_for_status()
            key = created.json()["api_key"]
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        async with httpx.AsyncClient(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
            limits=limits,
        ) as client:
            load = Load(client)
            log(f"seeding {PROFILES} profiles over HTTP")
            await load.seed()
            api_pid = max(process_tree(server.popen.pid), key=rss_mb)
            seeded_mb = rss_mb(api_pid)
            log(f"mixed load: {CONNECTIONS} connections for {SECONDS:g} s")
            until = time.monotonic() + SECONDS
            samples: list[tuple[float, float]] = []
            started = time.monotonic()
            await asyncio.gather(
                sample(api_pid, until, samples), *(load.worker(until) for _ in range(CONNECTIONS))
            )
            elapsed = time.monotonic() - started
            samples.append((round(elapsed, 1), rss_mb(api_pid)))
        tree_mb = sum(rss_mb(pid) for pid in process_tree(server.popen.pid))
    finally:
        stop_server(server)
    requests = sum(load.statuses.values())
    half = [mb for t, mb in samples if t >= elapsed / 2]
    end_mb = samples[-1][1]
    return {
        "seconds": round(elapsed, 1),
        "connections": CONNECTIONS,
        "profiles": PROFILES,
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "statuses": dict(sorted(load.statuses.items())),
        "unexpected": load.unexpected,
        "rss_mb_at_start": started_mb,
        "rss_mb_after_seed": seeded_mb,
        "rss_mb_peak": max(mb for _, mb in samples),
        "rss_mb_end": end_mb,
        "rss_mb_growth_last_half": round(end_mb - half[0], 1) if half else None,
        "process_tree_rss_mb_end": round(tree_mb, 1),
        "samples": samples,
        "goal_mb": GOAL_MB,
        "passed": max(mb for _, mb in samples) <= GOAL_MB and not load.unexpected,
    }


def main() -> None:
    load_start = [round(x, 1) for x in os.getloadavg()[:2]]
    with (
        postgres_server() as pg,
        redis_server() as redis,
        fresh_database(pg.url) as database_url,
        tempfile.TemporaryDirectory(prefix="ccv-rss-") as tmp,
    ):
        result = asyncio.run(bench(database_url, redis.url, Path(tmp)))
    result["load_average"] = [load_start, [round(x, 1) for x in os.getloadavg()[:2]]]
    report.write_json(OUTPUT, result)
    print(
        f"{result['requests']} requests in {result['seconds']} s "
        f"({result['requests_per_s']}/s, {result['connections']} connections); RSS MB: "
        f"after seeding {result['rss_mb_after_seed']}, peak {result['rss_mb_peak']}, end "
        f"{result['rss_mb_end']} (last half +{result['rss_mb_growth_last_half']}); goal <= "
        f"{GOAL_MB:g}: {'met' if result['passed'] else 'MISSED'}"
    )
    if result["unexpected"]:
        print("unexpected answers:", *result["unexpected"][:5], sep="\n  ")


if __name__ == "__main__":
    main()
