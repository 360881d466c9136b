"""Erasure on PostgreSQL: one transaction that deletes a profile, its aliases and what
derives from it (ccv_erase_profile, migration 0015) and keeps the receipt."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import psycopg
from pydantic import TypeAdapter

from ccvault.domain.audit import AuditNote
from ccvault.domain.errors import Conflict, NotFound
from ccvault.domain.privacy import ErasureCounts, ErasureReceipt
from ccvault.storage import audit as audit_sql
from ccvault.storage.cache import Touched
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("erasure.sql")
_RECEIPTS: TypeAdapter[list[ErasureReceipt]] = TypeAdapter(list[ErasureReceipt])
# An erasure reaching into other profiles for derived items can meet a writer there that
# waits for one of the erased items (a deadlock PostgreSQL breaks by aborting one side).
# The erasure starts over: it is idempotent until it commits.
_ATTEMPTS = 3
_RETRYABLE = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


@dataclass(frozen=True)
class Erased:
    """A committed erasure: its receipt and what the cache must forget."""

    receipt_id: UUID
    erased_at: datetime
    customer_id: str
    counts: ErasureCounts
    touched: list[Touched]
    """The erased profile (at a version past every version it had) and the profiles that
    lost derived items (at their new versions)."""


async def erase(
    pool: Pool,
    tenant_id: UUID,
    customer_id: str,
    *,
    reason: str | None,
    subject_of: Callable[[str], str],
    audit: Callable[[str], AuditNote] | None = None,
) -> Erased:
    """Erase the profile `customer_id` names (an alias: its target) and keep a receipt,
    in one transaction. `subject_of` turns the erased customer id into the receipt's
    subject hash; whatever it raises rolls the erasure back. `audit` makes the audit
    entry for the erased customer id, kept in the same transaction. NotFound when there
    is no such profile (a second erasure included)."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return await _erase_once(pool, tenant_id, customer_id, reason, subject_of, audit)
        except _RETRYABLE:
            if attempt == _ATTEMPTS:
                raise
    raise AssertionError("unreachable")


async def _erase_once(
    pool: Pool,
    tenant_id: UUID,
    customer_id: str,
    reason: str | None,
    subject_of: Callable[[str], str],
    audit: Callable[[str], AuditNote] | None,
) -> Erased:
    async with pool.connection() as conn, conn.transaction():
        try:
            cur = await conn.execute(
                Q["erase_profile"], {"tenant_id": tenant_id, "customer_id": customer_id}
            )
        except psycopg.Error as exc:
            if exc.sqlstate == "CV404":
                raise NotFound(f"no profile {customer_id!r}") from None
            if exc.sqlstate == "CV409":
                raise Conflict(f"profile {customer_id!r} kept changing; try again") from None
            raise
        row = await cur.fetchone()
        assert row is not None
        erased, version, fields, assets, identities, consents, derived, others, versions = row
        counts = ErasureCounts(
            fields=fields,
            assets=assets,
            identities=identities,
            consents=consents,
            derived_items=derived,
        )
        receipt_id = uuid.uuid4()
        cur = await conn.execute(
            Q["insert_receipt"],
            {
                "id": receipt_id,
                "tenant_id": tenant_id,
                "subject_hash": subject_of(erased),
                "reason": reason,
                **counts.model_dump(),
            },
        )
        stamped = await cur.fetchone()
        assert stamped is not None
        if audit is not None:
            await audit_sql.note(conn, tenant_id, audit(erased))
    # The erased key's tombstone sits past every version the profile had: a read that
    # loaded it before the erasure can never store it again (storage/cache.py, rule 2).
    touched = [Touched(tenant_id, erased, version + 1)]
    touched += [Touched(tenant_id, c, v) for c, v in zip(others, versions, strict=True)]
    return Erased(receipt_id, stamped[0], erased, counts, touched)


async def list_receipts(pool: Pool, tenant_id: UUID, limit: int) -> list[ErasureReceipt]:
    """A tenant's receipts, newest first; NotFound for an unknown tenant."""
    async with pool.connection() as conn:
        cur = await conn.execute(Q["list_receipts"], {"tenant_id": tenant_id, "limit": limit})
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no tenant {tenant_id}")
    return _RECEIPTS.validate_json(row[0])
