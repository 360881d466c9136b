"""HTTP load for the throughput comparison: wrk when installed, else a small asyncio client.

Both keep a fixed number of persistent HTTP/1.1 connections busy for a fixed time, one
request in flight per connection, and report requests/s, latency percentiles, non-2xx
answers and socket errors. wrk (C, one thread by default) is the light one: on a 2-core
machine every cycle the generator burns is taken from the servers it measures. The
Python client is the fallback: it needs a good part of a core for a few thousand
requests/s, so its absolute numbers are lower; the ratio between two servers loaded the
same way is what it is for.

Run alone (the fallback client, used as a subprocess by cache_bench):

    python benchmarks/loadgen.py http://127.0.0.1:8000/path --seconds 10 --connections 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TOOLS = ("wrk", "python")
SELF = Path(__file__).resolve()


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured; `loadgen_cpu_s` is the generator's own CPU time."""

    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    non_2xx: int
    errors: int
    loadgen_cpu_s: float


def choose(preference: str) -> str:
    """`wrk` when wanted (or `auto`) and installed, else the Python client."""
    if preference not in ("auto", *TOOLS):
        raise ValueError(f"CCV_BENCH_LOADGEN must be auto, wrk or python, not {preference!r}")
    if preference == "python":
        return "python"
    if shutil.which("wrk"):
        return "wrk"
    if preference == "wrk":
        raise RuntimeError("CCV_BENCH_LOADGEN=wrk but wrk is not installed")
    return "python"


def describe(tool: str, connections: int, threads: int) -> str:
    """The generator and its settings, for the report."""
    if tool == "wrk":
        return f"wrk -t{threads} -c{connections}"
    return f"python asyncio client (raw sockets, uvloop if present), {connections} connections"


async def run(
    tool: str,
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Load `url` for `seconds` with the chosen tool, in a subprocess."""
    headers = headers or {}
    if tool == "wrk":
        cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        cmd += ["--latency", "--timeout", "10s"]
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        cmd.append(url)
    else:
        cmd = [sys.executable, str(SELF), url]
        cmd += ["--seconds", str(seconds), "--connections", str(connections)]
        for name, value in headers.items():
            cmd += ["--header", f"{name}: {value}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err.decode()[-2000:]}")
    parsed = parse_wrk(text) if tool == "wrk" else json.loads(text)
    return LoadResult(
        tool=tool,
        requests=parsed["requests"],
        seconds=parsed["seconds"],
        rps=round(parsed["requests"] / parsed["seconds"], 1),
        p50_ms=parsed["p50_ms"],
        p99_ms=parsed["p99_ms"],
        non_2xx=parsed["non_2xx"],
        errors=parsed["errors"],
        loadgen_cpu_s=round(cpu, 3),
    )


_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _seconds(number: str, unit: str) -> float:
    return float(number) * _UNITS_S[unit]


def parse_wrk(text: str) -> dict[str, Any]:
    """The numbers of a `wrk --latency` report."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)\b", text)
    if total is None:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    latency: dict[str, float] = {}
    for pct, number, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M):
        latency[pct] = round(_seconds(number, unit) * 1000, 3)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return {
        "requests": int(total.group(1)),
        "seconds": _seconds(total.group(2), total.group(3)),
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "errors": sum(int(n) for n in sockets.groups()) if sockets else 0,
    }


# -- the fallback client --------------------------------------------------------------


@dataclass
class _Tally:
    samples: list[int]
    non_2xx: int = 0
    errors: int = 0


async def _connection(
    host: str, port: int, request: bytes, start: asyncio.Event, deadline: list[float], t: _Tally
) -> None:
    """One persistent connection: send, read one Content-Length framed answer, repeat."""
    reader, writer = await asyncio.open_connection(host, port)
    await start.wait()
    try:
        while time.perf_counter() < deadline[0]:
            began = time.perf_counter_ns()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if length is None:
                    raise ValueError("no Content-Length")
                await reader.readexactly(int(length.group(1)))
            except (OSError, ValueError, asyncio.IncompleteReadError):
                t.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            t.samples.append(time.perf_counter_ns() - began)
            if head[9:10] != b"2":
                t.non_2xx += 1
    finally:
        writer.close()


async def python_load(
    url: str, seconds: float, connections: int, headers: list[str]
) -> dict[str, Any]:
    """Keep `connections` connections busy for `seconds`; the summary cache_bench reads."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", *headers, "", ""]
    request = "\r\n".join(lines).encode()
    tally = _Tally(samples=[])
    start = asyncio.Event()
    deadline = [0.0]
    tasks = [
        asyncio.create_task(_connection(host, port, request, start, deadline, tally))
        for _ in range(connections)
    ]
    await asyncio.sleep(0.2)  # let every connection open before the clock starts
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    ordered = sorted(tally.samples)

    def pct(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[max(0, int(len(ordered) * p / 100 + 0.999999) - 1)] / 1e6, 3)

    return {
        "requests": len(ordered),
        "seconds": round(elapsed, 3),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "non_2xx": tally.non_2xx,
        "errors": tally.errors,
    }


def main() -> int:
    """CLI of the fallback client: prints one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    factory = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(python_load(args.url, args.seconds, args.connections, args.header))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
