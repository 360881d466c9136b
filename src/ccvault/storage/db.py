"""The connection pool every store shares, and how it rides out a PostgreSQL outage.

- A request waits at most `timeout` for a connection (psycopg_pool's PoolTimeout, which
  the API answers with 503), never until the server returns: nothing is sent before a
  connection is in hand, so a write that gave up there is never applied later.
- The server aborts any statement that runs longer than `statement_timeout` and ends a
  transaction left idle that long, so no statement of ours keeps running (or holding a
  profile's lock) long after its request was answered.
- A connection the server closed (a restart, a crash) is noticed at checkout for the
  cost of one non-blocking poll, and its siblings are replaced with it, so a restart
  costs no failed request per stale connection.
- Lost connections are reconnected every 0.2 s while the pool has none to give:
  psycopg_pool would otherwise retry on a doubling schedule (1, 2, 4, 8 s...), and after
  a long outage the first request could wait many seconds past the server's return.
"""

from __future__ import annotations

import logging
import select
from typing import Any

import psycopg
import structlog
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)

from ccvault.outage import Outage
from ccvault.storage.urls import libpq_url

log = structlog.get_logger("ccvault.db")
# psycopg_pool warns once per failed connection attempt; the pool's Outage below says
# it once per outage instead.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

Pool = AsyncConnectionPool[AsyncConnection[TupleRow]]

# A failed reconnection is tried once more after this long and then started afresh
# (psycopg_pool would keep a doubling schedule: 1, 2, 4, 8 s... for 5 minutes).
RECONNECT_GIVE_UP_SECONDS = 0.2
# libpq's own bound on one connection attempt (its minimum is 2 s): an unreachable host
# must not hold the pool's one growing slot for the OS's TCP timeout.
CONNECT_TIMEOUT_SECONDS = 3
# How long open_pool waits for the server at start-up, as before these changes.
STARTUP_WAIT_SECONDS = 30.0
# Probing a server that is down: first after 50 ms, then doubling up to this.
PROBE_MAX_INTERVAL_SECONDS = 1.0


class VaultPool(Pool):
    """psycopg's pool with outage handling: dead connections are found at checkout, lost
    ones are reconnected every 0.2 s while none is left, and an outage is logged once."""

    def __init__(self, conninfo: str, **kwargs: Any) -> None:
        self.outage = Outage(log, down="database unavailable", up="database available again")
        super().__init__(
            conninfo,
            check=self._check_alive,
            configure=self._connected,
            reconnect_failed=self._reconnect_failed,
            reconnect_timeout=RECONNECT_GIVE_UP_SECONDS,
            **kwargs,
        )

    async def _check_alive(self, conn: AsyncConnection[TupleRow]) -> None:
        """At checkout: a round trip only when the server sent something to the idle
        connection (it does when it closes it), so a healthy checkout costs one poll."""
        if not _input_pending(conn):
            return
        try:
            await conn.execute("")
        except psycopg.OperationalError as exc:
            self.outage.begin(exc)
            # The server closed its siblings too: replace them all now, rather than
            # let each fail its own check (psycopg_pool sleeps ~1 s after the second).
            await self.drain()
            raise

    async def _connected(self, conn: AsyncConnection[TupleRow]) -> None:
        """Every new connection: the server answers, so an open outage is over."""
        self.outage.end()

    async def _reconnect_failed(self, pool: Pool) -> None:
        """A reconnection gave up (twice refused): try again at once while the pool has
        no connection to give, so the first one is ready within RECONNECT_GIVE_UP_SECONDS
        of the server's return, whether or not requests arrive meanwhile."""
        self.outage.begin("cannot connect to the database")
        if not self.closed and self.get_stats()["pool_available"] == 0:
            # check() with nothing idle only starts the pool growing again (public API).
            await self.check()

    async def putconn(self, conn: AsyncConnection[TupleRow]) -> None:
        """Return a connection; one broken in use (server gone) opens an outage."""
        if conn.broken:
            self.outage.begin("connection to the database lost")
        await super().putconn(conn)


def _input_pending(conn: AsyncConnection[Any]) -> bool:
    """Whether the server sent anything to a connection idle in the pool: it never does
    for our sessions (no LISTEN) except to say goodbye, and a closed socket reads EOF."""
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)
    return bool(poller.poll(0))


def session_options(statement_timeout: float | None) -> str:
    """libpq `options` for our sessions: UTC, and the server-side statement deadline."""
    options = "-c TimeZone=UTC"
    if statement_timeout:
        ms = max(1, round(statement_timeout * 1000))
        options += f" -c statement_timeout={ms} -c idle_in_transaction_session_timeout={ms}"
    return options


async def wait_for_database(url: str, *, within: float | None = None) -> None:
    """Return once the server accepts a connection and answers a query, probing with
    capped exponential backoff; the last error is raised after `within` seconds (None:
    wait until cancelled)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(psycopg.OperationalError),
        wait=wait_exponential_jitter(initial=0.05, max=PROBE_MAX_INTERVAL_SECONDS, jitter=0.05),
        stop=stop_never if within is None else stop_after_delay(within),
        reraise=True,
    ):
        with attempt:
            async with await AsyncConnection.connect(
                libpq_url(url), autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            ) as conn:
                await conn.execute("SELECT 1")


async def open_pool(
    database_url: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    pool_timeout: float = 30.0,
    statement_timeout: float | None = None,
) -> Pool:
    """Open a pool of autocommit connections in UTC (writes open explicit transactions).

    `pool_timeout` bounds the wait for a connection; `statement_timeout` (seconds, None: the
    server's default) bounds every statement and idle transaction on the server.
    """
    url = libpq_url(database_url)
    # The pool gives up reconnecting within a second (see VaultPool), so a server that is
    # still starting is waited for here.
    await wait_for_database(url, within=STARTUP_WAIT_SECONDS)
    pool = VaultPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=pool_timeout,
        # Reads are single statements: autocommit saves the BEGIN/COMMIT round trips.
        kwargs={
            "autocommit": True,
            "options": session_options(statement_timeout),
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        },
        open=False,
        name="ccvault",
    )
    await pool.open(wait=True, timeout=STARTUP_WAIT_SECONDS)
    return pool
