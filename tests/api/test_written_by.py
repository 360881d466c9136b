"""Who wrote it (DESIGN §8): every field and asset version carries `written_by: {key_id,
agent_id}`, the same on every read path (write answer, field, history, profile cold and
cached, lineage, assets), and a version keeps it through supersedes and merges."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from api_support import ASSET, assert_problem
from ccvault.runtime import Vault
from ccvault.storage.profiles import ProfileStore
from integration.helpers import new_field

FIELD = {"value": "a@example.com", "source": "user_provided"}


@pytest.fixture
async def key_id(vault: Vault, tenant: tuple[uuid.UUID, str]) -> str:
    """The id of the test tenant's key (the one `api` presents)."""
    caller = await vault.tenants.caller_for_key(tenant[1])
    assert caller is not None and caller.key_id is not None
    return str(caller.key_id)


@pytest.fixture
async def second_key(
    http: httpx.AsyncClient, vault: Vault, tenant: tuple[uuid.UUID, str]
) -> tuple[str, httpx.AsyncClient]:
    """Another key of the same tenant: (its id, a client presenting it)."""
    issued = await vault.tenants.create_key(tenant[0], "second")
    client = httpx.AsyncClient(
        transport=http._transport,
        base_url="http://vault",
        headers={"Authorization": f"Bearer {issued.api_key}"},
    )
    return str(issued.key_id), client


def by(key_id: str | None, agent_id: str | None = None) -> dict[str, Any]:
    """The written_by a version should carry."""
    return {"key_id": key_id, "agent_id": agent_id}


async def test_a_field_version_names_the_key_and_agent_that_wrote_it_on_every_read(
    api: httpx.AsyncClient, key_id: str
) -> None:
    written = await api.put(
        "/v1/profiles/c1/fields/email", json={**FIELD, "agent_id": "support-bot"}
    )
    assert written.status_code == 201, written.text
    assert written.json()["written_by"] == by(key_id, "support-bot")
    field_id = written.json()["id"]
    derived = await api.put(
        "/v1/profiles/c1/fields/domain",
        json={
            "value": "example.com",
            "source": "system_inferred",
            "source_item_id": field_id,
            "source_item_type": "profile_field",
        },
    )
    assert derived.status_code == 201, derived.text

    field = (await api.get("/v1/profiles/c1/fields/email")).json()
    history = (await api.get("/v1/profiles/c1/fields/email/history")).json()["items"]
    cold = (await api.get("/v1/profiles/c1")).json()
    warm = (await api.get("/v1/profiles/c1")).json()
    with_history = (await api.get("/v1/profiles/c1", params={"include": "history"})).json()
    lineage = (await api.get(f"/v1/lineage/{field_id}", params={"direction": "descendants"})).json()
    for doc in (
        field,
        history[0],
        cold["fields"]["email"],
        warm["fields"]["email"],
        with_history["fields"]["email"],
        with_history["field_history"]["email"][0],
        lineage["item"],
    ):
        assert doc["written_by"] == by(key_id, "support-bot")
    assert cold["fields"]["domain"]["written_by"] == by(key_id)


async def test_without_an_agent_id_the_agent_is_null(api: httpx.AsyncClient, key_id: str) -> None:
    written = await api.put("/v1/profiles/c1/fields/email", json=FIELD)
    assert written.json()["written_by"] == by(key_id)
    assert (await api.get("/v1/profiles/c1")).json()["fields"]["email"]["written_by"] == by(key_id)


async def test_each_version_keeps_its_own_writer_through_supersedes(
    api: httpx.AsyncClient, key_id: str, second_key: tuple[str, httpx.AsyncClient]
) -> None:
    other_id, other = second_key
    await api.put("/v1/profiles/c1/fields/email", json={**FIELD, "agent_id": "a1"})
    await other.put("/v1/profiles/c1/fields/email", json={**FIELD, "value": "b@example.com"})
    await api.put(
        "/v1/profiles/c1/fields/email",
        json={**FIELD, "value": "c@example.com", "agent_id": "a2"},
    )

    history = (await api.get("/v1/profiles/c1/fields/email/history")).json()["items"]

    assert [(v["value"], v["status"], v["written_by"]) for v in history] == [
        ("c@example.com", "active", by(key_id, "a2")),
        ("b@example.com", "superseded", by(other_id)),
        ("a@example.com", "superseded", by(key_id, "a1")),
    ]
    assert key_id != other_id


async def test_an_asset_version_names_its_key_and_agent(
    api: httpx.AsyncClient, key_id: str, second_key: tuple[str, httpx.AsyncClient]
) -> None:
    other_id, other = second_key
    first = await api.post("/v1/profiles/c1/assets", json={**ASSET, "agent_id": "kyc-bot"})
    assert first.status_code == 201, first.text
    assert first.json()["written_by"] == by(key_id, "kyc-bot")
    second = await other.post("/v1/profiles/c1/assets", json=ASSET)
    assert second.json()["written_by"] == by(other_id)

    got = (await api.get(f"/v1/assets/{first.json()['id']}")).json()
    assert got["written_by"] == by(key_id, "kyc-bot")
    versions = (await api.get("/v1/profiles/c1/assets", params={"include": "history"})).json()
    assert {a["id"]: a["written_by"] for a in versions["items"]} == {
        first.json()["id"]: by(key_id, "kyc-bot"),
        second.json()["id"]: by(other_id),
    }
    profile = (await api.get("/v1/profiles/c1")).json()
    assert profile["assets"][0]["written_by"] == by(other_id)
    lineage = (await api.get(f"/v1/lineage/{first.json()['id']}")).json()
    assert lineage["item"]["written_by"] == by(key_id, "kyc-bot")


@pytest.mark.parametrize("agent_id", ["", "has space", "x" * 129, 7])
async def test_an_asset_agent_id_follows_the_caller_id_pattern(
    api: httpx.AsyncClient, agent_id: Any
) -> None:
    resp = await api.post("/v1/profiles/c1/assets", json={**ASSET, "agent_id": agent_id})
    body = assert_problem(resp, 422)
    assert body["errors"][0]["loc"] == ["body", "agent_id"]


async def test_a_merge_moves_versions_with_their_writers(
    api: httpx.AsyncClient, key_id: str, second_key: tuple[str, httpx.AsyncClient]
) -> None:
    other_id, other = second_key
    await api.put("/v1/profiles/target/fields/email", json={**FIELD, "agent_id": "a1"})
    await other.put("/v1/profiles/source/fields/phone", json={**FIELD, "value": "+33600000001"})
    merged = await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    assert merged.status_code == 200, merged.text
    fields = merged.json()["fields"]
    assert fields["email"]["written_by"] == by(key_id, "a1")
    assert fields["phone"]["written_by"] == by(other_id), "the writer, not the merger"


async def test_a_write_made_without_a_key_names_no_key(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    """Library calls (and jobs, imports) write with no API key: key_id is null."""
    store = ProfileStore(vault.pool, vault.cache)
    field = await store.save_field(tenant_id, "c1", "email", new_field("a@example.com"))
    assert field.written_by.key_id is None and field.written_by.agent_id is None
    agent = await store.save_field(tenant_id, "c1", "phone", new_field("x", agent_id="importer"))
    assert agent.written_by.agent_id == "importer"
    read = (await api.get("/v1/profiles/c1")).json()["fields"]
    assert read["email"]["written_by"] == by(None)
    assert read["phone"]["written_by"] == by(None, "importer")
