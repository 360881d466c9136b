"""Erasure (DESIGN §8): a customer deleted for good, with what derives from their data,
and a receipt that names no one."""

from __future__ import annotations

from functools import partial
from uuid import UUID

from ccvault.domain.audit import Action, note
from ccvault.domain.caller import Caller
from ccvault.domain.errors import InvalidInput, Problem
from ccvault.domain.privacy import EraseRequest, Erasure, ErasureReceipt, subject_hash
from ccvault.storage import erasure as erasure_sql
from ccvault.storage.cache import ProfileCache
from ccvault.storage.db import Pool

# Receipts an admin list answers at most at once (the newest).
MAX_RECEIPTS = 1000


class ErasureService:
    """Erases profiles (one transaction each, then the cache) and lists receipts."""

    def __init__(self, pool: Pool, cache: ProfileCache | None) -> None:
        self._pool = pool
        self._cache = cache

    async def erase(
        self, caller: Caller, customer_id: str, request: EraseRequest | None = None
    ) -> Erasure:
        """Erase the profile `customer_id` names (an alias: its target). NotFound when
        there is none, a second erasure included; 422 when the reason names the customer."""
        if not caller.secret:
            # Without the tenant's secret the receipt could not hide the id: refuse early.
            raise RuntimeError("erasure needs the tenant's secret on the caller")
        reason = request.reason if request is not None else None

        def subject_of(erased: str) -> str:
            for named in {customer_id, erased}:
                if reason is not None and named.casefold() in reason.casefold():
                    raise InvalidInput(
                        "the reason must not name the customer: it is kept on the receipt",
                        [Problem(("body", "reason"), "contains the customer id", "value_error")],
                    )
            return subject_hash(caller.secret, erased)

        done = await erasure_sql.erase(
            self._pool,
            caller.tenant_id,
            customer_id,
            reason=reason,
            subject_of=subject_of,
            audit=partial(note, caller, Action.profile_erase),
        )
        if self._cache is not None:
            await self._cache.invalidate(done.touched)
        return Erasure(receipt_id=done.receipt_id, erased_at=done.erased_at, counts=done.counts)

    async def receipts(self, tenant_id: UUID, limit: int = MAX_RECEIPTS) -> list[ErasureReceipt]:
        """A tenant's erasure receipts, newest first (operators); NotFound for an
        unknown tenant."""
        return await erasure_sql.list_receipts(self._pool, tenant_id, limit)
