"""Who is asking: one small immutable value every entry point builds and hands first to
every service call, so tenant scoping, `written_by`, purpose and request ids come out the
same whichever door (HTTP, MCP, console, CLI) a request came in by."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from uuid import UUID


@dataclass(frozen=True)
class Caller:
    """The tenant an API key belongs to, which of its keys was presented, and what the
    request said about itself (agent, purpose, request id)."""

    tenant_id: UUID
    name: str
    validation_mode: str
    key_id: UUID | None = None
    # Signs cursors handed to this tenant; resolved with the key, so signing costs no query.
    secret: bytes = field(default=b"", repr=False)
    # The tenant refuses reads that name no purpose (DESIGN §8 "Privacy").
    require_purpose: bool = False
    agent_id: str | None = None
    purpose: str | None = None
    request_id: str | None = None

    def acting_as(
        self,
        *,
        agent_id: str | None = None,
        purpose: str | None = None,
        request_id: str | None = None,
    ) -> Caller:
        """The same key, naming what one request says about itself (None keeps a value)."""
        return replace(
            self,
            agent_id=agent_id if agent_id is not None else self.agent_id,
            purpose=purpose if purpose is not None else self.purpose,
            request_id=request_id if request_id is not None else self.request_id,
        )
