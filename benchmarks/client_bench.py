"""Client overhead (issue 12): what `ccvault.client` adds to the same request made with raw
httpx. Goal: client p50 <= 1.2x raw httpx p50.

One `ccv serve --no-worker` on a fresh database (CCV_BENCH_DATABASE_URL / CCV_BENCH_REDIS_URL,
else embedded servers), one tenant, one profile of 20 fields (the cache benchmark's shape).
For each request the client and raw httpx run interleaved (one call of each per
iteration, order rotated: harness.py), on one keep-alive connection each:

- the profile read (`GET /v1/profiles/{id}`, 20 fields): `AsyncVault.profiles.get` (answer
  read into the server's `Profile` model) vs `httpx.AsyncClient.get` + `.json()` (raw, the
  least a caller does with an answer) and raw without decoding (the floor);
- one field read (`GET .../fields/email`, a small answer);
- the same two with the blocking `Vault` vs `httpx.Client`;
- the profile read through an in-memory transport answering the real bytes: the client's
  own CPU cost (request building, model validation) with no network or server to hide it.

The verdict compares the client with raw httpx + `.json()`; the floor is reported beside
it. Run: `python benchmarks/client_bench.py` (CCV_BENCH_ITERATIONS, default 1000;
CCV_BENCH_WARMUP, 100; CCV_BENCH_CLIENT_OUTPUT, results/client.json).
"""

from __future__ import annotations

import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter_ns
from typing import Any

import httpx

import report
from ccvault.client import AsyncVault, Vault
from harness import Stats, clean_heap, log, measure_interleaved, rotated, run_async
from servers import fresh_database, postgres_server, redis_server

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "client.json"
TARGET_RATIO = 1.2
CUSTOMER = "bench-customer"
FIELDS = 20


def measure_sync(
    ops: dict[str, Callable[[], Any]], *, iterations: int, warmup: int
) -> dict[str, Stats]:
    """measure_interleaved for blocking calls."""
    names = list(ops)
    for name in rotated(names, warmup):
        ops[name]()
    samples: dict[str, list[int]] = {name: [] for name in names}
    with clean_heap():
        for name in rotated(names, iterations):
            op = ops[name]
            start = perf_counter_ns()
            op()
            samples[name].append(perf_counter_ns() - start)
    return {name: Stats.from_ns(values) for name, values in samples.items()}


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`ccv serve --no-worker` in a session of its own, once /healthz answers."""
    port = free_port()
    ccv = str(Path(sys.executable).with_name("ccv"))
    with (workdir / "serve.log").open("wb") as out:
        proc = subprocess.Popen(
            [ccv, "serve", "--no-worker", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "serve.log").read_text()[-3000:])
        try:
            if httpx.get(f"{base}/healthz", timeout=1).is_success:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("ccv serve did not come up")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def seed(base: str, key: str) -> None:
    """The profile the reads get: 20 fields of mixed types."""
    with Vault(base, key) as vault:
        for i in range(FIELDS):
            value: Any = f"value {i} " * 4 if i % 3 else i * 1000
            vault.fields.put(CUSTOMER, f"field_{i:02d}", value=value, source="user_provided")
        vault.fields.put(CUSTOMER, "email", value="ada@example.com", source="user_provided")


async def measure_async(base: str, key: str, iterations: int, warmup: int) -> dict[str, Stats]:
    headers = {"Authorization": f"Bearer {key}"}
    profile_path = f"/v1/profiles/{CUSTOMER}"
    field_path = f"/v1/profiles/{CUSTOMER}/fields/email"
    async with (
        AsyncVault(base, key) as vault,
        httpx.AsyncClient(base_url=base, headers=headers) as raw,
    ):

        async def raw_profile_json() -> Any:
            answer = await raw.get(profile_path)
            answer.raise_for_status()
            return answer.json()

        async def raw_profile_bytes() -> bytes:
            return (await raw.get(profile_path)).content

        async def raw_field_json() -> Any:
            answer = await raw.get(field_path)
            answer.raise_for_status()
            return answer.json()

        ops = {
            "async profile: client": lambda: vault.profiles.get(CUSTOMER),
            "async profile: raw httpx + json": raw_profile_json,
            "async profile: raw httpx bytes": raw_profile_bytes,
            "async field: client": lambda: vault.fields.get(CUSTOMER, "email"),
            "async field: raw httpx + json": raw_field_json,
        }
        return await measure_interleaved(ops, iterations=iterations, warmup=warmup)


def measure_blocking(base: str, key: str, iterations: int, warmup: int) -> dict[str, Stats]:
    headers = {"Authorization": f"Bearer {key}"}
    profile_path = f"/v1/profiles/{CUSTOMER}"
    field_path = f"/v1/profiles/{CUSTOMER}/fields/email"
    with Vault(base, key) as vault, httpx.Client(base_url=base, headers=headers) as raw:

        def raw_json(path: str) -> Any:
            answer = raw.get(path)
            answer.raise_for_status()
            return answer.json()

        ops: dict[str, Callable[[], Any]] = {
            "sync profile: client": lambda: vault.profiles.get(CUSTOMER),
            "sync profile: raw httpx + json": lambda: raw_json(profile_path),
            "sync field: client": lambda: vault.fields.get(CUSTOMER, "email"),
            "sync field: raw httpx + json": lambda: raw_json(field_path),
        }
        return measure_sync(ops, iterations=iterations, warmup=warmup)


def measure_in_memory(base: str, key: str, iterations: int, warmup: int) -> dict[str, Stats]:
    """The client's own cost without a network or a server: both read the profile's real
    answer bytes from an in-memory transport, so what differs is only what each does."""
    headers = {"Authorization": f"Bearer {key}"}
    body = httpx.get(f"{base}/v1/profiles/{CUSTOMER}", headers=headers, timeout=30).content
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    with (
        Vault("http://vault", key, transport=transport) as vault,
        httpx.Client(base_url="http://vault", headers=headers, transport=transport) as raw,
    ):

        def raw_json() -> Any:
            answer = raw.get(f"/v1/profiles/{CUSTOMER}")
            answer.raise_for_status()
            return answer.json()

        ops: dict[str, Callable[[], Any]] = {
            "in-memory profile: client": lambda: vault.profiles.get(CUSTOMER),
            "in-memory profile: raw httpx + json": raw_json,
        }
        return measure_sync(ops, iterations=iterations * 5, warmup=warmup)


PAIRS = [
    ("async profile: client", "async profile: raw httpx + json"),
    ("async field: client", "async field: raw httpx + json"),
    ("sync profile: client", "sync profile: raw httpx + json"),
    ("sync field: client", "sync field: raw httpx + json"),
    ("in-memory profile: client", "in-memory profile: raw httpx + json"),
]


def main() -> int:
    iterations = int(os.environ.get("CCV_BENCH_ITERATIONS", "1000"))
    warmup = int(os.environ.get("CCV_BENCH_WARMUP", "100"))
    output = Path(os.environ.get("CCV_BENCH_CLIENT_OUTPUT", DEFAULT_OUTPUT))
    admin = secrets.token_urlsafe(16)
    with (
        postgres_server() as pg,
        redis_server() as rd,
        fresh_database(pg.url) as database_url,
        tempfile.TemporaryDirectory(prefix="ccv-client-bench-") as tmp,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCV_")}
        env |= {
            "CCV_DATABASE_URL": database_url,
            "CCV_REDIS_URL": rd.url,
            "CCV_ADMIN_API_KEY": admin,
            "CCV_DATA_DIR": str(Path(tmp) / "data"),
            "CCV_ACCESS_LOG": "off",
        }
        proc, base = serve(env, Path(tmp))
        try:
            created = httpx.post(
                f"{base}/admin/tenants",
                json={"name": f"bench-{uuid.uuid4().hex[:8]}"},
                headers={"Authorization": f"Bearer {admin}"},
                timeout=30,
            ).json()
            key = created["api_key"]
            seed(base, key)
            log(f"timing {iterations} calls of each (after {warmup} untimed)")
            results, loop = run_async(lambda: measure_async(base, key, iterations, warmup))
            results |= measure_blocking(base, key, iterations, warmup)
            results |= measure_in_memory(base, key, iterations, warmup)
        finally:
            stop(proc)
    lines = []
    verdicts = []
    for client, raw in PAIRS:
        ratio_p50 = results[client].p50_us / results[raw].p50_us
        ratio_p99 = results[client].p99_us / results[raw].p99_us
        ok = ratio_p50 <= TARGET_RATIO
        verdicts.append(
            {
                "client": client,
                "raw": raw,
                "ratio_p50": round(ratio_p50, 3),
                "ratio_p99": round(ratio_p99, 3),
                "passed": ok,
            }
        )
    print(f"{'operation':40} {'p50 us':>9} {'p99 us':>9}")
    for name, stats in results.items():
        lines.append(f"{name:40} {stats.p50_us:9.1f} {stats.p99_us:9.1f}")
    print("\n".join(lines))
    print()
    for v in verdicts:
        mark = "ok" if v["passed"] else "MISS"
        print(
            f"{v['client']:30} / raw: p50 {v['ratio_p50']:.2f}x  p99 {v['ratio_p99']:.2f}x  "
            f"(goal <= {TARGET_RATIO}x at p50) {mark}"
        )
    report.write_json(
        output,
        {
            "benchmark": "client",
            "when": datetime.now(UTC).isoformat(),
            "python": platform.python_version(),
            "loop": loop,
            "iterations": iterations,
            "results": {name: vars(stats) for name, stats in results.items()},
            "verdicts": verdicts,
            "passed": all(v["passed"] for v in verdicts),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
