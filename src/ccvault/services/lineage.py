"""Lineage: where an item came from, or what was derived from it."""

from __future__ import annotations

from uuid import UUID

from ccvault.domain.audit import Action
from ccvault.domain.caller import Caller
from ccvault.domain.models import Direction, Lineage
from ccvault.services.audit import AuditService
from ccvault.storage import lineage as lineage_sql
from ccvault.storage.db import Pool

MAX_DEPTH = lineage_sql.MAX_DEPTH


class LineageService:
    """One recursive query, scoped to the caller's tenant."""

    def __init__(self, pool: Pool, *, audit: AuditService | None = None) -> None:
        self._pool = pool
        self._audit = audit

    async def walk(
        self, caller: Caller, item_id: UUID, direction: Direction, max_depth: int = MAX_DEPTH
    ) -> Lineage:
        """The item (depth 0) and its ancestors or descendants, ordered by depth; NotFound
        for an id the tenant does not hold."""
        found, owner = await lineage_sql.lineage_owned(
            self._pool, caller.tenant_id, item_id, direction, max_depth
        )
        self._audited(caller, item_id, owner)
        return found

    async def walk_json(
        self, caller: Caller, item_id: UUID, direction: Direction, max_depth: int = MAX_DEPTH
    ) -> bytes:
        """As `walk`, the answer as the API's JSON bytes (the models' dump, built without
        them: storage/lineage.py's answer_json)."""
        body, owner = await lineage_sql.lineage_json_owned(
            self._pool, caller.tenant_id, item_id, direction, max_depth
        )
        self._audited(caller, item_id, owner)
        return body

    def _audited(self, caller: Caller, item_id: UUID, owner: str | None) -> None:
        if self._audit is not None:
            # Filed under the customer owning the item (the same statement found them).
            self._audit.read(caller, Action.lineage_read, owner, target=str(item_id))
