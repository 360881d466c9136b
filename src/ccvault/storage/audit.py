"""The audit log on PostgreSQL (migrations 0021, 0025): unsealed entries in
`audit_pending`, the sealed, hash-chained log in `audit_log`, each chain's last entry in
`audit_head`.

- A write inserts its entry in its own transaction: `note` inside an open transaction,
  or `with_note` around a single-statement write (a CTE, so no extra round trip).
- Reads arrive in batches, per tenant: appended by the sealer itself when it holds the
  tenant's lock, else inserted as pending (`insert_batch`, one statement).
- `seal` moves a tenant's pending entries into the log under a per-tenant advisory lock,
  numbering them after the chain's head and chaining their hashes (domain/audit.py), and
  records the new head in the same statement.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from ccvault.domain.audit import (
    GENESIS,
    Action,
    AuditEntry,
    AuditNote,
    ChainHead,
    entry_hash,
    instant,
)
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("audit.sql")
# Pending entries sealed per statement: bounds the sealer's memory and transaction.
SEAL_BATCH = 5000
WALK_PAGE = 20_000
_COLUMNS = ("actor", "action", "subject_hash", "target", "purpose", "request_id")


def note_params(tenant_id: UUID, note: AuditNote) -> dict[str, Any]:
    """The `audit_*` parameters of the `note` and `with_note` queries."""
    return {
        "audit_tenant_id": tenant_id,
        "audit_actor": note.actor,
        "audit_action": note.action.value,
        "audit_subject_hash": note.subject_hash,
        "audit_target": note.target,
        "audit_purpose": note.purpose,
        "audit_request_id": note.request_id,
    }


@cache
def with_note(query: str) -> str:
    """A single-statement write (a SELECT or a DML ... RETURNING, without a WITH of its
    own) that also inserts its audit entry when it answers a row: both commit or fail
    together. Takes `note_params`."""
    return Q["with_note"].replace("{write}", query.rstrip().rstrip(";"))


@cache
def with_subject_note(query: str) -> str:
    """As `with_note`, for a write function that takes `customer_id` and answers the
    `customer_id` it landed on: the entry is filed under that one (an alias's target)."""
    return Q["with_subject_note"].replace("{write}", query.rstrip().rstrip(";"))


async def note_many(
    conn: AsyncConnection[Any],
    tenant_id: UUID,
    actor: str,
    entries: Sequence[tuple[Action, str | None, str | None]],
) -> None:
    """Insert `actor`'s entries, each (action, subject hash, target), in one statement
    inside the caller's open transaction (nothing for none)."""
    if entries:
        actions, subjects, targets = zip(*entries, strict=True)
        await conn.execute(
            Q["note_many"],
            {
                "tenant_id": tenant_id,
                "actor": actor,
                "actions": [a.value for a in actions],
                "subjects": list(subjects),
                "targets": list(targets),
            },
        )


async def subject_secret(conn: AsyncConnection[Any], tenant_id: UUID) -> bytes:
    """The key of the tenant's subject hashes, for set-based writers that hash many
    customer ids in Python (cheaper there than one HMAC per row in SQL)."""
    cur = await conn.execute(Q["subject_secret"], {"tenant_id": tenant_id})
    row = await cur.fetchone()
    if row is None:
        raise LookupError(f"no tenant {tenant_id}")
    return bytes(row[0])


async def note(
    conn: AsyncConnection[Any],
    tenant_id: UUID,
    entry: AuditNote | None,
    *,
    asked: str | None = None,
    landed: str | None = None,
) -> None:
    """Insert a write's entry inside the caller's open transaction (nothing for None).
    A write addressed to `asked` that landed on another customer (`asked` is an alias
    of `landed`) is filed under `landed`."""
    if entry is None:
        return
    if landed is not None and landed != asked:
        await conn.execute(Q["note_landed"], {**note_params(tenant_id, entry), "landed": landed})
    else:
        await conn.execute(Q["note"], note_params(tenant_id, entry))


async def insert_batch(
    conn: AsyncConnection[Any], tenant_id: UUID, batch: Sequence[tuple[datetime, AuditNote]]
) -> None:
    """Entries of one tenant as pending, in one statement."""
    params: dict[str, list[Any]] = {
        "tenant_ids": [tenant_id] * len(batch),
        "ats": [at for at, _ in batch],
        "actors": [n.actor for _, n in batch],
        "actions": [n.action.value for _, n in batch],
        "subjects": [n.subject_hash for _, n in batch],
        "targets": [n.target for _, n in batch],
        "purposes": [n.purpose for _, n in batch],
        "request_ids": [n.request_id for _, n in batch],
    }
    await conn.execute(Q["insert_batch"], params)


async def pending_tenants(pool: Pool) -> list[UUID]:
    """Tenants with entries waiting to be sealed."""
    async with pool.connection() as conn:
        cur = await conn.execute(Q["pending_tenants"])
        return [row[0] for row in await cur.fetchall()]


# Compact JSON of the sealed rows (the `append` query reads it).
_ROWS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


async def seal(
    pool: Pool,
    tenant_id: UUID,
    *,
    wait: bool = True,
    extra: Sequence[tuple[datetime, AuditNote]] = (),
) -> int:
    """Seal the tenant's pending entries (all those committed when each batch starts),
    then `extra` (buffered reads, appended straight to the log: no pending row to write
    and delete); returns how many. With `wait=False` a tenant another process is sealing
    is left to it, and `extra` goes to the pending entries instead."""
    sealed = 0
    more = list(extra)
    while True:
        async with pool.connection() as conn, conn.transaction():
            params = {"tenant_id": tenant_id}
            cur = await conn.execute(Q["seal_lock" if wait else "seal_try_lock"], params)
            locked = await cur.fetchone()
            if not wait and not (locked and locked[0]):
                if more:
                    await insert_batch(conn, tenant_id, more)
                return sealed
            cur = await conn.execute(Q["chain_head"], params)
            head = await cur.fetchone()
            seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
            cur = await conn.execute(Q["take_pending"], {**params, "limit": SEAL_BATCH})
            # DELETE ... RETURNING promises no order: entries are chained in pending order.
            rows = sorted(await cur.fetchall(), key=lambda row: int(row[0]))
            entries = [(row[1], tuple(row[2:])) for row in rows]
            entries += [
                (
                    at,
                    (n.actor, n.action.value, n.subject_hash, n.target, n.purpose, n.request_id),
                )
                for at, n in more
            ]
            more = []
            if not entries:
                return sealed
            sealed_rows: list[list[Any]] = []
            for at, values in entries:
                seq += 1
                at_text = instant(at)  # once: hashed and sent as the same text
                fields = dict(zip(_COLUMNS, values, strict=True))
                digest = entry_hash(prev, seq, at, fields, at_text)
                sealed_rows.append([seq, at_text, *values, prev, digest])
                prev = digest
            await conn.execute(
                Q["append"],
                {**params, "rows": _ROWS(sealed_rows), "head_seq": seq, "head_hash": prev},
            )
        sealed += len(entries)
        if len(rows) < SEAL_BATCH:
            return sealed


async def list_for_subject(
    pool: Pool, tenant_id: UUID, subject: str, *, limit: int, before: int | None
) -> list[AuditEntry]:
    """One customer's sealed entries, newest first, with seq below `before`."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            Q["list_for_subject"],
            {"tenant_id": tenant_id, "subject_hash": subject, "limit": limit, "before": before},
        )
        rows = await cur.fetchall()
    return [_entry(row) for row in rows]


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    keys = ("seq", "at", *_COLUMNS, "prev_hash", "hash")
    return AuditEntry.model_validate(dict(zip(keys, row, strict=True)))


@dataclass(frozen=True)
class ChainInfo:
    """A tenant's chain as `verify` starts on it: how long, and its recorded head."""

    tenant_id: UUID
    name: str
    highest: int
    head: ChainHead | None


async def chain_tenants(pool: Pool, name: str | None) -> list[ChainInfo]:
    """Every tenant's chain, or the named one's."""
    async with pool.connection() as conn:
        cur = await conn.execute(Q["chain_tenants"], {"name": name})
        rows = await cur.fetchall()
    return [
        ChainInfo(
            row[0],
            str(row[1]),
            int(row[2]),
            ChainHead(int(row[3]), str(row[4])) if row[3] is not None else None,
        )
        for row in rows
    ]


async def walk(pool: Pool, tenant_id: UUID) -> AsyncIterator[list[tuple[Any, ...]]]:
    """A tenant's whole chain in seq order, page by page (raw rows for ChainWalk)."""
    after = 0
    while True:
        async with pool.connection() as conn:
            cur = await conn.execute(
                Q["walk"], {"tenant_id": tenant_id, "after": after, "limit": WALK_PAGE}
            )
            rows = await cur.fetchall()
        if not rows:
            return
        yield rows
        after = int(rows[-1][0])
