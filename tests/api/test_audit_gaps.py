"""Audit log, the gaps of issue #13 closed: entries addressed to an alias are filed under
the customer the write or read landed on; lineage reads under the item's owner; jobs
write as `job:<name>`; `ccv audit verify` tells a chain whose newest entries were
deleted (the recorded head, migration 0025)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from uuid import UUID

import httpx
import pytest
from test_audit import assert_refused, entries, marker, put, secret_of, some_entries, verify

from ccvault.domain.audit import entry_hash
from ccvault.domain.privacy import subject_hash
from ccvault.runtime import Vault


async def test_the_database_hashes_a_subject_as_python_does(vault: Vault, tenant_id: UUID) -> None:
    secret = await secret_of(vault, tenant_id)
    ids = ["c-1", "ünïcødé-客户", "x" * 300, ""]
    async with vault.pool.connection() as conn:
        for cid in ids:
            cur = await conn.execute("SELECT ccv_subject_hash(%s::uuid, %s)", (tenant_id, cid))
            assert (await cur.fetchone() or [None])[0] == subject_hash(secret, cid), cid
        # A key longer than a block is hashed first (RFC 2104), as Python's hmac does.
        cur = await conn.execute(
            "SELECT encode(ccv_hmac_sha256(%s, %s), 'hex')", (b"k" * 100, b"message")
        )
        expected = hmac.new(b"k" * 100, b"message", hashlib.sha256).hexdigest()
        assert (await cur.fetchone() or [None])[0] == expected


async def merged_pair(api: httpx.AsyncClient) -> tuple[str, str]:
    """A target profile and the id of a profile merged into it (now an alias)."""
    target, alias = marker("t"), marker("a")
    await put(api, target, "plan", "gold")
    await put(api, alias, "seats", 3)
    resp = await api.post(f"/v1/profiles/{target}/merge", json={"source_customer_id": alias})
    assert resp.status_code == 200, resp.text
    return target, alias


async def test_writes_and_reads_addressed_to_an_alias_are_filed_under_the_target(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    target, alias = await merged_pair(api)
    secret = await secret_of(vault, tenant_id)
    before = len(await entries(api, target))
    # Every kind of write that follows an alias: single-statement item writes, and the
    # writes that lock the profile first.
    await put(api, alias, "email", "a@example.com")
    asset = {
        "name": "passport",
        "asset_type": "document",
        "storage_provider": "s3",
        "storage_path": "b/k",
        "mime_type": "application/pdf",
        "size_bytes": 1,
        "checksum": "sha256:0",
    }
    resp = await api.post(f"/v1/profiles/{alias}/assets", json=asset)
    assert resp.status_code == 201, resp.text
    resp = await api.put(f"/v1/profiles/{alias}/consents/marketing", json={"granted": True})
    assert resp.status_code == 200, resp.text
    resp = await api.post(
        f"/v1/profiles/{alias}/channel-identities",
        json={"channel": "sms", "channel_user_id": marker("+1")},
    )
    assert resp.status_code == 201, resp.text
    resp = await api.patch(f"/v1/profiles/{alias}", json={"verification_level": "email_verified"})
    assert resp.status_code == 200, resp.text
    assert (await api.delete(f"/v1/profiles/{alias}/fields/email")).status_code == 204
    # Reads through the alias: the hot profile read, the model read, a field, a history,
    # an as-of read and the context view.
    await put(api, alias, "phone", "+15550100")
    for path, params in (
        (f"/v1/profiles/{alias}", {}),
        (f"/v1/profiles/{alias}", {"include": "history"}),
        (f"/v1/profiles/{alias}/fields/phone", {}),
        (f"/v1/profiles/{alias}/fields/phone/history", {}),
        (f"/v1/profiles/{alias}/context", {"agent_id": "a1"}),
    ):
        resp = await api.get(path, params=params)
        assert resp.status_code == 200, (path, resp.text)
    listed = await entries(api, target)
    new = [(e["action"], e["target"]) for e in listed[: len(listed) - before]][::-1]
    assert [a for a, _ in new[:7]] == [
        "field.write",
        "asset.add",
        "consent.put",
        "identity.link",
        "profile.patch",
        "field.delete",
        "field.write",
    ]
    # Reads are buffered: sealed after the writes before them, in any order.
    assert sorted(a for a, _ in new[7:]) == [
        "field.read",
        "history.read",
        "profile.read",
        "profile.read",
        "profile.read",
    ]
    assert all(e["subject_hash"] == subject_hash(secret, target) for e in listed)
    # The alias's own list holds what was filed before the merge made it one, nothing else.
    assert all(e["action"] in {"field.write"} for e in await entries(api, alias))


async def test_an_import_line_addressed_to_an_alias_is_filed_under_the_target(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    target, alias = await merged_pair(api)
    secret = await secret_of(vault, tenant_id)
    before = len(await entries(api, target))
    alias_before = len(await entries(api, alias))
    fresh = marker("n")
    lines = [
        {"customer_id": alias, "fields": {"tier": "two", "region": "eu"}},
        {"customer_id": fresh, "fields": {"tier": "one"}},
    ]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    resp = await api.post(
        "/v1/profiles/import", content=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert resp.status_code == 200, resp.text
    listed = await entries(api, target)
    assert sorted(e["target"] for e in listed[: len(listed) - before]) == ["region", "tier"]
    assert all(e["subject_hash"] == subject_hash(secret, target) for e in listed)
    assert len(await entries(api, alias)) == alias_before
    # A profile the batch created is filed under its own id, as before.
    assert [e["target"] for e in await entries(api, fresh)] == ["tier"]


async def test_a_read_of_the_alias_via_the_fast_path_is_the_target_s(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    # A bare GET (no query string) takes the fast read path; the cache never holds an
    # alias, so the miss tells the owner.
    target, alias = await merged_pair(api)
    assert (await api.get(f"/v1/profiles/{target}")).status_code == 200  # now cached
    before = len(await entries(api, target))
    assert (await api.get(f"/v1/profiles/{alias}")).status_code == 200
    assert (await api.get(f"/v1/profiles/{alias}")).status_code == 200
    after = await entries(api, target)
    assert [e["action"] for e in after[: len(after) - before]] == ["profile.read"] * 2


async def test_lineage_reads_are_filed_under_the_item_s_owner(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    owner, other = marker("o"), marker("d")
    source = await put(api, owner, "doc_text", "plain text")
    resp = await api.put(
        f"/v1/profiles/{other}/fields/derived",
        json={
            "value": "x",
            "source": "system_inferred",
            "source_item_id": source["id"],
            "source_item_type": "profile_field",
        },
    )
    assert resp.status_code == 201, resp.text
    derived = resp.json()
    assert (await api.get(f"/v1/lineage/{source['id']}")).status_code == 200
    assert (await api.get(f"/v1/lineage/{derived['id']}")).status_code == 200
    params = {"direction": "descendants"}
    assert (await api.get(f"/v1/lineage/{source['id']}", params=params)).status_code == 200
    owned = [(e["action"], e["target"]) for e in await entries(api, owner)]
    assert owned.count(("lineage.read", source["id"])) == 2
    assert ("lineage.read", derived["id"]) in [
        (e["action"], e["target"]) for e in await entries(api, other)
    ]
    # An unknown item: 404, and no entry.
    assert (await api.get(f"/v1/lineage/{UUID(int=7)}")).status_code == 404


@pytest.fixture
async def head_superuser(vault: Vault) -> Any:
    """A connection that may switch both guards off, as an attacker hiding a truncation
    would have to."""
    async with vault.pool.connection() as conn:
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        try:
            yield conn
        finally:
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


async def test_verify_names_the_newest_entries_removed(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID, head_superuser: Any
) -> None:
    await some_entries(api, vault, tenant_id)
    assert await verify(vault, tenant_id) is None
    await head_superuser.execute(
        "DELETE FROM audit_log WHERE tenant_id = %s AND seq >= 3", (tenant_id,)
    )
    assert await verify(vault, tenant_id) == (
        "entries 3 to 4 are missing: the chain ends at entry 2 but its recorded head is "
        "entry 4 (the newest entries were removed)"
    )


async def test_verify_names_a_replaced_newest_entry(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID, head_superuser: Any
) -> None:
    # Entry 4 removed and forged again with a hash that chains: only the head tells.
    await some_entries(api, vault, tenant_id)
    cur = await head_superuser.execute(
        "SELECT at, prev_hash FROM audit_log WHERE tenant_id = %s AND seq = 4", (tenant_id,)
    )
    at, prev = await cur.fetchone()
    await head_superuser.execute(
        "DELETE FROM audit_log WHERE tenant_id = %s AND seq = 4", (tenant_id,)
    )
    fields = {
        "actor": "admin",
        "action": "field.read",
        "subject_hash": None,
        "target": "f0",
        "purpose": None,
        "request_id": None,
    }
    await head_superuser.execute(
        "INSERT INTO audit_log (tenant_id, seq, at, actor, action, subject_hash, target,"
        " purpose, request_id, prev_hash, hash) VALUES (%s, 4, %s, 'admin', 'field.read',"
        " NULL, 'f0', NULL, NULL, %s, %s)",
        (tenant_id, at, prev, entry_hash(prev, 4, at, fields)),
    )
    assert await verify(vault, tenant_id) == (
        "entry 4 is not the one sealed (the recorded head's hash differs)"
    )


async def test_verify_names_a_missing_head(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    await some_entries(api, vault, tenant_id)
    async with vault.pool.connection() as conn:
        await conn.execute("ALTER TABLE audit_head DISABLE TRIGGER audit_head_forward_only")
        try:
            await conn.execute("DELETE FROM audit_head WHERE tenant_id = %s", (tenant_id,))
        finally:
            await conn.execute("ALTER TABLE audit_head ENABLE TRIGGER audit_head_forward_only")
    assert await verify(vault, tenant_id) == (
        "the chain's recorded head is missing (audit_head; the chain ends at entry 4)"
    )


async def test_the_head_only_moves_forward(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    await some_entries(api, vault, tenant_id)
    await assert_refused(
        vault,
        tenant_id,
        "UPDATE audit_head SET seq = seq - 1 WHERE tenant_id = %s",
        "UPDATE audit_head SET hash = 'x' WHERE tenant_id = %s",
        "DELETE FROM audit_head WHERE tenant_id = %s",
        "TRUNCATE audit_head",
    )
    async with vault.pool.connection() as conn:
        cur = await conn.execute("SELECT seq FROM audit_head WHERE tenant_id = %s", (tenant_id,))
        assert (await cur.fetchone() or [None])[0] == 4
    # More entries move it along with the chain.
    await put(api, marker("c"), "f", 1)
    await vault.services.audit.seal(tenant_id)
    async with vault.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT h.seq = l.seq AND h.hash = l.hash FROM audit_head h"
            " JOIN LATERAL (SELECT seq, hash FROM audit_log WHERE tenant_id = h.tenant_id"
            "               ORDER BY seq DESC LIMIT 1) l ON true WHERE h.tenant_id = %s",
            (tenant_id,),
        )
        assert (await cur.fetchone() or [None])[0] is True
    assert await verify(vault, tenant_id) is None
