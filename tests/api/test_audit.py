"""The audit log (DESIGN §8 "Audit log"): an entry for every write (in the write's own
transaction) and read (buffered ≤ 1 s), hash-chained per tenant, append-only, naming no
value and no customer id; `GET .../audit`, `ccv audit verify`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from ccvault.domain.privacy import subject_hash
from ccvault.runtime import Vault

CCV = str(Path(sys.executable).with_name("ccv"))


def marker(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex}"


async def put(api: httpx.AsyncClient, cid: str, name: str, value: Any, **kw: Any) -> Any:
    resp = await api.put(
        f"/v1/profiles/{cid}/fields/{name}",
        json={"value": value, "source": "user_provided"},
        **kw,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def entries(api: httpx.AsyncClient, cid: str, **params: Any) -> list[dict[str, Any]]:
    resp = await api.get(f"/v1/profiles/{cid}/audit", params=params)
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


async def tenant_name(vault: Vault, tenant_id: UUID) -> str:
    async with vault.pool.connection() as conn:
        cur = await conn.execute("SELECT name FROM tenants WHERE id = %s", (tenant_id,))
        row = await cur.fetchone()
    assert row is not None
    return str(row[0])


async def secret_of(vault: Vault, tenant_id: UUID) -> bytes:
    async with vault.pool.connection() as conn:
        cur = await conn.execute("SELECT secret FROM tenants WHERE id = %s", (tenant_id,))
        row = await cur.fetchone()
    assert row is not None
    return bytes(row[0])


async def verify(vault: Vault, tenant_id: UUID) -> str | None:
    """The first break of the tenant's chain, None when intact."""
    name = await tenant_name(vault, tenant_id)
    (chain,) = await vault.services.audit.verify(name)
    assert chain.tenant_id == tenant_id
    return None if chain.broken is None else chain.broken.problem


@pytest.fixture
async def superuser(vault: Vault) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection that may switch the append-only trigger off, to tamper as an attacker
    with the database would; the trigger is on again afterwards."""
    async with vault.pool.connection() as conn:
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        try:
            yield conn
        finally:
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


async def some_entries(api: httpx.AsyncClient, vault: Vault, tenant_id: UUID) -> str:
    cid = marker("c")
    for i in range(4):
        await put(api, cid, f"f{i}", marker("v"))
    await vault.services.audit.seal(tenant_id)
    return cid


async def test_writes_and_reads_are_listed_newest_first(
    api: httpx.AsyncClient, vault: Vault, tenant: tuple[UUID, str]
) -> None:
    cid = marker("c")
    caller = await vault.services.keys.resolve(tenant[1])
    assert caller is not None
    await put(api, cid, "email", "a@example.com", headers={"X-Request-Id": "req-write-1"})
    assert (await api.get(f"/v1/profiles/{cid}")).status_code == 200
    assert (await api.get(f"/v1/profiles/{cid}/fields/email?purpose=support")).status_code == 200
    assert (await api.get(f"/v1/profiles/{cid}/fields/email/history")).status_code == 200
    items = await entries(api, cid)
    actions = [e["action"] for e in items]
    assert actions == ["history.read", "field.read", "profile.read", "field.write"]
    write = items[-1]
    assert write["actor"] == str(caller.key_id)
    assert write["target"] == "email"
    assert write["request_id"] == "req-write-1"
    assert write["subject_hash"] == subject_hash(caller.secret, cid)
    assert items[1]["purpose"] == "support"
    # Every answer echoes a request id; the entry records the one minted for the read.
    assert all(e["request_id"] for e in items)
    seqs = [e["seq"] for e in items]
    assert seqs == sorted(seqs, reverse=True)
    assert [e["prev_hash"] for e in items[:-1]] == [e["hash"] for e in items[1:]]


async def test_every_write_of_a_profile_leaves_its_action(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    cid, other = marker("c"), marker("o")
    assert (await api.post("/v1/profiles", json={"customer_id": cid})).status_code == 201
    await put(api, cid, "plan", "gold")
    assert (await api.delete(f"/v1/profiles/{cid}/fields/plan")).status_code == 204
    resp = await api.put(f"/v1/profiles/{cid}/consents/marketing", json={"granted": True})
    assert resp.status_code == 200
    resp = await api.post(
        f"/v1/profiles/{cid}/channel-identities",
        json={"channel": "sms", "channel_user_id": marker("+1")},
    )
    assert resp.status_code == 201
    resp = await api.patch(f"/v1/profiles/{cid}", json={"verification_level": "email_verified"})
    assert resp.status_code == 200
    asset = {
        "name": "passport",
        "asset_type": "document",
        "storage_provider": "s3",
        "storage_path": "b/k",
        "mime_type": "application/pdf",
        "size_bytes": 1,
        "checksum": "sha256:0",
    }
    resp = await api.post(f"/v1/profiles/{cid}/assets", json=asset)
    assert resp.status_code == 201, resp.text
    assert (await api.delete(f"/v1/assets/{resp.json()['id']}")).status_code == 204
    await put(api, other, "x", 1)
    resp = await api.post(f"/v1/profiles/{cid}/merge", json={"source_customer_id": other})
    assert resp.status_code == 200
    actions = [e["action"] for e in await entries(api, cid)][::-1]
    assert actions == [
        "profile.create",
        "field.write",
        "field.delete",
        "consent.put",
        "identity.link",
        "profile.patch",
        "asset.add",
        "asset.delete",
        "profile.merge",
    ]


async def test_a_refused_write_leaves_no_entry(api: httpx.AsyncClient) -> None:
    cid = marker("c")
    await put(api, cid, "plan", "gold")
    # If-Match from nowhere: 412, the write and its entry roll back together.
    resp = await api.put(
        f"/v1/profiles/{cid}/fields/plan",
        json={"value": "silver", "source": "user_provided"},
        headers={"If-Match": '"999999"'},
    )
    assert resp.status_code == 412
    # A source that does not exist: the write function refuses it inside the statement.
    resp = await api.put(
        f"/v1/profiles/{cid}/fields/plan",
        json={
            "value": "silver",
            "source": "user_provided",
            "source_item_id": str(uuid.uuid4()),
            "source_item_type": "profile_field",
        },
    )
    assert resp.status_code == 422
    assert [e["action"] for e in await entries(api, cid)] == ["field.write"]


async def test_read_entries_are_sealed_within_a_second_without_asking(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    cid = marker("c")
    await put(api, cid, "plan", "gold")
    assert (await api.get(f"/v1/profiles/{cid}")).status_code == 200
    caller_secret = await secret_of(vault, tenant_id)
    subject = subject_hash(caller_secret, cid)
    deadline = asyncio.get_running_loop().time() + 3
    actions: list[str] = []
    while asyncio.get_running_loop().time() < deadline:
        async with vault.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT action FROM audit_log WHERE tenant_id = %s AND subject_hash = %s"
                " ORDER BY seq",
                (tenant_id, subject),
            )
            actions = [r[0] for r in await cur.fetchall()]
        if actions == ["field.write", "profile.read"]:
            break
        await asyncio.sleep(0.1)
    assert actions == ["field.write", "profile.read"]


async def test_reads_can_be_left_unaudited(api: httpx.AsyncClient, vault: Vault) -> None:
    cid = marker("c")
    await put(api, cid, "plan", "gold")
    vault.services.audit.reads = False
    try:
        assert (await api.get(f"/v1/profiles/{cid}")).status_code == 200
        assert (await api.get(f"/v1/profiles/{cid}/fields/plan")).status_code == 200
        await put(api, cid, "plan", "silver")
    finally:
        vault.services.audit.reads = True
    assert [e["action"] for e in await entries(api, cid)] == ["field.write", "field.write"]


async def assert_refused(vault: Vault, tenant_id: UUID, *statements: str) -> None:
    """Each statement (`%s`: the tenant's id) is refused by the tables' guard triggers."""
    for statement in statements:
        async with vault.pool.connection() as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                params = (tenant_id,) if "%s" in statement else None
                await conn.execute(statement, params)


async def test_the_log_refuses_update_delete_and_truncate(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    await some_entries(api, vault, tenant_id)
    await assert_refused(
        vault,
        tenant_id,
        "UPDATE audit_log SET actor = 'x' WHERE tenant_id = %s",
        "DELETE FROM audit_log WHERE tenant_id = %s",
        "TRUNCATE audit_log",
    )
    assert await verify(vault, tenant_id) is None


async def test_verify_names_a_changed_entry(
    api: httpx.AsyncClient,
    vault: Vault,
    tenant_id: UUID,
    superuser: psycopg.AsyncConnection[Any],
) -> None:
    await some_entries(api, vault, tenant_id)
    assert await verify(vault, tenant_id) is None
    await superuser.execute(
        "UPDATE audit_log SET target = 'f9' WHERE tenant_id = %s AND seq = 3", (tenant_id,)
    )
    assert await verify(vault, tenant_id) == "entry 3 was changed (its hash does not match)"


async def test_verify_names_a_removed_entry(
    api: httpx.AsyncClient,
    vault: Vault,
    tenant_id: UUID,
    superuser: psycopg.AsyncConnection[Any],
) -> None:
    await some_entries(api, vault, tenant_id)
    await superuser.execute("DELETE FROM audit_log WHERE tenant_id = %s AND seq = 2", (tenant_id,))
    assert await verify(vault, tenant_id) == "entry 2 is missing (next is 3)"


async def test_verify_names_two_swapped_entries(
    api: httpx.AsyncClient,
    vault: Vault,
    tenant_id: UUID,
    superuser: psycopg.AsyncConnection[Any],
) -> None:
    await some_entries(api, vault, tenant_id)
    # Entries 2 and 3 trade places (their seqs swapped, through a free number).
    for old, new in ((2, 1_000_002), (3, 2), (1_000_002, 3)):
        await superuser.execute(
            "UPDATE audit_log SET seq = %s WHERE tenant_id = %s AND seq = %s",
            (new, tenant_id, old),
        )
    problem = await verify(vault, tenant_id)
    assert problem == "entry 2 does not follow entry 1 (removed or reordered)"


async def test_verify_from_the_command_line(
    api: httpx.AsyncClient,
    vault: Vault,
    tenant_id: UUID,
    superuser: psycopg.AsyncConnection[Any],
) -> None:
    await some_entries(api, vault, tenant_id)
    name = await tenant_name(vault, tenant_id)
    assert vault.settings.database_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCV_")}
    env["CCV_DATABASE_URL"] = vault.settings.database_url

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CCV, "audit", "verify", "--tenant", name],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = await asyncio.to_thread(run)
    assert done.returncode == 0, done.stderr
    assert f"{name}: 4 entries, chain intact" in done.stdout
    await superuser.execute(
        "UPDATE audit_log SET action = 'field.read' WHERE tenant_id = %s AND seq = 4",
        (tenant_id,),
    )
    done = await asyncio.to_thread(run)
    assert done.returncode == 1
    assert "entry 4 was changed" in done.stdout


async def test_entries_name_no_value_and_no_customer_and_survive_erasure(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    cid, value = marker("cust"), marker("secret-value")
    await put(api, cid, "email_note", value)
    await put(api, cid, "email_note", value + "-2")
    assert (await api.get(f"/v1/profiles/{cid}")).status_code == 200
    resp = await api.post(f"/v1/profiles/{cid}/erase", json={"reason": "GDPR art. 17 request #1"})
    assert resp.status_code == 200
    after = await entries(api, cid)
    # Read entries wait in memory up to a second: sealed after a write that followed them
    # (seq is the order of sealing; `at` the order of events).
    assert sorted(e["action"] for e in after) == [
        "field.write",
        "field.write",
        "profile.erase",
        "profile.read",
    ]
    async with vault.pool.connection() as conn:
        for table in ("audit_log", "audit_pending", "erasure_receipts"):
            cur = await conn.execute(
                f"SELECT count(*) FROM {table} t"  # noqa: S608 (table names are ours)
                " WHERE t::text LIKE %s OR t::text LIKE %s",
                (f"%{cid}%", f"%{value}%"),
            )
            assert (await cur.fetchone() or [1])[0] == 0, table
    assert await verify(vault, tenant_id) is None


async def test_tenants_see_only_their_own_entries(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    cid = marker("c")
    await put(api, cid, "plan", "gold")
    await put(other_api, cid, "plan", "silver")
    assert [e["action"] for e in await entries(other_api, cid)] == ["field.write"]
    assert [e["seq"] for e in await entries(other_api, cid)] == [1]
    assert len(await entries(api, cid)) == 1


async def test_pages_follow_signed_cursors(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    cid = marker("c")
    for i in range(5):
        await put(api, cid, f"f{i}", i)
    resp = await api.get(f"/v1/profiles/{cid}/audit", params={"limit": 2})
    first = resp.json()
    assert [e["target"] for e in first["items"]] == ["f4", "f3"]
    seen = [e["target"] for e in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (
            await api.get(f"/v1/profiles/{cid}/audit", params={"limit": 2, "cursor": cursor})
        ).json()
        seen += [e["target"] for e in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ["f4", "f3", "f2", "f1", "f0"]
    resp = await other_api.get(f"/v1/profiles/{cid}/audit", params={"cursor": first["next_cursor"]})
    assert resp.status_code == 422


async def test_the_export_carries_the_audit_entries(api: httpx.AsyncClient) -> None:
    cid = marker("c")
    await put(api, cid, "plan", "gold")
    resp = await api.get(f"/v1/profiles/{cid}/export")
    assert resp.status_code == 200
    audit = resp.json()["audit"]
    assert [e["action"] for e in audit] == ["field.write", "profile.export"]


async def tenant_actions(vault: Vault, tenant_id: UUID) -> list[tuple[str, str | None]]:
    """(action, target) of the tenant's whole log, in seq order."""
    await vault.services.audit.flush()
    await vault.services.audit.seal(tenant_id)
    async with vault.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT action, target FROM audit_log WHERE tenant_id = %s ORDER BY seq",
            (tenant_id,),
        )
        return [(a, t) for a, t in await cur.fetchall()]


async def test_schema_writes_are_audited_too(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    agent = "a1"
    definition = {"display_name": "Email", "value_type": "email"}
    assert (
        await api.put(f"/v1/agents/{agent}/field-definitions/email", json=definition)
    ).is_success
    assert (await api.delete(f"/v1/agents/{agent}/field-definitions/email")).status_code == 204
    # A second delete finds nothing: refused, and no entry.
    assert (await api.delete(f"/v1/agents/{agent}/field-definitions/email")).status_code == 404
    scenario = {"name": "Open", "steps": [{"step_id": "s1"}]}
    assert (await api.put(f"/v1/agents/{agent}/scenarios/open", json=scenario)).is_success
    resp = await api.put(
        f"/v1/agents/{agent}/scenarios/open/requirements/email",
        json={"required_level": "hard"},
        params={"step_id": "s1"},
    )
    assert resp.is_success, resp.text
    requirement_id = resp.json()["id"]
    resp = await api.post(
        f"/v1/agents/{agent}/requirements/{requirement_id}/review", json={"decision": "approve"}
    )
    assert resp.is_success, resp.text
    resp = await api.delete(
        f"/v1/agents/{agent}/scenarios/open/requirements/email", params={"step_id": "s1"}
    )
    assert resp.status_code == 204
    rule = {"name": "Big", "condition": "amount > 1000"}
    assert (await api.put(f"/v1/agents/{agent}/rules/r1", json=rule)).is_success
    assert (await api.delete(f"/v1/agents/{agent}/rules/r1")).status_code == 204
    assert (await api.delete(f"/v1/agents/{agent}/scenarios/open")).status_code == 204
    assert (await api.delete(f"/v1/agents/{agent}/scenarios/open")).status_code == 404
    assert await tenant_actions(vault, tenant_id) == [
        ("definition.put", "a1/email"),
        ("definition.delete", "a1/email"),
        ("scenario.put", "a1/open"),
        ("requirement.put", "a1/open/email@s1"),
        ("requirement.review", f"a1/{requirement_id}"),
        ("requirement.delete", "a1/open/email@s1"),
        ("rule.put", "a1/r1"),
        ("rule.delete", "a1/r1"),
        ("scenario.delete", "a1/open"),
    ]


async def test_lineage_context_and_as_of_reads_are_audited(
    api: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    cid = marker("c")
    written = await put(api, cid, "plan", "gold")
    assert (await api.get(f"/v1/lineage/{written['id']}")).status_code == 200
    resp = await api.get(f"/v1/profiles/{cid}/context", params={"agent_id": "a1"})
    assert resp.status_code == 200, resp.text
    resp = await api.get(f"/v1/profiles/{cid}", params={"as_of": written["collected_at"]})
    assert resp.status_code == 200, resp.text
    logged = await tenant_actions(vault, tenant_id)
    assert [a for a, _ in logged] == ["field.write", "lineage.read", "profile.read", "profile.read"]
    assert logged[1][1] == written["id"]
    assert logged[2][1] == "context/a1"
    assert (logged[3][1] or "").startswith("as_of/")


async def test_a_bulk_import_audits_each_field_it_writes(api: httpx.AsyncClient) -> None:
    cid, other = marker("c"), marker("o")
    lines = [
        {"customer_id": cid, "fields": {"plan": "gold", "seats": 3}},
        {"customer_id": other, "fields": {"plan": "silver"}},
    ]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    headers = {"Content-Type": "application/x-ndjson"}
    resp = await api.post("/v1/profiles/import", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert sorted((e["action"], e["target"]) for e in await entries(api, cid)) == [
        ("field.write", "plan"),
        ("field.write", "seats"),
    ]
    # The same file again changes nothing, and audits nothing.
    resp = await api.post("/v1/profiles/import", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert len(await entries(api, cid)) == 2
    assert [e["target"] for e in await entries(api, other)] == ["plan"]
