"""Each tenant has its own secret, resolved with its key: cursors and subject hashes of
one tenant never verify for another."""

from __future__ import annotations

import uuid

from ccvault.runtime import Vault
from ccvault.storage.tenants import TenantStore


async def test_a_resolved_key_names_its_key_and_carries_its_tenants_secret(
    vault: Vault,
) -> None:
    store = TenantStore(vault.pool)
    first, first_key = await store.create(f"s-{uuid.uuid4().hex}", "warn")
    second, second_key = await store.create(f"s-{uuid.uuid4().hex}", "warn")
    a = await store.caller_for_key(first_key)
    again = await store.caller_for_key(first_key)
    b = await store.caller_for_key(second_key)
    assert a is not None and again is not None and b is not None
    assert a.tenant_id == first.tenant_id and b.tenant_id == second.tenant_id
    assert isinstance(a.key_id, uuid.UUID) and a.key_id != b.key_id
    assert len(a.secret) >= 32 and a.secret == again.secret
    assert a.secret != b.secret
    assert "secret" not in repr(a)
