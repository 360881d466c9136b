"""The review queue: requirements waiting for a person, oldest first, beside their text."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ccvault.domain.caller import Caller
from ccvault.domain.cursors import decode_cursor, encode_cursor
from ccvault.domain.schema import ReviewQueue
from ccvault.storage.scenarios import ScenarioStore


class ReviewService:
    """Pages of an agent's pending requirements under signed cursors."""

    def __init__(self, scenarios: ScenarioStore) -> None:
        self._scenarios = scenarios

    async def queue(
        self, caller: Caller, agent_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> ReviewQueue:
        """One page; a cursor minted for another agent's queue or tenant is a 422."""
        # The agent is part of the list's name: a cursor of one agent's queue is refused
        # on another's.
        list_name = f"review-queue:{agent_id}"
        after = None
        if cursor is not None:
            at, req_id = decode_cursor(caller.secret, list_name, cursor)
            after = (datetime.fromisoformat(at), UUID(req_id))
        page = await self._scenarios.review_queue(caller.tenant_id, agent_id, after, limit + 1)
        next_cursor = None
        if len(page) > limit:
            page = page[:limit]
            last_at, last_id = page[-1][1]
            next_cursor = encode_cursor(
                caller.secret, list_name, [last_at.isoformat(), str(last_id)]
            )
        return ReviewQueue(items=[item for item, _ in page], next_cursor=next_cursor)
