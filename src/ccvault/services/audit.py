"""The audit log (DESIGN §8): who wrote and read a customer's data, and why, in a
per-tenant hash chain anyone with the database can check.

- Writes: the service of each write builds its entry (`domain.audit.note`) and the store
  inserts it in the write's own transaction, unsealed.
- Reads: `read` appends to an in-process buffer (no I/O on the request's path); the
  buffer goes to PostgreSQL in one statement at most `FLUSH_SECONDS` later.
- Sealing: `seal` numbers a tenant's pending entries and chains their hashes under a
  per-tenant advisory lock. Serving processes seal every `FLUSH_SECONDS` (`run`); a list
  and `verify` seal first, so they see every committed entry.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import psycopg
import structlog
from psycopg_pool import PoolTimeout

from ccvault.domain.answers import Page
from ccvault.domain.audit import Action, AuditEntry, AuditNote, ChainBreak, ChainWalk, note
from ccvault.domain.caller import Caller
from ccvault.domain.cursors import LOC, decode_cursor, encode_cursor
from ccvault.domain.errors import InvalidInput, Problem
from ccvault.domain.privacy import subject_hash
from ccvault.logs import REQUEST_ID
from ccvault.storage import audit as audit_sql
from ccvault.storage.db import Pool, open_pool

log = structlog.get_logger("ccvault.audit")
# Read entries wait at most this long in memory (a crash loses at most that much).
FLUSH_SECONDS = 0.5
# A buffer this long is flushed at once rather than at the next tick.
MAX_BUFFER = 10_000
LIST_NAME = "audit"


@dataclass(frozen=True)
class TenantChain:
    """What `verify` found for one tenant."""

    tenant_id: UUID
    name: str
    checked: int
    broken: ChainBreak | None


class AuditService:
    """Records reads (buffered), seals pending entries, lists and verifies chains."""

    def __init__(self, pool: Pool, *, reads: bool = True) -> None:
        self._pool = pool
        self.reads = reads
        self._buffer: list[tuple[UUID, datetime, AuditNote]] = []
        self._flushing: asyncio.Task[None] | None = None

    # -- recording ----------------------------------------------------------------

    def read(
        self,
        caller: Caller,
        action: Action,
        customer_id: str | None,
        *,
        target: str | None = None,
        purpose: str | None = None,
    ) -> None:
        """Remember a read for the next batch (nothing when read auditing is off)."""
        if not self.reads:
            return
        # The hot read leaves the caller as its key resolved; the request's id is here.
        request_id = caller.request_id or REQUEST_ID.get()
        entry = note(
            caller, action, customer_id, target=target, purpose=purpose, request_id=request_id
        )
        self._buffer.append((caller.tenant_id, datetime.now(UTC), entry))
        if len(self._buffer) >= MAX_BUFFER and self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        try:
            await self.flush(wait=False)
        finally:
            self._flushing = None

    async def flush(self, *, wait: bool = True) -> None:
        """Seal the buffered read entries, one tenant at a time (a tenant another process
        is sealing gets them as pending entries when `wait` is False). What fails to go
        out is put back for the next try."""
        batch, self._buffer = self._buffer, []
        by_tenant: dict[UUID, builtins.list[tuple[datetime, AuditNote]]] = {}
        for tenant_id, at, entry in batch:
            by_tenant.setdefault(tenant_id, []).append((at, entry))
        while by_tenant:
            tenant_id, entries = next(iter(by_tenant.items()))
            try:
                await audit_sql.seal(self._pool, tenant_id, wait=wait, extra=entries)
            except BaseException:
                self._buffer[:0] = [(t, at, e) for t, es in by_tenant.items() for at, e in es]
                raise
            del by_tenant[tenant_id]

    async def seal(self, tenant_id: UUID, *, wait: bool = True) -> int:
        """Chain the tenant's committed pending entries into its log; how many."""
        return await audit_sql.seal(self._pool, tenant_id, wait=wait)

    async def tick(self) -> None:
        """One round of the background work: seal the buffered reads and every tenant's
        pending entries (leaving tenants another process is sealing to it)."""
        await self.flush(wait=False)
        for tenant_id in await audit_sql.pending_tenants(self._pool):
            await self.seal(tenant_id, wait=False)

    async def run(self, every: float = FLUSH_SECONDS) -> None:
        """Tick until cancelled; a failed tick (database down) is logged and retried."""
        failing = False
        try:
            while True:
                await asyncio.sleep(every)
                try:
                    await self.tick()
                    failing = False
                except (psycopg.OperationalError, PoolTimeout):
                    pass  # the database is away: the pool says so once (storage/db.py)
                except Exception as exc:  # the next tick tries again; said once a streak
                    if not failing:
                        log.warning("audit tick failed", error=type(exc).__name__)
                    failing = True
        finally:
            # Shutting down: what is buffered goes out if the database lets it.
            with contextlib.suppress(Exception):
                await self.flush()

    # -- reading ------------------------------------------------------------------

    async def list(
        self, caller: Caller, customer_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[AuditEntry]:
        """The customer's entries, newest first (every committed one: sealed first)."""
        before: int | None = None
        if cursor:
            position = decode_cursor(caller.secret, LIST_NAME, cursor)
            if len(position) != 1 or not isinstance(position[0], int):
                raise InvalidInput(
                    "The cursor is not one this list handed out.",
                    [Problem(LOC, "malformed cursor", "invalid_cursor")],
                )
            before = position[0]
        await self.flush()
        await self.seal(caller.tenant_id)
        subject = subject_hash(caller.secret, customer_id)
        items = await audit_sql.list_for_subject(
            self._pool, caller.tenant_id, subject, limit=limit + 1, before=before
        )
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            next_cursor = encode_cursor(caller.secret, LIST_NAME, [items[-1].seq])
        return Page[AuditEntry](items=items, next_cursor=next_cursor)

    async def entries_of(self, caller: Caller, customer_id: str) -> builtins.list[AuditEntry]:
        """Every entry about the customer, oldest first (for an export)."""
        await self.flush()
        await self.seal(caller.tenant_id)
        subject = subject_hash(caller.secret, customer_id)
        found: builtins.list[AuditEntry] = []
        before: int | None = None
        while True:
            page = await audit_sql.list_for_subject(
                self._pool, caller.tenant_id, subject, limit=1000, before=before
            )
            found += page
            if len(page) < 1000:
                return found[::-1]
            before = page[-1].seq

    async def verify(
        self,
        tenant_name: str | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> builtins.list[TenantChain]:
        """Seal, then walk every tenant's chain (or the named one's); `progress(done,
        total)` after each page. Stops a tenant's walk at its first break."""
        tenants = await audit_sql.chain_tenants(self._pool, tenant_name)
        for info in tenants:
            await self.seal(info.tenant_id)
        # Heads read before the walks: entries sealed meanwhile come after them.
        tenants = await audit_sql.chain_tenants(self._pool, tenant_name)
        total = sum(info.highest for info in tenants)
        done = 0
        results = []
        for info in tenants:
            chain = ChainWalk(head=info.head)
            async for rows in audit_sql.walk(self._pool, info.tenant_id):
                chain.feed(rows)
                done += len(rows)
                if progress is not None:
                    progress(done, total)
                if chain.broken is not None:
                    break
            chain.finish(had_entries=info.highest > 0)
            results.append(TenantChain(info.tenant_id, info.name, chain.checked, chain.broken))
        return results


@asynccontextmanager
async def offline_audit(database_url: str) -> AsyncIterator[AuditService]:
    """The audit service on its own small pool, for `ccv audit verify`."""
    pool = await open_pool(database_url, min_size=1, max_size=2)
    try:
        yield AuditService(pool, reads=False)
    finally:
        await pool.close()
