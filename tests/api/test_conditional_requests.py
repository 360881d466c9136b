"""Conditional requests (DESIGN §8): profile reads answer an ETag naming the profile's
version; writes under a profile take If-Match and answer 412 when the profile changed
since, decided under the profile's lock so two writers holding one ETag cannot both win."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import psycopg
import pytest

from api_support import ASSET, assert_problem
from ccvault.runtime import Vault
from ccvault.storage.urls import libpq_url

FIELD = {"value": "a@example.com", "source": "user_provided"}
Write = tuple[str, str, dict[str, Any] | None]

# Every write under a profile, addressed to customer "c1" (two variants each, so two
# racing writers send different requests).
WRITES: dict[str, Callable[[int], Write]] = {
    "field put": lambda n: ("PUT", "/v1/profiles/c1/fields/email", {**FIELD, "value": f"{n}@x.io"}),
    "field delete": lambda n: ("DELETE", f"/v1/profiles/c1/fields/note{n}", None),
    "asset post": lambda n: ("POST", "/v1/profiles/c1/assets", {**ASSET, "name": f"doc{n}"}),
    "consent put": lambda n: ("PUT", f"/v1/profiles/c1/consents/kind{n}", {"granted": True}),
    "identity post": lambda n: (
        "POST",
        "/v1/profiles/c1/channel-identities",
        {"channel": "sms", "channel_user_id": f"+3360000000{n}"},
    ),
    "patch": lambda n: (
        "PATCH",
        "/v1/profiles/c1",
        {"verification_level": ["email_verified", "phone_verified"][n]},
    ),
    "merge": lambda n: ("POST", "/v1/profiles/c1/merge", {"source_customer_id": f"src{n}"}),
}


async def setup(api: httpx.AsyncClient) -> str:
    """Customer c1 with what every write above needs; returns its current ETag."""
    for n in (0, 1):
        resp = await api.put(f"/v1/profiles/c1/fields/note{n}", json={**FIELD, "value": "n"})
        assert resp.status_code == 201, resp.text
        resp = await api.put(f"/v1/profiles/src{n}/fields/other", json=FIELD)
        assert resp.status_code == 201, resp.text
    return await etag_of(api, "c1")


async def etag_of(api: httpx.AsyncClient, cid: str) -> str:
    """The ETag a plain profile read answers."""
    resp = await api.get(f"/v1/profiles/{cid}")
    assert resp.status_code == 200, resp.text
    return resp.headers["etag"]


async def stored_version(vault: Vault, tenant_id: uuid.UUID, cid: str) -> int:
    """customer_profiles.version as PostgreSQL holds it."""
    async with vault.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT version FROM customer_profiles WHERE tenant_id = %s AND customer_id = %s",
            (tenant_id, cid),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def send(api: httpx.AsyncClient, write: Write, if_match: str | None) -> httpx.Response:
    """Send a write, with If-Match when given."""
    method, path, body = write
    headers = {} if if_match is None else {"If-Match": if_match}
    return await api.request(method, path, json=body, headers=headers)


async def snapshot(api: httpx.AsyncClient) -> dict[str, Any]:
    """c1 and the merge sources with history, to show a refused write changed nothing."""
    answers = {}
    for cid in ("c1", "src0", "src1"):
        resp = await api.get(f"/v1/profiles/{cid}", params={"include": "history"})
        answers[cid] = (resp.status_code, resp.json(), resp.headers.get("etag"))
    return answers


# -- ETags on reads ----------------------------------------------------------------------


async def test_every_profile_read_answers_the_stored_version_as_its_etag(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    created = await api.post(
        "/v1/profiles",
        json={
            "customer_id": "c1",
            "channel_identities": [{"channel": "sms", "channel_user_id": "+1"}],
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == f'"{await stored_version(vault, tenant_id, "c1")}"'

    seen = set()
    for value in ("a@x.io", "b@x.io"):
        assert (
            await api.put("/v1/profiles/c1/fields/email", json={**FIELD, "value": value})
        ).is_success
        version = await stored_version(vault, tenant_id, "c1")
        expected = f'"{version}"'
        cold = await api.get("/v1/profiles/c1")  # fills the cache
        warm = await api.get("/v1/profiles/c1")  # a hit, served by the fast path
        history = await api.get("/v1/profiles/c1", params={"include": "history"})
        by_channel = await api.get("/v1/profiles/by-channel/sms/+1")
        for resp in (cold, warm, history, by_channel):
            assert resp.status_code == 200, resp.text
            assert resp.headers["etag"] == expected
        assert warm.content == cold.content
        seen.add(expected)
    assert len(seen) == 2, "a write changes the ETag"


async def test_an_alias_reads_with_its_targets_etag(api: httpx.AsyncClient) -> None:
    await setup(api)
    merged = await api.post("/v1/profiles/c1/merge", json={"source_customer_id": "src0"})
    assert merged.status_code == 200, merged.text
    assert merged.headers["etag"] == await etag_of(api, "c1") == await etag_of(api, "src0")


async def test_a_failed_read_answers_no_etag(api: httpx.AsyncClient) -> None:
    resp = await api.get("/v1/profiles/ghost")
    assert_problem(resp, 404)
    assert "etag" not in resp.headers


# -- If-Match on writes --------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(WRITES))
async def test_a_write_with_the_current_etag_succeeds_and_moves_the_etag(
    api: httpx.AsyncClient, kind: str
) -> None:
    etag = await setup(api)
    resp = await send(api, WRITES[kind](0), etag)
    assert resp.is_success, resp.text
    assert await etag_of(api, "c1") != etag
    if kind in ("patch", "merge"):  # answered with the profile: its new ETag
        assert resp.headers["etag"] == await etag_of(api, "c1")


@pytest.mark.parametrize("kind", list(WRITES))
async def test_a_write_with_a_stale_etag_answers_412_and_changes_nothing(
    api: httpx.AsyncClient, kind: str
) -> None:
    stale = await setup(api)
    assert (await api.put("/v1/profiles/c1/fields/name", json={**FIELD, "value": "Ada"})).is_success
    current = await etag_of(api, "c1")
    before = await snapshot(api)

    resp = await send(api, WRITES[kind](0), stale)

    body = assert_problem(resp, 412)
    assert body["title"] == "Precondition Failed"
    assert resp.headers["etag"] == current, "the 412 names the version it found"
    assert await snapshot(api) == before


@pytest.mark.parametrize(
    ("if_match", "passes"),
    [
        ("*", True),
        ("W/{etag}", True),  # weakened by a compressing proxy: still the version read
        ('"999999", {etag}', True),
        (' {etag} , "1"', True),
        ('"999999"', False),
        ('"abc"', False),
        ("{bare}", False),  # not an entity tag
        ('"-1"', False),
        ('"99999999999999999999999"', False),
        ('"1' + "0" * 5000 + '"', False),
        ("", False),
    ],
)
async def test_if_match_lists_and_forms(
    api: httpx.AsyncClient, if_match: str, passes: bool
) -> None:
    etag = await setup(api)
    header = if_match.format(etag=etag, bare=etag.strip('"'))
    resp = await send(api, WRITES["field put"](0), header)
    if passes:
        assert resp.status_code == 201, resp.text
    else:
        assert_problem(resp, 412)


async def test_if_match_on_a_profile_that_does_not_exist_refuses_to_create_it(
    api: httpx.AsyncClient,
) -> None:
    for header in ("*", '"1"'):
        resp = await api.put(
            "/v1/profiles/nobody/fields/email", json=FIELD, headers={"If-Match": header}
        )
        assert_problem(resp, 412)
        assert "etag" not in resp.headers
    assert_problem(await api.get("/v1/profiles/nobody"), 404)
    # Where a write would not create the profile, its absence is the answer.
    resp = await api.delete("/v1/profiles/nobody/fields/email", headers={"If-Match": '"1"'})
    assert_problem(resp, 404)
    patch = await api.patch(
        "/v1/profiles/nobody",
        json={"verification_level": "kyc_complete"},
        headers={"If-Match": "*"},
    )
    assert_problem(patch, 404)


async def test_if_match_addressed_to_an_alias_is_the_targets_etag(
    api: httpx.AsyncClient,
) -> None:
    await setup(api)
    assert (await api.post("/v1/profiles/c1/merge", json={"source_customer_id": "src0"})).is_success
    etag = await etag_of(api, "src0")
    write = ("PUT", "/v1/profiles/src0/fields/email", FIELD)
    assert (await send(api, write, etag)).status_code == 201
    assert_problem(await send(api, write, etag), 412)
    assert (await send(api, write, await etag_of(api, "c1"))).status_code == 201


async def test_writes_without_if_match_are_unconditional(api: httpx.AsyncClient) -> None:
    await setup(api)
    for kind in ("field put", "consent put", "patch"):
        assert (await send(api, WRITES[kind](0), None)).is_success


async def test_the_etag_of_a_patch_answer_guards_the_next_write(api: httpx.AsyncClient) -> None:
    etag = await setup(api)
    first = await send(api, WRITES["patch"](0), etag)
    assert first.status_code == 200
    second = await send(api, WRITES["patch"](1), first.headers["etag"])
    assert second.status_code == 200, second.text
    assert second.json()["verification_level"] == "phone_verified"
    assert_problem(await send(api, WRITES["patch"](0), first.headers["etag"]), 412)


# -- races: two writers, one ETag ----------------------------------------------------------


async def waiting_for_locks(database_url: str, count: int) -> None:
    """Poll until `count` backends of this database wait for a lock (10 s at most)."""
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        for _ in range(400):
            cur = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            row = await cur.fetchone()
            if row is not None and row[0] >= count:
                return
            await asyncio.sleep(0.025)
    raise AssertionError(f"{count} writers never queued on the profile lock")


@pytest.mark.parametrize("kind", list(WRITES))
async def test_two_writers_holding_the_same_etag_exactly_one_wins(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID, kind: str
) -> None:
    """Both writers have read the same version and queue on the profile's lock (held here
    by a third transaction) before either checks it: a check made before taking the lock
    would let both through."""
    etag = await setup(api)
    database_url = vault.settings.database_url
    assert database_url
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as holder:
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM customer_profiles WHERE tenant_id = %s AND customer_id = 'c1'"
                " FOR NO KEY UPDATE",
                (tenant_id,),
            )
            racers = [asyncio.create_task(send(api, WRITES[kind](n), etag)) for n in (0, 1)]
            await waiting_for_locks(database_url, 2)
        answers = await asyncio.wait_for(asyncio.gather(*racers), timeout=30)

    statuses = sorted(r.status_code for r in answers)
    assert statuses[1] == 412, [r.text for r in answers]
    assert statuses[0] in (200, 201, 204), [r.text for r in answers]
    loser = next(r for r in answers if r.status_code == 412)
    assert loser.headers["etag"] == await etag_of(api, "c1")


async def _concurrently(*calls: Awaitable[httpx.Response]) -> list[httpx.Response]:
    return list(await asyncio.gather(*calls))


async def test_many_writers_with_one_etag_leave_exactly_one_version_written(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    etag = await setup(api)
    answers = await _concurrently(
        *(
            api.put(
                "/v1/profiles/c1/fields/tier",
                json={**FIELD, "value": f"v{n}"},
                headers={"If-Match": etag},
            )
            for n in range(8)
        )
    )
    assert sorted(r.status_code for r in answers) == [201] + [412] * 7
    history = (await api.get("/v1/profiles/c1/fields/tier/history")).json()["items"]
    winner = next(r for r in answers if r.status_code == 201).json()
    assert [v["id"] for v in history] == [winner["id"]]


# -- the published contract ----------------------------------------------------------------

CONDITIONAL = [
    ("put", "/v1/profiles/{customer_id}/fields/{name}"),
    ("delete", "/v1/profiles/{customer_id}/fields/{name}"),
    ("post", "/v1/profiles/{customer_id}/assets"),
    ("put", "/v1/profiles/{customer_id}/consents/{consent_type}"),
    ("post", "/v1/profiles/{customer_id}/channel-identities"),
    ("patch", "/v1/profiles/{customer_id}"),
    ("post", "/v1/profiles/{customer_id}/merge"),
]
ETAGGED = [
    ("get", "/v1/profiles/{customer_id}", "200"),
    ("get", "/v1/profiles/by-channel/{channel}/{channel_user_id}", "200"),
    ("post", "/v1/profiles", "201"),
    ("patch", "/v1/profiles/{customer_id}", "200"),
    ("post", "/v1/profiles/{customer_id}/merge", "200"),
]


async def test_the_openapi_document_declares_if_match_412_and_etags(
    http: httpx.AsyncClient,
) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    for method, path in CONDITIONAL:
        op = paths[path][method]
        assert "If-Match" in [p["name"] for p in op["parameters"] if p["in"] == "header"], path
        assert "412" in op["responses"], (method, path)
    for method, path, status in ETAGGED:
        assert "ETag" in paths[path][method]["responses"][status].get("headers", {}), path
