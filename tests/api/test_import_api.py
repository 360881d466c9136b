"""POST /v1/profiles/import: NDJSON streamed past the body limit, validated and normalized
as field writes are, a line stored whole or not at all, bad lines reported by number, and
export → import round-tripping (DESIGN §8 "Scale")."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx

from ccvault.domain.bounds import MAX_PROFILE_FIELDS
from ccvault.domain.imports import MAX_LINE_BYTES
from ccvault.domain.models import ValidationMode
from ccvault.domain.writes import NewField
from ccvault.runtime import Vault
from ccvault.services.imports import Importer
from ccvault.storage.tenants import TenantStore

NDJSON = {"Content-Type": "application/x-ndjson"}


def ndjson(lines: Iterable[Any]) -> bytes:
    """Lines as NDJSON (a str is sent as it is: for malformed lines)."""
    return b"".join(
        (line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines
    )


async def post_import(api: httpx.AsyncClient, body: bytes | AsyncIterator[bytes]) -> Any:
    resp = await api.post("/v1/profiles/import", content=body, headers=NDJSON)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def streamed(data: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]


async def profile(api: httpx.AsyncClient, cid: str) -> Any:
    resp = await api.get(f"/v1/profiles/{cid}")
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_a_thousand_profiles_stream_in_past_the_body_limit(
    api: httpx.AsyncClient, vault: Vault
) -> None:
    padding = "p" * 1200
    lines = [
        {"customer_id": f"c{i}", "fields": {"name": f"Customer {i}", "note": padding, "n": i}}
        for i in range(1000)
    ]
    body = ndjson(lines)
    assert len(body) > vault.settings.max_body_bytes
    summary = await post_import(api, streamed(body))
    assert summary["errors"] == []
    assert (summary["profiles"], summary["created"], summary["fields"]) == (1000, 1000, 3000)
    read = await profile(api, "c999")
    assert read["fields"]["name"]["value"] == "Customer 999"
    assert read["fields"]["n"]["value"] == 999
    assert read["fields"]["note"]["source"] == "human_entered"


async def test_other_bodies_keep_the_body_limit(api: httpx.AsyncClient, vault: Vault) -> None:
    big = {"value": "x" * (vault.settings.max_body_bytes + 10), "source": "user_provided"}
    resp = await api.put("/v1/profiles/c1/fields/note", json=big)
    assert resp.status_code == 413


async def test_bad_lines_are_reported_by_number_and_good_ones_stored(
    api: httpx.AsyncClient,
) -> None:
    body = ndjson(
        [
            {"customer_id": "ok-1", "fields": {"a": 1}},
            "{not json",
            "",
            {"fields": {"a": 1}},
            {"customer_id": "bad id!", "fields": {}},
            {"customer_id": "ok-2", "fields": {"a": {"value": 2, "confidence": 3}}},
            {"customer_id": "ok-3", "fields": {"Bad-Name": 1}},
            {"customer_id": "ok-4", "fields": {"b": True}},
        ]
    )
    summary = await post_import(api, body)
    assert [e["line"] for e in summary["errors"]] == [2, 4, 5, 6, 7]
    assert summary["errors"][0]["errors"][0]["code"] == "json_invalid"
    assert summary["errors"][1]["errors"][0]["loc"] == ["customer_id"]
    assert summary["errors"][3]["errors"][0]["loc"] == ["fields", "a", "confidence"]
    assert (summary["profiles"], summary["failed"], summary["lines"]) == (2, 5, 7)
    assert (await profile(api, "ok-4"))["fields"]["b"]["value"] is True
    assert (await api.get("/v1/profiles/ok-2")).status_code == 404


async def test_a_line_with_one_invalid_field_stores_nothing_of_it(
    http: httpx.AsyncClient, vault: Vault
) -> None:
    _, key = await TenantStore(vault.pool).create(f"t-{uuid.uuid4().hex}", "strict")
    api = httpx.AsyncClient(
        transport=http._transport,
        base_url="http://vault",
        headers={"Authorization": f"Bearer {key}"},
    )
    line = {
        "customer_id": "strict-1",
        "fields": {"name": "Ana", "email": {"value": "not an email", "value_type": "email"}},
        "channel_identities": [{"channel": "email", "channel_user_id": "ana@example.com"}],
        "consents": {"marketing_email": True},
    }
    summary = await post_import(api, ndjson([line, {"customer_id": "strict-2", "fields": {}}]))
    assert summary["profiles"] == 1
    assert summary["errors"] == [
        {
            "line": 1,
            "errors": [
                {
                    "loc": ["fields", "email", "value"],
                    "msg": summary["errors"][0]["errors"][0]["msg"],
                    "code": "format_error",
                }
            ],
        }
    ]
    assert (await api.get("/v1/profiles/strict-1")).status_code == 404
    assert (await api.get("/v1/profiles/by-channel/email/ana@example.com")).status_code == 404


async def test_warn_mode_stores_the_value_and_reports_the_warning(api: httpx.AsyncClient) -> None:
    line = {"customer_id": "warn-1", "fields": {"email": {"value": "nope", "value_type": "email"}}}
    summary = await post_import(api, ndjson([line]))
    assert summary["errors"] == [] and summary["fields"] == 1
    assert summary["warnings"][0]["line"] == 1
    assert summary["warnings"][0]["errors"][0]["code"] == "format_error"


async def test_values_are_normalized_exactly_like_field_writes(api: httpx.AsyncClient) -> None:
    fields = {
        "email": {"value": "Ana@Example.COM", "value_type": "email"},
        "phone": {"value": "+44 20 7946 0958", "value_type": "phone"},
        "seats": {"value": " 0042 ", "value_type": "integer"},
        "vip": {"value": "yes", "value_type": "boolean"},
        "born": {"value": "1990-02-14", "value_type": "date"},
        "seen": {"value": "2024-05-01T12:00:00+02:00", "value_type": "datetime"},
        "prefs": {"value": '{"lang": "pt"}', "value_type": "json"},
        "plain": "text",
    }
    await post_import(api, ndjson([{"customer_id": "imported", "fields": fields}]))
    for name, spec in fields.items():
        body = spec if isinstance(spec, dict) else {"value": spec}
        resp = await api.put(
            f"/v1/profiles/written/fields/{name}", json={**body, "source": "human_entered"}
        )
        assert resp.status_code == 201, resp.text
    imported = (await profile(api, "imported"))["fields"]
    written = (await profile(api, "written"))["fields"]
    for name in fields:
        assert imported[name]["value"] == written[name]["value"], name
        assert imported[name]["value_type"] == written[name]["value_type"], name
    assert imported["phone"]["value"] == "+442079460958"


async def test_importing_the_same_file_twice_writes_nothing_the_second_time(
    api: httpx.AsyncClient,
) -> None:
    body = ndjson(
        [
            {
                "customer_id": "twice",
                "fields": {
                    "name": "Ana",
                    "tier": {"value": "gold", "confidence": 0.9},
                    "promo": {"value": "spring", "expires_at": "2020-01-01T00:00:00Z"},
                },
                "channel_identities": [{"channel": "sms", "channel_user_id": "+15550001"}],
                "consents": {"marketing_email": True},
            }
        ]
    )
    first = await post_import(api, body)
    before = await api.get("/v1/profiles/twice")
    second = await post_import(api, body)
    after = await api.get("/v1/profiles/twice")
    assert (first["fields"], first["unchanged"]) == (3, 0)
    assert (second["fields"], second["unchanged"], second["created"]) == (0, 3, 0)
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.json() == before.json()
    history = await api.get("/v1/profiles/twice/fields/tier/history")
    assert len(history.json()["items"]) == 1
    # A changed value is a new version; the old one is superseded.
    changed = body.replace(b'"gold"', b'"platinum"')
    third = await post_import(api, changed)
    assert (third["fields"], third["unchanged"]) == (1, 2)
    items = (await api.get("/v1/profiles/twice/fields/tier/history")).json()["items"]
    assert [i["status"] for i in items] == ["active", "superseded"]
    assert items[1]["superseded_by_id"] == items[0]["id"]


async def test_a_cached_profile_shows_the_import_at_once(api: httpx.AsyncClient) -> None:
    assert (
        await api.put(
            "/v1/profiles/cached/fields/tier", json={"value": "gold", "source": "user_provided"}
        )
    ).status_code == 201
    assert (await profile(api, "cached"))["fields"]["tier"]["value"] == "gold"
    assert (await profile(api, "cached"))["fields"]["tier"]["value"] == "gold"  # a hit
    await post_import(api, ndjson([{"customer_id": "cached", "fields": {"tier": "silver"}}]))
    assert (await profile(api, "cached"))["fields"]["tier"]["value"] == "silver"


async def test_lines_of_one_profile_apply_in_file_order(api: httpx.AsyncClient) -> None:
    body = ndjson(
        [
            {"customer_id": "again", "fields": {"tier": "gold"}},
            {"customer_id": "other", "fields": {"tier": "gold"}},
            {"customer_id": "again", "fields": {"tier": "silver"}},
        ]
    )
    summary = await post_import(api, body)
    assert summary["profiles"] == 3 and summary["errors"] == []
    items = (await api.get("/v1/profiles/again/fields/tier/history")).json()["items"]
    assert [(i["value"], i["status"]) for i in items] == [
        ("silver", "active"),
        ("gold", "superseded"),
    ]


async def test_the_profile_limit_refuses_the_line_and_keeps_the_others(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    for i in range(MAX_PROFILE_FIELDS):
        new = NewField.model_validate({"value": "v", "source": "user_provided"})
        await vault.profiles.save_field(tenant_id, "full", f"f{i}", new)
    body = ndjson(
        [{"customer_id": f"fine-{i}", "fields": {"a": i}} for i in range(5)]
        + [{"customer_id": "full", "fields": {"one_more": 1}}]
        + [{"customer_id": f"fine-{i}", "fields": {"b": i}} for i in range(5, 10)]
    )
    summary = await post_import(api, body)
    assert summary["profiles"] == 10
    assert [(e["line"], e["errors"][0]["code"]) for e in summary["errors"]] == [
        (6, "profile_limit")
    ]
    assert "one_more" not in (await profile(api, "full"))["fields"]


async def test_an_identity_of_another_profile_refuses_the_line(api: httpx.AsyncClient) -> None:
    owner = {
        "customer_id": "owner",
        "channel_identities": [{"channel": "sms", "channel_user_id": "+15550002", "primary": True}],
    }
    await post_import(api, ndjson([owner]))
    thief = {
        "customer_id": "thief",
        "fields": {"a": 1},
        "channel_identities": [{"channel": "sms", "channel_user_id": "+15550002"}],
    }
    summary = await post_import(api, ndjson([{"customer_id": "x1"}, thief, {"customer_id": "x2"}]))
    assert [e["line"] for e in summary["errors"]] == [2]
    assert summary["errors"][0]["errors"][0]["code"] == "conflict"
    assert (await api.get("/v1/profiles/thief")).status_code == 404
    assert (await api.get("/v1/profiles/x2")).status_code == 200
    found = await api.get("/v1/profiles/by-channel/sms/+15550002")
    assert found.json()["customer_id"] == "owner"
    assert found.json()["channel_identities"][0]["primary"] is True


async def test_an_overlong_line_is_refused_without_being_held(api: httpx.AsyncClient) -> None:
    long_line = json.dumps({"customer_id": "long", "fields": {"a": "x" * MAX_LINE_BYTES}})
    body = ndjson([long_line, {"customer_id": "short", "fields": {"a": 1}}])
    summary = await post_import(api, streamed(body))
    assert [(e["line"], e["errors"][0]["code"]) for e in summary["errors"]] == [(1, "too_long")]
    assert summary["profiles"] == 1


async def test_another_content_type_answers_415(api: httpx.AsyncClient) -> None:
    resp = await api.post("/v1/profiles/import", json={"customer_id": "c"})
    assert resp.status_code == 415
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_export_then_import_round_trips(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID, other_tenant_id: uuid.UUID
) -> None:
    lines = [
        {
            "customer_id": "rt-1",
            "fields": {
                "email": {
                    "value": "ana@example.com",
                    "value_type": "email",
                    "verified": True,
                    "verification_method": "otp",
                    "source": "user_provided",
                    "collected_at": "2024-01-02T03:04:05Z",
                    "expires_at": "2031-01-01T00:00:00Z",
                    "source_metadata": {"crm": "hubspot", "row": 7},
                },
                "prefs": {"value": {"lang": "pt", "none": None}},
                "score": 0.5,
            },
            "channel_identities": [
                {
                    "channel": "email",
                    "channel_user_id": "ana@example.com",
                    "verified": True,
                    "primary": True,
                },
                {"channel": "sms", "channel_user_id": "+15550003"},
            ],
            "consents": {
                "marketing_email": True,
                "profiling": {"granted": False, "source_session_id": "s/1"},
            },
        },
        {"customer_id": "rt-2"},
    ]
    await post_import(api, ndjson(lines))
    importer = Importer(vault.pool, vault.cache)
    exported = [line async for line in importer.export(tenant_id)]
    assert [json.loads(line)["customer_id"] for line in exported] == ["rt-1", "rt-2"]
    chunks = streamed("\n".join(exported).encode())
    summary = await importer.run(other_tenant_id, ValidationMode.strict, chunks)
    assert summary.errors == [] and summary.profiles == 2
    again = [line async for line in importer.export(other_tenant_id)]
    assert [json.loads(line) for line in again] == [json.loads(line) for line in exported]
    first = json.loads(exported[0])
    assert first["fields"]["prefs"]["value"] == {"lang": "pt", "none": None}
    assert first["fields"]["email"]["collected_at"].startswith("2024-01-02T03:04:05")


async def test_a_body_that_never_waits_stores_every_batch_and_reports_lines_by_number(
    api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID
) -> None:
    # One chunk of 2,500 lines: validation never waits for the body, so it hands the loop
    # over to the batch in flight itself. Bad lines sit in each of the three batches: two
    # refused while validating, one refused by the database (an identity of another
    # profile, found only when its batch is stored and split).
    taken = {"channel": "sms", "channel_user_id": "+15550199"}
    await post_import(api, ndjson([{"customer_id": "owner", "channel_identities": [taken]}]))
    lines: list[Any] = [
        {
            "customer_id": f"n-{i:04d}",
            "fields": {"email": {"value": f"u{i}@Example.com", "value_type": "email"}, "seats": i},
        }
        for i in range(2500)
    ]
    lines[9] = "{not json"
    lines[1499] = {"customer_id": "n-1499", "fields": {"s": {"value": 1, "confidence": 3}}}
    lines[2399] = {"customer_id": "n-2399", "channel_identities": [taken]}

    async def one_chunk() -> AsyncIterator[bytes]:
        yield ndjson(lines)

    summary = await Importer(vault.pool, vault.cache).run(
        tenant_id, ValidationMode.warn, one_chunk()
    )
    assert [e.line for e in summary.errors] == [10, 1500, 2400]
    assert summary.errors[2].errors[0].code == "conflict"
    assert (summary.lines, summary.profiles, summary.failed) == (2500, 2497, 3)
    assert summary.fields == 2497 * 2
    last = await profile(api, "n-2499")
    assert last["fields"]["email"]["value"] == "u2499@example.com"
    assert last["fields"]["seats"]["value"] == 2499
    assert (await api.get("/v1/profiles/n-2399")).status_code == 404
