"""Timing: run several operations interleaved and summarise each one's latencies.

Operations that are compared with each other (a library call and its raw floor) are run
in the same loop, one call of each per iteration, with the order rotated every iteration.
Background noise (autovacuum, a checkpoint, another process) then lands on all of them
alike, and none of them always runs first or always right after the same neighbour.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any, TypeVar

Op = Callable[[], Awaitable[Any]]
T = TypeVar("T")


@dataclass(frozen=True)
class Stats:
    """Latency summary of one operation, in microseconds."""

    n: int
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    min_us: float
    max_us: float

    @classmethod
    def from_ns(cls, samples: list[int]) -> Stats:
        """Summarise raw perf_counter_ns durations."""
        ordered = sorted(samples)
        return cls(
            n=len(ordered),
            p50_us=_us(percentile(ordered, 50)),
            p90_us=_us(percentile(ordered, 90)),
            p99_us=_us(percentile(ordered, 99)),
            mean_us=_us(sum(ordered) / len(ordered)),
            min_us=_us(ordered[0]),
            max_us=_us(ordered[-1]),
        )


def _us(ns: float) -> float:
    """Microseconds to 0.1: finer digits are noise at these latencies."""
    return round(ns / 1000, 1)


def percentile(ordered: list[int], pct: float) -> float:
    """Nearest-rank percentile of sorted samples: always a latency that really happened."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])


def rotated(names: list[str], iterations: int) -> Iterator[str]:
    """The names in call order: every name once per iteration, the order rotated by one
    each iteration, so none always runs first or after the same neighbour."""
    for i in range(iterations):
        shift = i % len(names)
        yield from names[shift:] + names[:shift]


@contextmanager
def clean_heap() -> Iterator[None]:
    """Leave the collector on (it is part of real costs) but start every group from the
    same clean heap, with the long-lived setup objects out of its way."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def measure_interleaved(
    ops: Mapping[str, Op], *, iterations: int, warmup: int
) -> dict[str, Stats]:
    """Time every op `iterations` times, one call of each per iteration, order rotated.

    The warm-up calls are not timed: they fill PostgreSQL's buffers and plan caches and
    let psycopg prepare the statements (it does so after a few executions on a connection).
    """
    names = list(ops)
    for name in rotated(names, warmup):
        await ops[name]()
    samples: dict[str, list[int]] = {name: [] for name in names}
    with clean_heap():
        for name in rotated(names, iterations):
            op = ops[name]
            start = perf_counter_ns()
            await op()
            samples[name].append(perf_counter_ns() - start)
    return {name: Stats.from_ns(values) for name, values in samples.items()}


def log(message: str) -> None:
    """A progress line on stderr (the report itself goes to stdout)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T, str]:
    """Run on uvloop when available (what `ccv serve` runs on), else on asyncio's loop.

    CCV_BENCH_LOOP=asyncio forces asyncio's own loop. Returns the result and the loop used.
    """
    wanted = os.environ.get("CCV_BENCH_LOOP", "uvloop")
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    used = "asyncio"
    if wanted == "uvloop":
        try:
            import uvloop

            factory, used = uvloop.new_event_loop, "uvloop"
        except ImportError:
            log("uvloop not installed; using asyncio's default loop")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(make()), used
