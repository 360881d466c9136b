"""API keys to callers: a key resolves to its tenant's `Caller`, remembered briefly so a
request costs no query (key resolution is not an HTTP concern: MCP and the console use it
too)."""

from __future__ import annotations

import time

from ccvault.domain.caller import Caller
from ccvault.storage.tenants import TenantStore, hash_key


class KeyResolver:
    """Resolves keys to tenants, remembering answers briefly so a request costs no query.

    A revoked key or a changed tenant setting is seen within `ttl` seconds on every process.
    """

    def __init__(self, tenants: TenantStore, ttl: float, max_entries: int = 10_000) -> None:
        self.tenants = tenants
        self.ttl = ttl
        self.max_entries = max_entries
        self._known: dict[bytes, tuple[Caller, float]] = {}

    async def resolve(self, api_key: str) -> Caller | None:
        """The caller for a key, from memory when recent, else from PostgreSQL."""
        digest = hash_key(api_key)
        now = time.monotonic()
        hit = self._known.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        caller = await self.tenants.caller_for_key(api_key)
        if caller is not None and self.ttl > 0:
            if len(self._known) >= self.max_entries:
                self._known.clear()
            self._known[digest] = (caller, now + self.ttl)
        return caller

    def forget_key(self, key_id: object) -> None:
        """Drop a key this process just revoked: refused here at once, elsewhere when
        their memory of it lapses (`ttl`)."""
        for digest, (caller, _) in list(self._known.items()):
            if caller.key_id == key_id:
                del self._known[digest]

    def forget_tenant(self, tenant_id: object) -> None:
        """Drop remembered keys of a tenant whose settings this process just changed."""
        for digest, (caller, _) in list(self._known.items()):
            if caller.tenant_id == tenant_id:
                del self._known[digest]
