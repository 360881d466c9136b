"""Operability benchmark (issue #11): warm HTTP throughput of `ccv serve` with the access
log and the per-request HTTP metrics on (the defaults) and off (`CCV_ACCESS_LOG=off`,
`CCV_HTTP_METRICS=off`). Target: on >= 90% of off's requests/s.

The servers are `ccv serve` on the same PostgreSQL and Redis, each with a tenant of its
own and the cache benchmark's profile (20 fields x 3 versions, 2 assets) read warm; their
stderr goes to a file, so the access log is JSON lines written to disk, as in a
deployment that collects files. Request ids are on in all of them (they are part of the
contract, not a switch). They are loaded in turn by the cache benchmark's generator (wrk
if installed, else its asyncio client), the order reversed every round; everything else
is the cache benchmark's harness (benchmarks/cache_bench.py).

The verdict is on the median of the rounds' on/off ratios: a round runs the servers back
to back, so its ratio compares runs seconds apart, which outside load moves far less
than the means. CPU time per request is reported beside it and moves less still. One
API process per server by default: with two, how the kernel spreads the generator's
connections over them moved single runs by a third here, more than what is measured.

Run: `make bench-ops` or `python benchmarks/ops_bench.py`. Environment: as the cache
benchmark's throughput part (CCV_BENCH_DATABASE_URL, CCV_BENCH_REDIS_URL,
CCV_BENCH_HTTP_SECONDS (4 here), CCV_BENCH_HTTP_WARMUP_SECONDS,
CCV_BENCH_HTTP_CONNECTIONS, CCV_BENCH_HTTP_WORKERS (1 here), CCV_BENCH_WRK_THREADS,
CCV_BENCH_LOADGEN), plus CCV_BENCH_OPS_ROUNDS (8), CCV_BENCH_OPS_VARIANTS (off,on,control:
the servers, started in that order; `control` is a second server with both off, whose
distance from `off` shows the noise; `log` and `metrics` time each alone) and
CCV_BENCH_OPS_OUTPUT (results/ops.json).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

import cache_bench
import loadgen
import report
from cache_bench import Config, ServerProcess, Target
from ccvault.config import Settings
from ccvault.runtime import open_vault
from harness import log, run_async
from servers import fresh_database, postgres_server, redis_server

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "ops.json"
LABELS = {
    "on": "access log + HTTP metrics on",
    "off": "access log + HTTP metrics off",
    "log": "access log only",
    "metrics": "HTTP metrics only",
    "control": "both off, a second server (noise)",
}
TARGET_RATIO = 0.90  # requests/s with the access log and metrics on >= 90% of off
SWITCHES = {
    "on": {},
    "off": {"CCV_ACCESS_LOG": "off", "CCV_HTTP_METRICS": "off"},
    # Diagnostics (e.g. CCV_BENCH_OPS_VARIANTS=off,on,log,metrics,control): one of the
    # two alone, and a second "off" server whose distance from the first is the noise.
    "log": {"CCV_HTTP_METRICS": "off"},
    "metrics": {"CCV_ACCESS_LOG": "off"},
    "control": {"CCV_ACCESS_LOG": "off", "CCV_HTTP_METRICS": "off"},
}


async def measure(
    database_url: str, redis_url: str, cfg: Config, variants: list[str]
) -> dict[str, Any]:
    """Both servers up, each loaded in turn for `rounds` rounds; the runs and a summary."""
    tool = loadgen.choose(cfg.loadgen)
    described = loadgen.describe(tool, cfg.connections, cfg.wrk_threads)
    log(f"ops throughput: {described}, {cfg.http_rounds} x {cfg.http_seconds:g}s per server")
    vault = await open_vault(Settings(database_url=database_url, redis_url=redis_url))
    redis_client = aioredis.Redis.from_url(redis_url)
    servers: list[ServerProcess] = []
    targets: dict[str, Target] = {}
    runs: list[dict[str, Any]] = []
    log_bytes: dict[str, int] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="ccv-bench-ops-") as tmp:
            workdir = Path(tmp)
            for name in variants:
                env = SWITCHES[name]
                server, target, _, _ = await cache_bench.prepare_vault_server(
                    vault, database_url, redis_url, cfg, workdir, name=f"ccv-{name}", extra_env=env
                )
                servers.append(server)
                targets[name] = dataclasses.replace(target, label=f"{target.label}, {name}")
            for target in targets.values():
                await loadgen.run(
                    tool,
                    target.url,
                    seconds=cfg.http_warmup_seconds,
                    connections=cfg.connections,
                    threads=cfg.wrk_threads,
                    headers=target.headers,
                )
            for round_no in range(cfg.http_rounds):
                order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
                for name in order:
                    run = await cache_bench.load_once(
                        targets[name], tool, cfg, cfg.http_seconds, redis_client, database_url
                    )
                    runs.append({"server": name, "round": round_no + 1, **run})
                    log(
                        f"round {round_no + 1} {name}: {run['rps']:.0f} req/s,"
                        f" {run['server_cpu_us_per_request']:.0f} µs server CPU/req,"
                        f" load {run['load_avg_1m_after']}"
                    )
            for server in servers:
                log_bytes[server.name] = server.log_path.stat().st_size
                await asyncio.to_thread(cache_bench.stop_server, server)
    finally:
        for server in servers:
            await asyncio.to_thread(cache_bench.stop_server, server)
        await redis_client.aclose()
        await cache_bench.close_vault(vault)
    return summarise(runs, targets, described, cfg, log_bytes)


def summarise(
    runs: list[dict[str, Any]],
    targets: dict[str, Target],
    described: str,
    cfg: Config,
    log_bytes: dict[str, int],
) -> dict[str, Any]:
    """Per-server means and the on/off ratio (requests/s and CPU per request)."""
    servers: dict[str, dict[str, Any]] = {}
    for name, target in targets.items():
        mine = [r for r in runs if r["server"] == name]
        servers[name] = {
            "label": target.label,
            "rps_runs": [r["rps"] for r in mine],
            "rps_mean": round(statistics.fmean(r["rps"] for r in mine), 1),
            "p50_ms_mean": _mean([r["p50_ms"] for r in mine]),
            "p99_ms_mean": _mean([r["p99_ms"] for r in mine]),
            "server_cpu_us_per_request": _mean([r["server_cpu_us_per_request"] for r in mine]),
            "non_2xx": sum(r["non_2xx"] for r in mine),
            "errors": sum(r["errors"] for r in mine),
            "log_bytes": log_bytes.get(f"ccv-{name}"),
        }
    on, off = servers["on"], servers["off"]
    # Each round runs every server back to back: a round's on/off ratio compares runs a
    # few seconds apart, which the machine's other load moves far less than the means.
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for run in runs:
        by_round.setdefault(run["round"], {})[run["server"]] = run
    paired = [r["on"]["rps"] / r["off"]["rps"] for r in by_round.values()]
    cpu_added = [
        r["on"]["server_cpu_us_per_request"] - r["off"]["server_cpu_us_per_request"]
        for r in by_round.values()
    ]
    ratio = round(statistics.median(paired), 3)
    return {
        "loadgen_settings": described,
        "workers": cfg.workers,
        "seconds_per_run": cfg.http_seconds,
        "rounds": cfg.http_rounds,
        "connections": cfg.connections,
        "servers": servers,
        "ratio_rps": ratio,  # the median of the rounds' on/off ratios
        "ratio_rps_rounds": [round(r, 3) for r in paired],
        "ratio_rps_of_means": round(on["rps_mean"] / off["rps_mean"], 3),
        "cpu_us_per_request_added": round(statistics.median(cpu_added), 1),
        "cpu_us_per_request_added_rounds": [round(c, 1) for c in cpu_added],
        "target_ratio": TARGET_RATIO,
        "passed": ratio >= TARGET_RATIO and on["non_2xx"] + on["errors"] == 0,
        "runs": runs,
    }


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 2) if present else None


def render(result: dict[str, Any]) -> str:
    """The two servers side by side and the verdict."""
    lines = [
        f"[warm GET /v1/profiles/{{id}} over sockets: {result['loadgen_settings']},"
        f" {result['rounds']} x {result['seconds_per_run']:g} s per server, order alternating]",
        f"  {'server':<44} {'req/s runs':>22} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'CPU µs/req':>10} {'log MB':>7} {'vs off':>7}",
    ]
    off = result["servers"]["off"]
    for name, s in result["servers"].items():
        s["ratio_to_off"] = round(s["rps_mean"] / off["rps_mean"], 3)
        runs = " ".join(f"{r:.0f}" for r in s["rps_runs"])
        size = f"{s['log_bytes'] / 1e6:.1f}" if s["log_bytes"] is not None else ""
        lines.append(
            f"  {LABELS[name]:<44} {runs:>22} {s['rps_mean']:>7.0f}"
            f" {s['p50_ms_mean'] or 0:>7.2f} {s['p99_ms_mean'] or 0:>7.2f}"
            f" {s['server_cpu_us_per_request'] or 0:>10.0f} {size:>7} {s['ratio_to_off']:>6.3f}x"
        )
    verdict = "pass" if result["passed"] else "MISS"
    rounds = " ".join(f"{r:.2f}" for r in result["ratio_rps_rounds"])
    lines.append(
        f"  on / off, median of the rounds ({rounds}): {result['ratio_rps']:.3f}x req/s"
        f" (target >= {result['target_ratio']:.2f}: {verdict}); of the means"
        f" {result['ratio_rps_of_means']:.3f}x; median {result['cpu_us_per_request_added']}"
        " µs more server CPU per request"
    )
    return "\n".join(lines)


def main() -> int:
    """The section alone (embedded PostgreSQL and Valkey unless configured)."""
    cfg = Config.from_env()
    rounds = int(os.environ.get("CCV_BENCH_OPS_ROUNDS") or 8)
    seconds = float(os.environ.get("CCV_BENCH_HTTP_SECONDS") or 4)
    workers = int(os.environ.get("CCV_BENCH_HTTP_WORKERS") or 1)
    cfg = dataclasses.replace(cfg, http_rounds=rounds, http_seconds=seconds, workers=workers)
    output = Path(os.environ.get("CCV_BENCH_OPS_OUTPUT") or DEFAULT_OUTPUT)
    variants = (os.environ.get("CCV_BENCH_OPS_VARIANTS") or "off,on,control").split(",")
    if not {"on", "off"} <= set(variants) or not set(variants) <= set(SWITCHES):
        raise SystemExit(f"CCV_BENCH_OPS_VARIANTS: on and off, and any of {sorted(SWITCHES)}")
    started = time.perf_counter()
    load_start = os.getloadavg()
    with postgres_server() as pg, redis_server() as redis, fresh_database(pg.url) as url:
        result, loop = run_async(lambda: measure(url, redis.url, cfg, variants))
    print("== operability (issue #11): access log and HTTP metrics on vs off ==")
    print(render(result))
    print(
        f"load average (1 min) {load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end;"
        f" {os.cpu_count()} CPUs shared by the generator, Redis, PostgreSQL and the servers"
    )
    report.write_json(
        output,
        {
            "benchmark": "ops",
            "issue": 11,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "elapsed_s": round(time.perf_counter() - started, 1),
            "machine": {
                "cpu_count": os.cpu_count(),
                "load_avg_start": [round(x, 2) for x in load_start],
                "load_avg_end": [round(x, 2) for x in os.getloadavg()],
                "platform": platform.platform(),
                "python": platform.python_version(),
                "event_loop": loop,
            },
            "throughput": result,
        },
    )
    log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
