"""Profiles over HTTP: create, read, channel identities, consents, merge and aliases."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from api_support import ASSET, assert_problem

PROFILE_KEYS = {
    "customer_id",
    "created_at",
    "updated_at",
    "verification_level",
    "channel_identities",
    "consents",
    "fields",
    "assets",
    "field_status_summary",
}
IDENTITY_KEYS = {"channel", "channel_user_id", "verified", "primary", "created_at"}
CONSENT_KEYS = {
    "consent_type",
    "granted",
    "granted_at",
    "revoked_at",
    "source_session_id",
    "updated_at",
}
SUMMARY_KEYS = {"active", "superseded", "expired", "orphaned"}
CALLER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$")


async def put_field(api: httpx.AsyncClient, cid: str, name: str, value: Any) -> dict[str, Any]:
    """Write a field version and return it."""
    resp = await api.put(
        f"/v1/profiles/{cid}/fields/{name}", json={"value": value, "source": "user_provided"}
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def snapshot(api: httpx.AsyncClient, cid: str) -> dict[str, Any]:
    """The whole profile with history, to compare before and after a refused request."""
    resp = await api.get(f"/v1/profiles/{cid}", params={"include": "history"})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


# -- create ---------------------------------------------------------------------------


async def test_create_profile_answers_201_with_the_new_profile(api: httpx.AsyncClient) -> None:
    resp = await api.post("/v1/profiles", json={"customer_id": "cust-1"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body.keys() == PROFILE_KEYS
    assert body["customer_id"] == "cust-1"
    assert body["fields"] == {}
    assert body["assets"] == []
    assert body["channel_identities"] == []
    assert body["consents"] == []
    assert body["field_status_summary"] == dict.fromkeys(SUMMARY_KEYS, 0)
    assert (await api.get("/v1/profiles/cust-1")).status_code == 200


async def test_create_profile_without_customer_id_mints_one(api: httpx.AsyncClient) -> None:
    first = await api.post("/v1/profiles", json={})
    second = await api.post("/v1/profiles", json={})
    assert first.status_code == second.status_code == 201, first.text
    minted = first.json()["customer_id"]
    assert CALLER_ID.match(minted)
    assert minted != second.json()["customer_id"]
    got = await api.get(f"/v1/profiles/{minted}")
    assert got.status_code == 200
    assert got.json()["customer_id"] == minted


async def test_create_profile_links_the_given_identities(api: httpx.AsyncClient) -> None:
    resp = await api.post(
        "/v1/profiles",
        json={
            "customer_id": "cust-1",
            "channel_identities": [
                {"channel": "whatsapp", "channel_user_id": "+33600000001", "primary": True},
                {"channel": "email", "channel_user_id": "a@example.com", "verified": True},
            ],
        },
    )
    assert resp.status_code == 201, resp.text
    identities = {i["channel"]: i for i in resp.json()["channel_identities"]}
    assert identities.keys() == {"whatsapp", "email"}
    assert all(i.keys() == IDENTITY_KEYS for i in identities.values())
    assert identities["whatsapp"]["primary"] is True
    assert identities["whatsapp"]["verified"] is False
    assert identities["email"]["verified"] is True
    assert identities["email"]["primary"] is False
    found = await api.get("/v1/profiles/by-channel/email/a@example.com")
    assert found.status_code == 200
    assert found.json()["customer_id"] == "cust-1"


async def test_create_existing_profile_answers_409_and_keeps_it(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/profiles", json={"customer_id": "cust-1"})).status_code == 201
    await put_field(api, "cust-1", "email", "a@example.com")
    before = await snapshot(api, "cust-1")
    again = await api.post(
        "/v1/profiles",
        json={
            "customer_id": "cust-1",
            "channel_identities": [{"channel": "sms", "channel_user_id": "+33600000002"}],
        },
    )
    assert_problem(again, 409)
    assert await snapshot(api, "cust-1") == before
    assert (await api.get("/v1/profiles/by-channel/sms/+33600000002")).status_code == 404


async def test_create_profile_with_identity_of_another_profile_answers_409_and_creates_nothing(
    api: httpx.AsyncClient,
) -> None:
    identity = {"channel": "whatsapp", "channel_user_id": "+33600000001"}
    owner = await api.post(
        "/v1/profiles", json={"customer_id": "owner", "channel_identities": [identity]}
    )
    assert owner.status_code == 201
    before = await snapshot(api, "owner")
    other = {"channel": "email", "channel_user_id": "b@example.com"}
    resp = await api.post(
        "/v1/profiles",
        json={"customer_id": "newcomer", "channel_identities": [other, identity]},
    )
    assert_problem(resp, 409)
    assert_problem(await api.get("/v1/profiles/newcomer"), 404)
    assert_problem(await api.get("/v1/profiles/by-channel/email/b@example.com"), 404)
    assert await snapshot(api, "owner") == before


# -- read -----------------------------------------------------------------------------


async def test_get_profile_has_exactly_the_contract_keys(api: httpx.AsyncClient) -> None:
    await put_field(api, "cust-1", "email", "a@example.com")
    await put_field(api, "cust-1", "email", "b@example.com")
    await put_field(api, "cust-1", "first_name", "Ada")
    assert (await api.post("/v1/profiles/cust-1/assets", json=ASSET)).status_code == 201
    consent = await api.put("/v1/profiles/cust-1/consents/marketing", json={"granted": True})
    assert consent.status_code == 200
    link = await api.post(
        "/v1/profiles/cust-1/channel-identities",
        json={"channel": "sms", "channel_user_id": "+33600000003"},
    )
    assert link.status_code == 201

    resp = await api.get("/v1/profiles/cust-1")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body.keys() == PROFILE_KEYS
    assert "field_history" not in body
    assert body["customer_id"] == "cust-1"
    assert isinstance(body["verification_level"], str)
    assert body["fields"].keys() == {"email", "first_name"}
    assert body["fields"]["email"]["value"] == "b@example.com"
    assert body["fields"]["email"]["status"] == "active"
    assert [a["name"] for a in body["assets"]] == ["passport"]
    assert [c.keys() for c in body["consents"]] == [CONSENT_KEYS]
    assert [i.keys() for i in body["channel_identities"]] == [IDENTITY_KEYS]
    assert body["field_status_summary"] == {
        "active": 2,
        "superseded": 1,
        "expired": 0,
        "orphaned": 0,
    }


async def test_include_history_adds_every_version_newest_first(api: httpx.AsyncClient) -> None:
    first = await put_field(api, "cust-1", "email", "a@example.com")
    second = await put_field(api, "cust-1", "email", "b@example.com")
    body = (await api.get("/v1/profiles/cust-1", params={"include": "history"})).json()
    assert body.keys() == PROFILE_KEYS | {"field_history"}
    history = body["field_history"]["email"]
    assert [v["id"] for v in history] == [second["id"], first["id"]]
    assert [v["status"] for v in history] == ["active", "superseded"]
    assert history[1]["superseded_by_id"] == second["id"]


async def test_get_unknown_profile_answers_404(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/v1/profiles/nobody"), 404)


async def test_by_channel_answers_the_linked_profile(api: httpx.AsyncClient) -> None:
    await put_field(api, "cust-1", "email", "a@example.com")
    link = await api.post(
        "/v1/profiles/cust-1/channel-identities",
        json={"channel": "whatsapp", "channel_user_id": "+33600000001"},
    )
    assert link.status_code == 201
    resp = await api.get("/v1/profiles/by-channel/whatsapp/+33600000001")
    assert resp.status_code == 200
    body = resp.json()
    assert body.keys() == PROFILE_KEYS
    assert body["customer_id"] == "cust-1"
    assert body["fields"]["email"]["value"] == "a@example.com"


async def test_by_channel_of_unknown_identity_answers_404(api: httpx.AsyncClient) -> None:
    await api.post(
        "/v1/profiles",
        json={
            "customer_id": "cust-1",
            "channel_identities": [{"channel": "whatsapp", "channel_user_id": "+1"}],
        },
    )
    assert_problem(await api.get("/v1/profiles/by-channel/whatsapp/+2"), 404)
    assert_problem(await api.get("/v1/profiles/by-channel/sms/+1"), 404)


# -- channel identities ---------------------------------------------------------------


async def test_link_identity_answers_201_with_the_identity(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/profiles", json={"customer_id": "cust-1"})).status_code == 201
    resp = await api.post(
        "/v1/profiles/cust-1/channel-identities",
        json={"channel": "sms", "channel_user_id": "+33600000001", "verified": True},
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body.keys() == IDENTITY_KEYS
    assert body["channel"] == "sms"
    assert body["channel_user_id"] == "+33600000001"
    assert body["verified"] is True
    assert body["primary"] is False
    profile = (await api.get("/v1/profiles/cust-1")).json()
    assert profile["channel_identities"] == [body]


async def test_relinking_identity_to_its_own_profile_is_a_200_no_op(
    api: httpx.AsyncClient,
) -> None:
    identity = {"channel": "sms", "channel_user_id": "+33600000001"}
    first = await api.post("/v1/profiles/cust-1/channel-identities", json=identity)
    assert first.status_code == 201
    before = await snapshot(api, "cust-1")
    again = await api.post("/v1/profiles/cust-1/channel-identities", json=identity)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    after = await snapshot(api, "cust-1")
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }


async def test_relinking_identity_to_its_own_profile_leaves_updated_at(
    api: httpx.AsyncClient,
) -> None:
    identity = {"channel": "sms", "channel_user_id": "+33600000001"}
    assert (await api.post("/v1/profiles/cust-1/channel-identities", json=identity)).is_success
    before = await snapshot(api, "cust-1")
    assert (await api.post("/v1/profiles/cust-1/channel-identities", json=identity)).is_success
    assert (await snapshot(api, "cust-1"))["updated_at"] == before["updated_at"]


async def test_relinking_with_other_flags_changes_nothing(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/v1/profiles",
        json={
            "customer_id": "cust-1",
            "channel_identities": [
                {"channel": "sms", "channel_user_id": "+1", "primary": True},
                {"channel": "email", "channel_user_id": "a@example.com"},
            ],
        },
    )
    assert created.status_code == 201
    before = await snapshot(api, "cust-1")
    again = await api.post(
        "/v1/profiles/cust-1/channel-identities",
        json={
            "channel": "email",
            "channel_user_id": "a@example.com",
            "primary": True,
            "verified": True,
        },
    )
    assert again.status_code == 200, again.text
    after = await snapshot(api, "cust-1")
    assert after["channel_identities"] == before["channel_identities"]
    primaries = [i["channel"] for i in after["channel_identities"] if i["primary"]]
    assert primaries == ["sms"]


async def test_linking_identity_of_another_profile_answers_409_and_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    identity = {"channel": "sms", "channel_user_id": "+33600000001"}
    owner = await api.post("/v1/profiles/owner/channel-identities", json=identity)
    assert owner.status_code == 201
    primary = {"channel": "email", "channel_user_id": "x@example.com", "primary": True}
    other = await api.post("/v1/profiles/other/channel-identities", json=primary)
    assert other.status_code == 201
    owner_before = await snapshot(api, "owner")
    other_before = await snapshot(api, "other")
    resp = await api.post(
        "/v1/profiles/other/channel-identities", json={**identity, "primary": True}
    )
    assert_problem(resp, 409)
    assert await snapshot(api, "owner") == owner_before
    assert await snapshot(api, "other") == other_before
    found = await api.get("/v1/profiles/by-channel/sms/+33600000001")
    assert found.json()["customer_id"] == "owner"


async def test_refused_link_does_not_create_the_profile(api: httpx.AsyncClient) -> None:
    identity = {"channel": "sms", "channel_user_id": "+33600000001"}
    owner = await api.post("/v1/profiles/owner/channel-identities", json=identity)
    assert owner.status_code == 201
    assert_problem(await api.post("/v1/profiles/ghost/channel-identities", json=identity), 409)
    assert_problem(await api.get("/v1/profiles/ghost"), 404)


# -- consents ---------------------------------------------------------------------------


async def test_put_consent_answers_200_with_the_consent(api: httpx.AsyncClient) -> None:
    resp = await api.put(
        "/v1/profiles/cust-1/consents/marketing",
        json={"granted": True, "source_session_id": "sess-1"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body.keys() == CONSENT_KEYS
    assert body["consent_type"] == "marketing"
    assert body["granted"] is True
    assert body["granted_at"] is not None
    assert body["revoked_at"] is None
    assert body["source_session_id"] == "sess-1"
    assert body["updated_at"] is not None
    profile = (await api.get("/v1/profiles/cust-1")).json()
    assert profile["consents"] == [body]


async def test_revoking_consent_sets_revoked_at(api: httpx.AsyncClient) -> None:
    granted = await api.put("/v1/profiles/cust-1/consents/marketing", json={"granted": True})
    revoked = await api.put("/v1/profiles/cust-1/consents/marketing", json={"granted": False})
    assert revoked.status_code == 200
    body = revoked.json()
    assert body["granted"] is False
    assert body["revoked_at"] is not None
    assert body["granted_at"] == granted.json()["granted_at"]
    assert body["updated_at"] >= granted.json()["updated_at"]
    profile = (await api.get("/v1/profiles/cust-1")).json()
    assert profile["consents"] == [body]


async def test_granting_again_clears_revoked_at(api: httpx.AsyncClient) -> None:
    await api.put("/v1/profiles/cust-1/consents/marketing", json={"granted": True})
    await api.put("/v1/profiles/cust-1/consents/marketing", json={"granted": False})
    again = await api.put("/v1/profiles/cust-1/consents/marketing", json={"granted": True})
    assert again.status_code == 200
    assert again.json()["granted"] is True
    assert again.json()["revoked_at"] is None
    assert again.json()["granted_at"] is not None


async def test_first_answer_refusing_consent_has_no_granted_at(api: httpx.AsyncClient) -> None:
    resp = await api.put("/v1/profiles/cust-1/consents/calls", json={"granted": False})
    assert resp.status_code == 200
    assert resp.json()["granted"] is False
    assert resp.json()["granted_at"] is None
    assert resp.json()["revoked_at"] is not None


# -- implicit profiles ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PUT", "fields/email", {"value": "a@example.com", "source": "user_provided"}),
        ("POST", "assets", ASSET),
        ("PUT", "consents/marketing", {"granted": True}),
        ("POST", "channel-identities", {"channel": "sms", "channel_user_id": "+1"}),
    ],
)
async def test_writes_create_the_profile_when_absent(
    api: httpx.AsyncClient, method: str, suffix: str, body: dict[str, Any]
) -> None:
    assert_problem(await api.get("/v1/profiles/fresh"), 404)
    resp = await api.request(method, f"/v1/profiles/fresh/{suffix}", json=body)
    assert resp.status_code in (200, 201), resp.text
    got = await api.get("/v1/profiles/fresh")
    assert got.status_code == 200
    assert got.json()["customer_id"] == "fresh"
    created = await api.post("/v1/profiles", json={"customer_id": "fresh"})
    assert_problem(created, 409)


# -- merge ------------------------------------------------------------------------------


async def test_merge_answers_200_with_the_target_holding_the_sources_items(
    api: httpx.AsyncClient,
) -> None:
    email = await put_field(api, "target", "email", "a@example.com")
    phone = await put_field(api, "source", "phone", "+33600000001")
    asset = (await api.post("/v1/profiles/source/assets", json=ASSET)).json()
    await api.post(
        "/v1/profiles/source/channel-identities", json={"channel": "sms", "channel_user_id": "+9"}
    )
    await api.put("/v1/profiles/source/consents/marketing", json={"granted": True})

    resp = await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body.keys() == PROFILE_KEYS
    assert body["customer_id"] == "target"
    assert body["fields"]["email"]["id"] == email["id"]
    assert body["fields"]["phone"]["id"] == phone["id"]
    assert [a["id"] for a in body["assets"]] == [asset["id"]]
    assert [(i["channel"], i["channel_user_id"]) for i in body["channel_identities"]] == [
        ("sms", "+9")
    ]
    assert [c["consent_type"] for c in body["consents"]] == ["marketing"]
    assert (await api.get("/v1/profiles/target")).json() == body
    by_channel = await api.get("/v1/profiles/by-channel/sms/+9")
    assert by_channel.json()["customer_id"] == "target"


async def test_merge_keeps_the_newer_value_of_a_shared_name(api: httpx.AsyncClient) -> None:
    older = await put_field(api, "target", "email", "old@example.com")
    newer = await put_field(api, "source", "email", "new@example.com")
    resp = await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["fields"]["email"]["id"] == newer["id"]
    history = (await api.get("/v1/profiles/target/fields/email/history")).json()["items"]
    by_id = {v["id"]: v for v in history}
    assert by_id.keys() == {older["id"], newer["id"]}
    assert by_id[older["id"]]["status"] == "superseded"
    assert by_id[older["id"]]["superseded_by_id"] == newer["id"]
    assert by_id[newer["id"]]["status"] == "active"


async def test_merge_keeps_the_newer_consent_answer(api: httpx.AsyncClient) -> None:
    await api.put("/v1/profiles/source/consents/marketing", json={"granted": True})
    await api.put("/v1/profiles/target/consents/marketing", json={"granted": False})
    resp = await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    assert resp.status_code == 200
    [consent] = resp.json()["consents"]
    assert consent["granted"] is False


async def test_merge_into_itself_answers_422_and_changes_nothing(api: httpx.AsyncClient) -> None:
    await put_field(api, "cust-1", "email", "a@example.com")
    before = await snapshot(api, "cust-1")
    resp = await api.post("/v1/profiles/cust-1/merge", json={"source_customer_id": "cust-1"})
    assert_problem(resp, 422)
    assert await snapshot(api, "cust-1") == before


async def test_merge_of_an_alias_into_its_target_answers_422(api: httpx.AsyncClient) -> None:
    await put_field(api, "target", "email", "a@example.com")
    await put_field(api, "source", "phone", "+33600000001")
    merged = await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    assert merged.status_code == 200
    before = await snapshot(api, "target")
    again = await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    assert_problem(again, 422)
    assert await snapshot(api, "target") == before


@pytest.mark.parametrize(("target", "source"), [("target", "ghost"), ("ghost", "source")])
async def test_merge_naming_an_unknown_profile_answers_404_and_changes_nothing(
    api: httpx.AsyncClient, target: str, source: str
) -> None:
    await put_field(api, "target", "email", "a@example.com")
    await put_field(api, "source", "phone", "+33600000001")
    before = {cid: await snapshot(api, cid) for cid in ("target", "source")}
    resp = await api.post(f"/v1/profiles/{target}/merge", json={"source_customer_id": source})
    assert_problem(resp, 404)
    assert {cid: await snapshot(api, cid) for cid in ("target", "source")} == before
    assert_problem(await api.get("/v1/profiles/ghost"), 404)


async def test_merged_away_id_reads_as_the_target(api: httpx.AsyncClient) -> None:
    await put_field(api, "target", "email", "a@example.com")
    phone = await put_field(api, "source", "phone", "+33600000001")
    await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})

    via_alias = await api.get("/v1/profiles/source")
    assert via_alias.status_code == 200
    assert via_alias.json()["customer_id"] == "target"
    assert via_alias.json() == (await api.get("/v1/profiles/target")).json()
    field = await api.get("/v1/profiles/source/fields/phone")
    assert field.status_code == 200
    assert field.json()["id"] == phone["id"]
    history = await api.get("/v1/profiles/source/fields/email/history")
    assert history.status_code == 200
    assert len(history.json()["items"]) == 1
    assets = await api.get("/v1/profiles/source/assets")
    assert assets.status_code == 200


async def test_writes_to_a_merged_away_id_land_on_the_target(api: httpx.AsyncClient) -> None:
    await put_field(api, "target", "email", "a@example.com")
    await put_field(api, "source", "phone", "+33600000001")
    await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})

    written = await put_field(api, "source", "email", "b@example.com")
    target = (await api.get("/v1/profiles/target")).json()
    assert target["fields"]["email"]["id"] == written["id"]
    asset = await api.post("/v1/profiles/source/assets", json=ASSET)
    assert asset.status_code == 201
    assert [a["id"] for a in (await api.get("/v1/profiles/target")).json()["assets"]] == [
        asset.json()["id"]
    ]
    await api.put("/v1/profiles/source/consents/sms", json={"granted": True})
    link = await api.post(
        "/v1/profiles/source/channel-identities", json={"channel": "sms", "channel_user_id": "+7"}
    )
    assert link.status_code == 201
    found = await api.get("/v1/profiles/by-channel/sms/+7")
    assert found.json()["customer_id"] == "target"
    deleted = await api.delete("/v1/profiles/source/fields/phone")
    assert deleted.status_code == 204
    target = (await api.get("/v1/profiles/target")).json()
    assert "phone" not in target["fields"]
    assert [c["consent_type"] for c in target["consents"]] == ["sms"]


async def test_merging_into_a_merged_away_id_acts_on_its_target(api: httpx.AsyncClient) -> None:
    await put_field(api, "a", "email", "a@example.com")
    await put_field(api, "b", "phone", "+33600000001")
    await put_field(api, "c", "first_name", "Ada")
    assert (await api.post("/v1/profiles/b/merge", json={"source_customer_id": "a"})).is_success
    merged = await api.post("/v1/profiles/a/merge", json={"source_customer_id": "c"})
    assert merged.status_code == 200, merged.text
    assert merged.json()["customer_id"] == "b"
    assert merged.json()["fields"].keys() == {"email", "phone", "first_name"}
    for alias in ("a", "c"):
        assert (await api.get(f"/v1/profiles/{alias}")).json()["customer_id"] == "b"


async def test_alias_of_an_alias_still_reads_as_the_final_target(api: httpx.AsyncClient) -> None:
    await put_field(api, "a", "email", "a@example.com")
    await put_field(api, "b", "phone", "+33600000001")
    await put_field(api, "c", "first_name", "Ada")
    assert (await api.post("/v1/profiles/b/merge", json={"source_customer_id": "a"})).is_success
    assert (await api.post("/v1/profiles/c/merge", json={"source_customer_id": "b"})).is_success
    for alias in ("a", "b"):
        got = await api.get(f"/v1/profiles/{alias}")
        assert got.status_code == 200
        assert got.json()["customer_id"] == "c"
        assert got.json()["fields"].keys() == {"email", "phone", "first_name"}


async def test_creating_a_profile_whose_id_is_an_alias_answers_409(
    api: httpx.AsyncClient,
) -> None:
    await put_field(api, "target", "email", "a@example.com")
    await put_field(api, "source", "phone", "+33600000001")
    await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    before = await snapshot(api, "target")
    assert_problem(await api.post("/v1/profiles", json={"customer_id": "source"}), 409)
    assert await snapshot(api, "target") == before
    assert (await api.get("/v1/profiles/source")).json()["customer_id"] == "target"


async def test_lineage_across_merged_profiles_keeps_working(api: httpx.AsyncClient) -> None:
    parent = await put_field(api, "source", "raw_address", "1 rue de Paris")
    child = await api.put(
        "/v1/profiles/target/fields/address",
        json={
            "value": "1 Rue de Paris, 75001 Paris",
            "source": "llm_extracted",
            "source_item_id": parent["id"],
            "source_item_type": "profile_field",
        },
    )
    assert child.status_code == 201
    await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    lineage = await api.get(f"/v1/lineage/{child.json()['id']}")
    assert lineage.status_code == 200
    assert [e["item_id"] for e in lineage.json()["chain"]] == [child.json()["id"], parent["id"]]
    assert lineage.json()["chain"][1]["status"] == "active"


async def test_concurrent_creation_of_one_profile_creates_it_once(
    api: httpx.AsyncClient,
) -> None:
    answers = await asyncio.gather(
        *(api.post("/v1/profiles", json={"customer_id": "race"}) for _ in range(10))
    )
    assert sorted(r.status_code for r in answers) == [201] + [409] * 9


async def test_concurrent_links_of_one_identity_give_it_to_one_profile(
    api: httpx.AsyncClient,
) -> None:
    identity = {"channel": "sms", "channel_user_id": "+33600000001"}
    answers = await asyncio.gather(
        *(api.post(f"/v1/profiles/c{i}/channel-identities", json=identity) for i in range(5))
    )
    assert sorted(r.status_code for r in answers) == [201] + [409] * 4
    owner = (await api.get("/v1/profiles/by-channel/sms/+33600000001")).json()["customer_id"]
    winner = next(i for i, r in enumerate(answers) if r.status_code == 201)
    assert owner == f"c{winner}"
    for i in range(5):
        expected = 200 if i == winner else 404
        assert (await api.get(f"/v1/profiles/c{i}")).status_code == expected
