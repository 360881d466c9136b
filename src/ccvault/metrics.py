"""Prometheus exposition for `/metrics`: the process's counters and histograms, plus the
connection pool and the job queue read at scrape time.

The pool's numbers are psycopg_pool's own (`get_stats()`), and the queue's come from one
query over procrastinate's table, so nothing is counted twice or kept in sync by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ccvault.jobs.status import JobOverview, job_overview
from ccvault.storage.db import Pool

# Every counter and histogram would otherwise carry a `_created` twin holding its start
# time: as many series again, which dashboards never use.
disable_created_metrics()  # type: ignore[no-untyped-call]

JOB_STATES: Final = ("todo", "doing", "succeeded", "failed", "cancelled", "aborting", "aborted")
JOBS_QUERY_TIMEOUT: Final = 1.0

# psycopg_pool's instant measures, then its counters (milliseconds become seconds).
_POOL_GAUGES: Final = {
    "pool_size": ("ccv_db_pool_size", "Connections open (in use or idle)"),
    "pool_available": ("ccv_db_pool_available", "Idle connections ready to be lent"),
    "requests_waiting": ("ccv_db_pool_waiting", "Requests waiting for a connection now"),
    "pool_min": ("ccv_db_pool_min", "Connections the pool keeps open at least"),
    "pool_max": ("ccv_db_pool_max", "Connections the pool opens at most"),
}
_POOL_COUNTERS: Final = {
    "requests_num": ("ccv_db_pool_requests", "Connections requested from the pool", 1),
    "requests_queued": ("ccv_db_pool_requests_queued", "Requests that had to wait", 1),
    "requests_errors": ("ccv_db_pool_requests_errors", "Requests that failed (timeout...)", 1),
    "requests_wait_ms": ("ccv_db_pool_wait_seconds", "Time spent waiting for a connection", 1e-3),
    "usage_ms": ("ccv_db_pool_usage_seconds", "Time connections were lent out", 1e-3),
    "connections_num": ("ccv_db_pool_connections", "Connection attempts to the server", 1),
    "connections_errors": ("ccv_db_pool_connection_errors", "Failed connection attempts", 1),
    "connections_lost": ("ccv_db_pool_connections_lost", "Connections found broken", 1),
    "returns_bad": ("ccv_db_pool_returns_bad", "Connections returned in a bad state", 1),
}


class ScrapeCollector(Collector):
    """Pool and job numbers of one vault, as read at the start of a scrape."""

    def __init__(self, pool: Pool, jobs: JobOverview | None) -> None:
        self.pool = pool
        self.jobs = jobs

    def collect(self) -> Iterator[Metric]:
        """The families, every series present (zeros included) so none appears late."""
        stats = self.pool.get_stats()
        labels = ["pool"]
        name = self.pool.name
        for key, (metric, doc) in _POOL_GAUGES.items():
            gauge = GaugeMetricFamily(metric, doc, labels=labels)
            gauge.add_metric([name], stats.get(key, 0))
            yield gauge
        for key, (metric, doc, scale) in _POOL_COUNTERS.items():
            counter = CounterMetricFamily(metric, doc, labels=labels)
            counter.add_metric([name], stats.get(key, 0) * scale)
            yield counter
        if self.jobs is None:
            return  # the query failed: no numbers rather than stale ones
        jobs = GaugeMetricFamily("ccv_jobs", "Jobs in the queue table, by state", labels=["state"])
        for state in JOB_STATES:
            jobs.add_metric([state], self.jobs.counts.get(state, 0))
        yield jobs
        yield GaugeMetricFamily(
            "ccv_jobs_due", "Jobs waiting whose time has come (the backlog)", self.jobs.backlog
        )
        yield GaugeMetricFamily(
            "ccv_job_workers_alive",
            "Workers that sent a heartbeat in the last 30 s",
            self.jobs.live_workers,
        )


async def exposition(pool: Pool) -> bytes:
    """The Prometheus text of this process, with the pool and the queue as they are now."""
    try:
        async with asyncio.timeout(JOBS_QUERY_TIMEOUT):
            # limit=0: counts, backlog and workers only, no job list.
            jobs: JobOverview | None = await job_overview(pool, limit=0)
    except Exception:  # a scrape must answer while the database is down
        jobs = None
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(ScrapeCollector(pool, jobs))
    return generate_latest(REGISTRY) + generate_latest(scraped)
