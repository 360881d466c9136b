"""Reads as of an instant (DESIGN §8 "Time"): `?as_of=T` on profile and field reads answers
what the same read would have answered at T, from what the vault holds now: around a
supersede, an expiry (T equal to `expires_at` included), a delete, an orphaning, consent
changes, a merge; 404 for a profile that did not exist at T, 422 for T in the future or
without an offset; never an ETag, never anything erased, never another tenant's."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import httpx

from api_support import ASSET, assert_problem
from ccvault.runtime import Vault

PROFILE = "/v1/profiles/c1"
ADMIN = {"Authorization": "Bearer test-admin-key"}


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def before(text: str) -> str:
    """The instant just before a timestamp the vault answered with."""
    return (instant(text) - timedelta(microseconds=1)).isoformat()


def field_body(value: Any, **extra: Any) -> dict[str, Any]:
    return {"value": value, "source": "user_provided", **extra}


async def put_field(
    api: httpx.AsyncClient, name: str, value: Any, cid: str = "c1", **extra: Any
) -> dict[str, Any]:
    resp = await api.put(f"/v1/profiles/{cid}/fields/{name}", json=field_body(value, **extra))
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def as_of(api: httpx.AsyncClient, at: str, path: str = PROFILE, **params: str) -> Any:
    resp = await api.get(path, params={"as_of": at, **params})
    assert resp.status_code == 200, resp.text
    assert "etag" not in resp.headers  # never a version of the profile
    return resp.json()


async def test_a_supersede_before_at_and_after(api: httpx.AsyncClient) -> None:
    v1 = await put_field(api, "email", "a@example.com")
    v2 = await put_field(api, "email", "b@example.com")

    then = await as_of(api, before(v2["collected_at"]))
    assert then["fields"]["email"]["value"] == "a@example.com"
    # Nothing from after T: v1 was not yet superseded then.
    assert then["fields"]["email"]["status"] == "active"
    assert then["fields"]["email"]["superseded_at"] is None
    assert then["fields"]["email"]["superseded_by_id"] is None
    assert then["field_status_summary"] == {
        "active": 1,
        "superseded": 0,
        "expired": 0,
        "orphaned": 0,
    }
    # At the supersede's own instant the new version is the one.
    at = await as_of(api, v2["collected_at"])
    assert at["fields"]["email"]["id"] == v2["id"]
    assert at["field_status_summary"]["superseded"] == 1
    assert at["field_status_summary"]["active"] == 1
    field_then = await as_of(api, v1["collected_at"], f"{PROFILE}/fields/email")
    assert field_then["id"] == v1["id"]
    field_now = await as_of(api, datetime.now(UTC).isoformat(), f"{PROFILE}/fields/email")
    assert field_now["id"] == v2["id"]
    # Before the first version the profile existed (the write created it) but held nothing.
    assert_problem(
        await api.get(f"{PROFILE}/fields/email", params={"as_of": before(v1["collected_at"])}),
        404,
    )


async def test_an_expiry_counts_from_expires_at_itself(api: httpx.AsyncClient) -> None:
    expires = (datetime.now(UTC) + timedelta(milliseconds=300)).isoformat()
    written = await put_field(api, "otp", "123456", expires_at=expires)
    await asyncio.sleep(0.4)
    expires_at = written["expires_at"]

    live = await as_of(api, before(expires_at))
    assert live["fields"]["otp"]["status"] == "active"
    assert live["field_status_summary"]["active"] == 1
    for at in (expires_at, datetime.now(UTC).isoformat()):  # T == expires_at is expired
        gone = await as_of(api, at)
        assert gone["fields"] == {}
        assert gone["field_status_summary"]["expired"] == 1
        resp = await api.get(f"{PROFILE}/fields/otp", params={"as_of": at})
        assert_problem(resp, 404)
    history = await as_of(api, expires_at, include="history")
    assert [v["status"] for v in history["field_history"]["otp"]] == ["expired"]


async def test_a_delete_before_and_after(api: httpx.AsyncClient) -> None:
    written = await put_field(api, "nickname", "Ada")
    before_delete = datetime.now(UTC).isoformat()
    resp = await api.delete(f"{PROFILE}/fields/nickname")
    assert resp.status_code == 204
    history = (await api.get(f"{PROFILE}/fields/nickname/history")).json()["items"]
    deleted_at = history[0]["deleted_at"]

    then = await as_of(api, before_delete)
    assert then["fields"]["nickname"]["id"] == written["id"]
    assert then["fields"]["nickname"]["deleted_at"] is None
    assert then["field_status_summary"]["active"] == 1
    for at in (deleted_at, datetime.now(UTC).isoformat()):
        after = await as_of(api, at)
        assert after["fields"] == {}
        assert after["field_status_summary"]["active"] == 0
        assert_problem(await api.get(f"{PROFILE}/fields/nickname", params={"as_of": at}), 404)
    # The history at T keeps the deleted version, as the current history does.
    kept = await as_of(api, deleted_at, include="history")
    assert kept["field_history"]["nickname"][0]["deleted_at"] == deleted_at


async def test_an_orphaning_before_and_after(api: httpx.AsyncClient) -> None:
    source = await put_field(api, "passport_no", "X123")
    derived = await put_field(
        api,
        "nationality",
        "DE",
        source_item_id=source["id"],
        source_item_type="profile_field",
    )
    before_delete = datetime.now(UTC).isoformat()
    assert (await api.delete(f"{PROFILE}/fields/passport_no")).status_code == 204
    now = datetime.now(UTC).isoformat()
    assert (await api.get(f"{PROFILE}/fields/nationality")).status_code == 404  # orphaned

    then = await as_of(api, before_delete)
    assert then["fields"]["nationality"]["id"] == derived["id"]
    assert then["fields"]["nationality"]["is_orphaned"] is False
    after = await as_of(api, now)
    assert after["fields"] == {}
    assert after["field_status_summary"] == {
        "active": 0,
        "superseded": 0,
        "expired": 0,
        "orphaned": 1,
    }
    history = await as_of(api, now, include="history")
    assert history["field_history"]["nationality"][0]["status"] == "orphaned"
    assert history["field_history"]["nationality"][0]["is_orphaned"] is True
    assert_problem(await api.get(f"{PROFILE}/fields/nationality", params={"as_of": now}), 404)


async def test_consents_granted_then_revoked(api: httpx.AsyncClient) -> None:
    url = f"{PROFILE}/consents/marketing"
    granted = (await api.put(url, json={"granted": True, "source_session_id": "s1"})).json()
    await asyncio.sleep(0.01)
    revoked = (await api.put(url, json={"granted": False, "source_session_id": "s2"})).json()

    assert (await as_of(api, before(granted["updated_at"])))["consents"] == []
    for at in (granted["updated_at"], before(revoked["updated_at"])):
        (consent,) = (await as_of(api, at))["consents"]
        assert consent["granted"] is True and consent["source_session_id"] == "s1"
        assert consent["revoked_at"] is None
    (consent,) = (await as_of(api, revoked["updated_at"]))["consents"]
    assert consent["granted"] is False and consent["revoked_at"] == revoked["revoked_at"]


async def test_a_purpose_read_needs_the_consent_granted_at_t(api: httpx.AsyncClient) -> None:
    definition = {"display_name": "Phone", "value_type": "string", "consent_type": "calls"}
    resp = await api.put("/v1/agents/bot/field-definitions/phone", json=definition)
    assert resp.status_code == 201, resp.text
    await put_field(api, "phone", "+4930123456", agent_id="bot")
    url = f"{PROFILE}/consents/calls"
    granted = (await api.put(url, json={"granted": True})).json()
    await asyncio.sleep(0.01)
    revoked = (await api.put(url, json={"granted": False})).json()

    field_url = f"{PROFILE}/fields/phone"
    while_granted = await as_of(api, before(revoked["updated_at"]), purpose="support")
    assert set(while_granted["fields"]) == {"phone"}
    assert while_granted["withheld_fields"] == []
    assert (await as_of(api, granted["updated_at"], field_url, purpose="support"))["value"]
    after = await as_of(api, revoked["updated_at"], purpose="support")
    assert after["fields"] == {}
    assert after["withheld_fields"] == [{"name": "phone", "reason": "consent"}]
    resp = await api.get(field_url, params={"as_of": revoked["updated_at"], "purpose": "x"})
    assert_problem(resp, 403)


async def test_the_target_as_of_before_a_merge_shows_only_its_own_facts(
    api: httpx.AsyncClient,
) -> None:
    own = await put_field(api, "email", "own@example.com", cid="target")
    await api.put("/v1/profiles/target/consents/sms", json={"granted": True})
    await put_field(api, "phone", "+4930999", cid="source")
    theirs = await put_field(api, "email", "newer@example.com", cid="source")
    identity = {"channel": "email", "channel_user_id": "src@example.com"}
    resp = await api.post("/v1/profiles/source/channel-identities", json=identity)
    assert resp.status_code == 201, resp.text
    await api.put("/v1/profiles/source/consents/marketing", json={"granted": True})
    await asyncio.sleep(0.01)
    before_merge = datetime.now(UTC).isoformat()
    merged = await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    assert merged.status_code == 200, merged.text
    after_merge = datetime.now(UTC).isoformat()

    then = await as_of(api, before_merge, "/v1/profiles/target")
    assert then["customer_id"] == "target"
    assert set(then["fields"]) == {"email"}
    assert then["fields"]["email"]["id"] == own["id"]
    assert then["fields"]["email"]["status"] == "active"
    assert then["channel_identities"] == []
    assert [c["consent_type"] for c in then["consents"]] == ["sms"]
    assert then["field_status_summary"]["active"] == 1
    assert then["field_status_summary"]["superseded"] == 0
    # The source's id named its own profile then, with its own facts.
    source_then = await as_of(api, before_merge, "/v1/profiles/source")
    assert source_then["customer_id"] == "source"
    assert set(source_then["fields"]) == {"email", "phone"}
    assert source_then["fields"]["email"]["id"] == theirs["id"]
    assert [i["channel_user_id"] for i in source_then["channel_identities"]] == ["src@example.com"]
    assert [c["consent_type"] for c in source_then["consents"]] == ["marketing"]
    # After the merge both ids name the merged profile, the newer email winning.
    for cid in ("target", "source"):
        now = await as_of(api, after_merge, f"/v1/profiles/{cid}")
        assert now["customer_id"] == "target"
        assert set(now["fields"]) == {"email", "phone"}
        assert now["fields"]["email"]["id"] == theirs["id"]
        assert [c["consent_type"] for c in now["consents"]] == ["marketing", "sms"]
        assert len(now["channel_identities"]) == 1
        assert now["field_status_summary"]["superseded"] == 1
    current = (await api.get("/v1/profiles/target")).json()
    assert {k: v for k, v in current.items() if k != "updated_at"} == {
        k: v for k, v in now.items() if k != "updated_at"
    }


async def test_a_chain_of_merges_is_followed_as_it_was_at_t(api: httpx.AsyncClient) -> None:
    await put_field(api, "a_only", 1, cid="a")
    await put_field(api, "b_only", 2, cid="b")
    await put_field(api, "c_only", 3, cid="c")
    assert (await api.post("/v1/profiles/b/merge", json={"source_customer_id": "a"})).is_success
    between = datetime.now(UTC).isoformat()
    assert (await api.post("/v1/profiles/c/merge", json={"source_customer_id": "b"})).is_success

    # Between the merges, a named b (a had been merged into it) and c was still alone.
    for cid in ("a", "b"):
        then = await as_of(api, between, f"/v1/profiles/{cid}")
        assert then["customer_id"] == "b"
        assert set(then["fields"]) == {"a_only", "b_only"}
    assert set((await as_of(api, between, "/v1/profiles/c"))["fields"]) == {"c_only"}
    now = await as_of(api, datetime.now(UTC).isoformat(), "/v1/profiles/a")
    assert now["customer_id"] == "c"
    assert set(now["fields"]) == {"a_only", "b_only", "c_only"}


async def test_assets_as_of(api: httpx.AsyncClient) -> None:
    resp = await api.post(f"{PROFILE}/assets", json=ASSET)
    assert resp.status_code == 201, resp.text
    first = resp.json()
    derived = await put_field(
        api, "doc_number", "P-1", source_item_id=first["id"], source_item_type="profile_asset"
    )
    resp = await api.post(f"{PROFILE}/assets", json=ASSET | {"storage_path": "b/2.pdf"})
    second = resp.json()

    then = await as_of(api, before(second["uploaded_at"]))
    assert [a["id"] for a in then["assets"]] == [first["id"]]
    assert then["assets"][0]["superseded_at"] is None
    assert then["assets"][0]["analysis_field_ids"] == [derived["id"]]
    now = await as_of(api, second["uploaded_at"])
    assert [a["id"] for a in now["assets"]] == [second["id"]]


async def test_a_profile_created_after_t_or_never_is_404(api: httpx.AsyncClient) -> None:
    early = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.01)
    created = await api.post("/v1/profiles", json={"customer_id": "late"})
    assert created.status_code == 201

    for path in ("/v1/profiles/late", "/v1/profiles/late/fields/x", "/v1/profiles/never"):
        assert_problem(await api.get(path, params={"as_of": early}), 404)
    assert (await as_of(api, created.json()["created_at"], "/v1/profiles/late"))["fields"] == {}


async def test_t_in_the_future_or_without_an_offset_is_422(api: httpx.AsyncClient) -> None:
    await put_field(api, "email", "a@example.com")
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    bad = [
        future,
        "9999-12-31T23:59:59-14:00",
        "2026-01-01T10:00:00",  # no offset
        "2026-01-01",
        "1700000000",
        "yesterday",
        "2026-02-30T10:00:00Z",
        "0001-01-01T00:00:00+14:00",  # before the first instant the vault knows
    ]
    for path in (PROFILE, f"{PROFILE}/fields/email"):
        for value in bad:
            problem = assert_problem(await api.get(path, params={"as_of": value}), 422)
            assert problem["errors"][0]["loc"] == ["query", "as_of"], value
    # Any offset names the same instant.
    in_tokyo = datetime.now(UTC).astimezone(timezone(timedelta(hours=9))).isoformat()
    assert (await as_of(api, in_tokyo))["fields"]["email"]["value"] == "a@example.com"


async def test_an_erased_profile_never_comes_back(api: httpx.AsyncClient) -> None:
    await put_field(api, "email", "gone@example.com")
    await api.put(f"{PROFILE}/consents/marketing", json={"granted": True})
    then = datetime.now(UTC).isoformat()
    assert (await api.post(f"{PROFILE}/erase")).status_code == 200

    assert_problem(await api.get(PROFILE, params={"as_of": then}), 404)
    assert_problem(await api.get(f"{PROFILE}/fields/email", params={"as_of": then}), 404)
    # A new profile under the same id starts after the erasure: T still names nothing.
    await put_field(api, "other", "new")
    assert_problem(await api.get(PROFILE, params={"as_of": then}), 404)
    fresh = await as_of(api, datetime.now(UTC).isoformat())
    assert set(fresh["fields"]) == {"other"} and fresh["consents"] == []


async def test_another_tenant_never_sees_the_profile_as_of(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    await put_field(api, "email", "mine@example.com")
    now = datetime.now(UTC).isoformat()
    assert_problem(await other_api.get(PROFILE, params={"as_of": now}), 404)
    await put_field(other_api, "email", "theirs@example.com")
    theirs = await as_of(other_api, datetime.now(UTC).isoformat())
    assert theirs["fields"]["email"]["value"] == "theirs@example.com"
    mine = await as_of(api, datetime.now(UTC).isoformat())
    assert mine["fields"]["email"]["value"] == "mine@example.com"


async def test_the_parameter_is_declared_in_the_openapi_document(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    for path in ("/v1/profiles/{customer_id}", "/v1/profiles/{customer_id}/fields/{name}"):
        (param,) = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "as_of"]
        assert param["in"] == "query" and "RFC 3339" in param["description"]


async def test_the_orphan_sweep_dates_what_it_orphans(
    api: httpx.AsyncClient, http: httpx.AsyncClient, vault: Vault, tenant_id: UUID
) -> None:
    source = await put_field(api, "passport_no", "X123")
    derived = await put_field(
        api, "nationality", "DE", source_item_id=source["id"], source_item_type="profile_field"
    )
    # Deleted behind the API's back: only the sweep orphans the derived field.
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET deleted_at = now() WHERE id = %s", (source["id"],)
        )
    before_sweep = datetime.now(UTC).isoformat()
    resp = await http.post(
        "/admin/profiles/detect-orphans", params={"tenant_id": str(tenant_id)}, headers=ADMIN
    )
    assert resp.status_code == 200 and resp.json()["updated"] == 1, resp.text

    assert (await as_of(api, before_sweep))["fields"]["nationality"]["id"] == derived["id"]
    after = await as_of(api, datetime.now(UTC).isoformat())
    assert after["fields"] == {} and after["field_status_summary"]["orphaned"] == 1


async def test_orphaned_or_expired_is_what_reads_showed_then(api: httpx.AsyncClient) -> None:
    one = await put_field(api, "source_one", "s1")
    two = await put_field(api, "source_two", "s2")
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    # Orphaned before it expires: orphaned from then on, expiry or not.
    await put_field(
        api,
        "first",
        "f",
        expires_at=soon,
        source_item_id=one["id"],
        source_item_type="profile_field",
    )
    # Already past expires_at when its source goes, before any expiry sweep: reads showed
    # it expired, then orphaned (a stored orphaned status is never shown as expired).
    late = await put_field(
        api,
        "second",
        "s",
        expires_at="2020-01-01T00:00:00Z",
        source_item_id=two["id"],
        source_item_type="profile_field",
    )
    assert (await api.delete(f"{PROFILE}/fields/source_one")).status_code == 204
    before_second = datetime.now(UTC).isoformat()
    assert (await api.delete(f"{PROFILE}/fields/source_two")).status_code == 204
    await asyncio.sleep(1.1)
    now = datetime.now(UTC).isoformat()
    # (An expiry sweep running in between would have made it expired for good: then that.)
    current = (await api.get(f"{PROFILE}/fields/second/history")).json()["items"][0]["status"]

    history = (await as_of(api, now, include="history"))["field_history"]
    assert history["first"][0]["status"] == "orphaned"
    assert history["second"][0]["status"] == current
    earlier = (await as_of(api, before_second, include="history"))["field_history"]
    assert earlier["second"][0]["status"] == "expired"
    assert earlier["second"][0]["id"] == late["id"]


async def test_an_import_keeps_its_consent_answers(api: httpx.AsyncClient) -> None:
    line = {"customer_id": "c1", "fields": {"city": "Berlin"}, "consents": {"calls": True}}
    resp = await api.post(
        "/v1/profiles/import",
        content=json.dumps(line).encode() + b"\n",
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert resp.status_code == 200 and resp.json()["errors"] == [], resp.text
    imported = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.01)
    await api.put(f"{PROFILE}/consents/calls", json={"granted": False})

    (consent,) = (await as_of(api, imported))["consents"]
    assert consent["consent_type"] == "calls" and consent["granted"] is True
    (consent,) = (await as_of(api, datetime.now(UTC).isoformat()))["consents"]
    assert consent["granted"] is False


async def test_the_export_lists_every_consent_answer(api: httpx.AsyncClient) -> None:
    await api.put("/v1/profiles/other/consents/calls", json={"granted": True})
    await api.put(f"{PROFILE}/consents/calls", json={"granted": True, "source_session_id": "s1"})
    await api.put(f"{PROFILE}/consents/calls", json={"granted": False})
    merged = await api.post(f"{PROFILE}/merge", json={"source_customer_id": "other"})
    assert merged.status_code == 200, merged.text

    exported = (await api.get(f"{PROFILE}/export")).json()
    answers = exported["consent_history"]
    # Its own two answers, the merged profile's one, and none carried over by the merge
    # (the target's own answer was the newer one).
    assert [a["granted"] for a in answers] == [True, True, False]
    assert [a["source_session_id"] for a in answers][1] == "s1"
    assert all(a["recorded_at"] and a["consent_type"] == "calls" for a in answers)
    assert [c["granted"] for c in exported["consents"]] == [False]
