"""Profile attributes (DESIGN §8): the verification_level vocabulary and its PATCH, and
caller references that only travel in bodies (any text of 1..256 characters without
control characters), while ids in paths keep §4's pattern."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest

from api_support import assert_problem
from ccvault.runtime import Vault

LEVELS = ["unverified", "email_verified", "phone_verified", "document_verified", "kyc_complete"]
FIELD = {"value": "a@example.com", "source": "user_provided"}


async def patch(api: httpx.AsyncClient, cid: str, body: Any) -> httpx.Response:
    """PATCH /v1/profiles/{cid}."""
    return await api.patch(f"/v1/profiles/{cid}", json=body)


# -- verification_level --------------------------------------------------------------------


async def test_a_new_profile_is_unverified(api: httpx.AsyncClient) -> None:
    created = await api.post("/v1/profiles", json={"customer_id": "c1"})
    assert created.json()["verification_level"] == "unverified"
    await api.put("/v1/profiles/implicit/fields/email", json=FIELD)
    assert (await api.get("/v1/profiles/implicit")).json()["verification_level"] == "unverified"


async def test_patch_sets_each_level_and_every_later_read_sees_it(
    api: httpx.AsyncClient,
) -> None:
    await api.put("/v1/profiles/c1/fields/email", json=FIELD)
    before = await api.get("/v1/profiles/c1")  # cached now
    for level in LEVELS[1:] + LEVELS[:1]:
        resp = await patch(api, "c1", {"verification_level": level})
        assert resp.status_code == 200, resp.text
        assert resp.json()["verification_level"] == level
        assert resp.json()["fields"]["email"]["value"] == "a@example.com"
        for _ in range(2):  # the cached copy was invalidated: cold, then a hit
            got = await api.get("/v1/profiles/c1")
            assert got.json()["verification_level"] == level
            assert got.headers["etag"] == resp.headers["etag"]
    assert resp.headers["etag"] != before.headers["etag"]
    listed = (await api.get("/v1/profiles")).json()["items"]
    assert listed[0]["verification_level"] == "unverified"


async def test_updated_at_moves_when_the_level_changes_and_not_when_it_is_repeated(
    api: httpx.AsyncClient,
) -> None:
    await api.post("/v1/profiles", json={"customer_id": "c1"})
    created = (await api.get("/v1/profiles/c1")).json()["updated_at"]
    changed = (await patch(api, "c1", {"verification_level": "kyc_complete"})).json()
    assert datetime.fromisoformat(changed["updated_at"]) > datetime.fromisoformat(created)
    repeated = await patch(api, "c1", {"verification_level": "kyc_complete"})
    assert repeated.status_code == 200
    assert repeated.json()["updated_at"] == changed["updated_at"]


@pytest.mark.parametrize(
    "body",
    [
        {"verification_level": "none"},
        {"verification_level": "verified"},
        {"verification_level": "KYC_COMPLETE"},
        {"verification_level": None},
        {"verification_level": 1},
        {},
        {"verification_level": "kyc_complete", "customer_id": "other"},
    ],
)
async def test_other_levels_and_bodies_are_refused_and_change_nothing(
    api: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    await api.put("/v1/profiles/c1/fields/email", json=FIELD)
    before = await api.get("/v1/profiles/c1")
    assert_problem(await patch(api, "c1", body), 422)
    after = await api.get("/v1/profiles/c1")
    assert after.json() == before.json()
    assert after.headers["etag"] == before.headers["etag"]


async def test_patch_of_an_unknown_or_another_tenants_profile_answers_404(
    api: httpx.AsyncClient, other_api: httpx.AsyncClient
) -> None:
    assert_problem(await patch(api, "ghost", {"verification_level": "kyc_complete"}), 404)
    assert_problem(await api.get("/v1/profiles/ghost"), 404)
    await other_api.put("/v1/profiles/theirs/fields/email", json=FIELD)
    assert_problem(await patch(api, "theirs", {"verification_level": "kyc_complete"}), 404)
    theirs = (await other_api.get("/v1/profiles/theirs")).json()
    assert theirs["verification_level"] == "unverified"


async def test_patch_addressed_to_an_alias_sets_the_targets_level(
    api: httpx.AsyncClient,
) -> None:
    await api.put("/v1/profiles/target/fields/email", json=FIELD)
    await api.put("/v1/profiles/source/fields/phone", json={**FIELD, "value": "+33600000001"})
    await api.get("/v1/profiles/target")  # cached before the patch
    assert (
        await api.post("/v1/profiles/target/merge", json={"source_customer_id": "source"})
    ).is_success

    resp = await patch(api, "source", {"verification_level": "document_verified"})

    assert resp.status_code == 200, resp.text
    assert resp.json()["customer_id"] == "target"
    for cid in ("target", "source"):
        assert (await api.get(f"/v1/profiles/{cid}")).json()[
            "verification_level"
        ] == "document_verified"


async def test_the_database_refuses_a_level_outside_the_vocabulary(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    await api.post("/v1/profiles", json={"customer_id": "c1"})
    async with vault.pool.connection() as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute(
                "UPDATE customer_profiles SET verification_level = 'none'"
                " WHERE tenant_id = %s AND customer_id = 'c1'",
                (tenant_id,),
            )


# -- body-only references -------------------------------------------------------------------

GOOD_REFS = [
    "sess/2026/12/03#42",
    "a b c",
    "séance-№7",
    "x" * 256,
    "x",
    "https://example.com/calls/1?x=1",
]
BAD_REFS = ["", "x" * 257, "tab\there", "line\nbreak", "cr\r", "del\x7f", "c1\x85control"]


@pytest.mark.parametrize("ref", GOOD_REFS)
async def test_session_ids_and_metadata_values_take_any_short_text(
    api: httpx.AsyncClient, ref: str
) -> None:
    body = {
        **FIELD,
        "source_session_id": ref,
        "source_metadata": {"session": ref, "turn": 3, "ratio": 0.5, "final": True},
    }
    field = await api.put("/v1/profiles/c1/fields/email", json=body)
    assert field.status_code == 201, field.text
    assert field.json()["source_session_id"] == ref
    assert field.json()["source_metadata"] == body["source_metadata"]
    read = (await api.get("/v1/profiles/c1")).json()["fields"]["email"]
    assert (read["source_session_id"], read["source_metadata"]) == (ref, body["source_metadata"])
    consent = await api.put(
        "/v1/profiles/c1/consents/marketing", json={"granted": True, "source_session_id": ref}
    )
    assert consent.status_code == 200, consent.text
    assert consent.json()["source_session_id"] == ref


@pytest.mark.parametrize("ref", BAD_REFS)
async def test_empty_long_or_control_character_references_are_refused(
    api: httpx.AsyncClient, ref: str
) -> None:
    for body, loc in (
        ({**FIELD, "source_session_id": ref}, ["body", "source_session_id"]),
        ({**FIELD, "source_metadata": {"session": ref}}, ["body", "source_metadata", "session"]),
    ):
        resp = await api.put("/v1/profiles/c1/fields/email", json=body)
        errors = assert_problem(resp, 422)["errors"]
        assert any(e["loc"][: len(loc)] == loc for e in errors), errors
    consent = await api.put(
        "/v1/profiles/c1/consents/marketing", json={"granted": True, "source_session_id": ref}
    )
    assert_problem(consent, 422)
    assert_problem(await api.get("/v1/profiles/c1"), 404)


@pytest.mark.parametrize("value", [None, {"nested": "x"}, ["a"], []])
async def test_metadata_values_are_references_numbers_or_flags(
    api: httpx.AsyncClient, value: Any
) -> None:
    resp = await api.put(
        "/v1/profiles/c1/fields/email", json={**FIELD, "source_metadata": {"k": value}}
    )
    assert_problem(resp, 422)


@pytest.mark.parametrize("path_id", ["a%2Fb", "a b", "-x", "x" * 129])
async def test_ids_in_paths_keep_the_caller_id_pattern(
    api: httpx.AsyncClient, path_id: str
) -> None:
    resp = await api.patch(f"/v1/profiles/{path_id}", json={"verification_level": "kyc_complete"})
    assert resp.status_code in (404, 422), resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
