"""Every HTTP request, observed as plain ASGI: its request id, one access log line and the
`ccv_http_*` metrics.

It wraps the whole application (outside Starlette's ServerErrorMiddleware, see
`app.VaultApp`), so the fast profile read (fast_read.py), 404s, 413s and 500s are seen
like any routed request. A pure-ASGI class rather than BaseHTTPMiddleware: that one runs
each request in an extra task with memory streams, several times this cost.

What is recorded never holds a value: no bodies, no query strings and no raw paths (a
path holds customer ids): a request is named by its route template, e.g.
`/v1/profiles/{customer_id}`, and one that matched no route by `unmatched`.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from logging import DEBUG, INFO
from typing import Any, Final

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ccvault.logs import REQUEST_ID, AccessEntry, AccessLog

REQUEST_ID_HEADER: Final = b"x-request-id"
# A caller's id is kept when it is short and made of characters that are safe in a log
# line and a header (no spaces, quotes or control characters); anything else is replaced.
_SANE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# Set by a middleware that answers before routing (fast_read.py) to name its route.
ROUTE_KEY: Final = "ccv.route"
UNMATCHED: Final = "unmatched"
# Probes and scrapes every few seconds would drown the log: at DEBUG unless they fail.
_PROBES: Final = frozenset({"/healthz", "/readyz", "/metrics"})
# The method is the client's word; anything unusual gets one label, not a series each.
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# From a warm cache read (~0.2 ms) to a request held by an outage (seconds).
BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class HttpMetrics(Collector):
    """`ccv_http_requests_total{method,route,status}` and
    `ccv_http_request_duration_seconds{method,route}`, counted in plain dicts and turned
    into Prometheus families when scraped.

    prometheus_client's own Counter and Histogram take a lock per increment and walk the
    buckets in Python: several times this cost, on every request. Requests are counted
    on the event loop's thread only, and a scrape reads between two of them.
    """

    def __init__(self) -> None:
        # (method, route, status) -> [count per bucket..., count above the last, seconds]
        self._series: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[method, route, status] = [0.0] * (len(BUCKETS) + 2)
        series[bisect_left(BUCKETS, seconds)] += 1  # the first bucket with le >= seconds
        series[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        """The two families as they stand (the histogram adds up the statuses)."""
        requests = CounterMetricFamily(
            "ccv_http_requests",
            "HTTP requests answered, by method, route template and status",
            labels=["method", "route", "status"],
        )
        by_route: dict[tuple[str, str], list[float]] = {}
        for (method, route, status), series in list(self._series.items()):
            requests.add_metric([method, route, str(status)], sum(series[:-1]))
            total = by_route.setdefault((method, route), [0.0] * len(series))
            for i, value in enumerate(series):
                total[i] += value
        yield requests
        durations = HistogramMetricFamily(
            "ccv_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route",
            labels=["method", "route"],
        )
        for (method, route), series in by_route.items():
            buckets: list[tuple[str, float]] = []
            running = 0.0
            for bound, in_bucket in zip(_BUCKET_LABELS, series[:-1], strict=True):
                running += in_bucket
                buckets.append((bound, running))
            durations.add_metric([method, route], buckets, sum_value=series[-1])
        yield durations


_BUCKET_LABELS: Final = [*map(floatToGoString, BUCKETS), "+Inf"]
HTTP_METRICS = HttpMetrics()
REGISTRY.register(HTTP_METRICS)


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-Id when it is sane, else a new one (32 hex digits)."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return os.urandom(16).hex()  # uuid4().hex's randomness without building a UUID


def route_template(scope: Scope, root_path: str = "") -> str:
    """The template of the route that answered (`unmatched` when routing found none or
    did not run).

    `root_path` is the one the request arrived with: a mounted app's routes are relative
    to its mount, whose prefix routing appended to root_path.
    """
    path: str | None = getattr(scope.get("route"), "path", None)
    if path is None:
        named: str = scope.get(ROUTE_KEY, UNMATCHED)
        return named
    mount = scope.get("root_path", "")[len(root_path) :]
    return mount + path if mount else path


def route_templates(routes: Iterable[Any]) -> Iterator[str]:
    """Every route's template, through included routers (recent FastAPI keeps them
    nested instead of copying their routes into the app's)."""
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            yield path
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from route_templates(nested.routes)


class RouteGuesser:
    """Names a request that was answered before routing (a 413 from the body limit) by
    the first route template its path fits, method aside."""

    def __init__(self, routes: Callable[[], Iterable[Any]]) -> None:
        self._routes = routes
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    def __call__(self, path: str) -> str:
        """The template, or `unmatched`."""
        if self._compiled is None:  # routes are all added once the first request comes
            self._compiled = [(compile_path(t)[0], t) for t in route_templates(self._routes())]
        for pattern, template in self._compiled:
            if pattern.match(path):
                return template
        return UNMATCHED


class RequestObserver:
    """Mint or keep the request id, echo it, log the request and count it.

    Per request it only notes what happened; the metrics and the access line of all the
    requests of one event-loop turn are done together when the turn ends (a busy worker
    answers several a turn): one tight loop over them costs far less than the same work
    in the middle of each request's own, where every cache is cold.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        access_log: bool = True,
        metrics: bool = True,
        guess_route: Callable[[str], str] | None = None,
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics
        self.guess_route = guess_route
        self._log = AccessLog()
        self._done: list[tuple[Scope, str, int, float, str, Any, float]] = []
        if access_log or metrics:
            _observers.add(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope["headers"])
        echoed = (REQUEST_ID_HEADER, rid.encode())
        # Routes read the id (and leave the caller for this log) in request.state, which
        # is this dict: created here so that a copied scope still shares it.
        state: dict[str, Any] | None = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = rid
        root_path: str = scope.get("root_path", "")
        status = 500  # what uvicorn answers when nothing was sent

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        token = REQUEST_ID.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            if self.access_log or self.metrics:
                seconds = time.perf_counter() - started
                done = (scope, root_path, status, seconds, rid, state.get("caller"), time.time())
                if not self._done:
                    _call_soon(self.drain)
                self._done.append(done)

    def drain(self) -> None:
        """The metrics and access lines of the requests answered since the last drain."""
        done, self._done = self._done, []
        lines: list[AccessEntry] = []
        log = self._log
        for scope, root_path, status, seconds, rid, caller, at in done:
            route = route_template(scope, root_path)
            if route == UNMATCHED and status != 404 and self.guess_route is not None:
                route = self.guess_route(scope["path"])
            method: str = scope["method"]
            if method not in _METHODS:
                method = "other"
            if self.metrics:
                HTTP_METRICS.observe(method, route, status, seconds)
            if self.access_log:
                level = DEBUG if route in _PROBES and status < 400 else INFO
                if log.enabled(level):
                    tenant = getattr(caller, "tenant_id", None)
                    key_id = getattr(caller, "key_id", None)
                    lines.append(
                        (at, level, method, route, status, seconds * 1000, tenant, key_id, rid)
                    )
        if lines:
            log.add(lines)
            log.flush()


_observers: weakref.WeakSet[RequestObserver] = weakref.WeakSet()


def _call_soon(callback: Callable[[], None]) -> None:
    """Run `callback` when the event loop's turn ends, or now without a loop."""
    try:
        asyncio.get_running_loop().call_soon(callback)
    except RuntimeError:
        callback()


@atexit.register
def drain_observers() -> None:
    """Count and log every request still waiting for its loop turn to end (at exit; and
    for tests, which look right after a request)."""
    for observer in list(_observers):
        observer.drain()
