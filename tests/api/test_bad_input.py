"""Refused input: malformed JSON, wrong types, bad ids, unknown keys, oversized bodies.

Every refusal is problem+json, never a 500, and leaves the vault exactly as it was.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api_support import ASSET, assert_problem

LIMIT = 1024 * 1024
FIELD = {"value": "a@example.com", "source": "user_provided"}
IDENTITY = {"channel": "sms", "channel_user_id": "+33600000009"}
CONSENT = {"granted": True}

# (method, path, a valid body): every write route of the tenant API, aimed at `{cid}`.
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("PUT", "/v1/profiles/{cid}/fields/email", FIELD),
    ("POST", "/v1/profiles/{cid}/assets", ASSET),
    ("PUT", "/v1/profiles/{cid}/consents/marketing", CONSENT),
    ("POST", "/v1/profiles/{cid}/channel-identities", IDENTITY),
    ("POST", "/v1/profiles/{cid}/merge", {"source_customer_id": "other"}),
    ("POST", "/v1/profiles", {"customer_id": "{cid}"}),
]
WRITE_IDS = ["field", "asset", "consent", "identity", "merge", "profile"]


def assert_validation_problem(resp: httpx.Response) -> list[dict[str, Any]]:
    """A 422 problem whose errors are [{loc, msg, code}]."""
    body = assert_problem(resp, 422)
    errors: list[dict[str, Any]] = body["errors"]
    assert errors
    for error in errors:
        assert error.keys() == {"loc", "msg", "code"}
        assert isinstance(error["loc"], list)
        assert isinstance(error["msg"], str)
        assert isinstance(error["code"], str)
    return errors


def fill(path: str, body: dict[str, Any], cid: str) -> tuple[str, dict[str, Any]]:
    """Aim a route template and its body at one customer."""
    filled = {k: (v.format(cid=cid) if isinstance(v, str) else v) for k, v in body.items()}
    return path.format(cid=cid), filled


async def state(api: httpx.AsyncClient) -> dict[str, Any]:
    """Everything a refused request could have touched, read back through the API."""
    profile = await api.get("/v1/profiles/cust-1", params={"include": "history"})
    assets = await api.get("/v1/profiles/cust-1/assets", params={"include": "history"})
    return {
        "profile": profile.json(),
        "assets": assets.json(),
        "other": (await api.get("/v1/profiles/other")).json(),
        "fresh": (await api.get("/v1/profiles/fresh")).status_code,
        "identity": (await api.get("/v1/profiles/by-channel/sms/+33600000009")).status_code,
    }


@pytest.fixture
async def before(api: httpx.AsyncClient) -> dict[str, Any]:
    """A profile with a field, an asset, an identity and a consent; another one to merge."""
    assert (await api.put("/v1/profiles/cust-1/fields/email", json=FIELD)).status_code == 201
    assert (await api.post("/v1/profiles/cust-1/assets", json=ASSET)).status_code == 201
    identity = {"channel": "whatsapp", "channel_user_id": "+1"}
    assert (await api.post("/v1/profiles/cust-1/channel-identities", json=identity)).is_success
    assert (await api.put("/v1/profiles/cust-1/consents/marketing", json=CONSENT)).is_success
    other = {"value": "+33600000001", "source": "user_provided"}
    assert (await api.put("/v1/profiles/other/fields/phone", json=other)).status_code == 201
    snapshot = await state(api)
    assert snapshot["fresh"] == 404
    assert snapshot["identity"] == 404
    return snapshot


# -- malformed JSON ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b'{"value": ', b"not json", b'{"value": 1}}', b"{'value': 1}", b"\xff\xfe"]
)
@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=WRITE_IDS)
@pytest.mark.parametrize("cid", ["cust-1", "fresh"])
async def test_malformed_json_answers_400_and_changes_nothing(
    api: httpx.AsyncClient,
    before: dict[str, Any],
    raw: bytes,
    method: str,
    path: str,
    body: dict[str, Any],
    cid: str,
) -> None:
    url, _ = fill(path, body, cid)
    resp = await api.request(method, url, content=raw, headers={"Content-Type": "application/json"})
    assert_problem(resp, 400)
    assert await state(api) == before


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=WRITE_IDS)
async def test_empty_body_answers_422(
    api: httpx.AsyncClient, before: dict[str, Any], method: str, path: str, body: dict[str, Any]
) -> None:
    url, _ = fill(path, body, "cust-1")
    resp = await api.request(method, url, content=b"", headers={"Content-Type": "application/json"})
    # Even where every attribute is optional (a new profile), the body itself is required.
    errors = assert_validation_problem(resp)
    assert errors[0]["loc"] == ["body"]
    assert await state(api) == before


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=WRITE_IDS)
async def test_json_array_instead_of_object_answers_422(
    api: httpx.AsyncClient, before: dict[str, Any], method: str, path: str, body: dict[str, Any]
) -> None:
    url, filled = fill(path, body, "cust-1")
    assert_validation_problem(await api.request(method, url, json=[filled]))
    assert await state(api) == before


async def test_non_json_content_type_is_refused(
    api: httpx.AsyncClient, before: dict[str, Any]
) -> None:
    resp = await api.put(
        "/v1/profiles/cust-1/fields/email",
        content=json.dumps({**FIELD, "value": "b@example.com"}).encode(),
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status_code in (415, 422), resp.text
    assert_problem(resp, resp.status_code)
    assert await state(api) == before


# -- wrong types and values in bodies ----------------------------------------------------

BAD_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("value_type", {"value_type": "colour"}),
    ("source", {"source": "guess"}),
    ("confidence", {"confidence": "high"}),
    ("confidence", {"confidence": 1.5}),
    ("confidence", {"confidence": -0.1}),
    ("verified", {"verified": "maybe"}),
    ("requires_confirmation", {"requires_confirmation": "perhaps"}),
    ("source_metadata", {"source_metadata": "not an object"}),
    ("expires_at", {"expires_at": "tomorrow"}),
    ("source_item_type", {"source_item_id": "x", "source_item_type": "planet"}),
    ("source_item_id", {"source_item_id": "not-a-uuid", "source_item_type": "profile_field"}),
    ("source_item_id", {"source_item_id": str(uuid.uuid4())}),
    ("source_item_type", {"source_item_type": "session"}),
    ("source_session_id", {"source_session_id": "has\ttab"}),
    ("source_session_id", {"source_session_id": "x" * 257}),
    ("source_metadata", {"source_metadata": {"note": "line\nbreak"}}),
    ("source_metadata", {"source_metadata": {"nested": {"a": "b"}}}),
    ("source_scenario_id", {"source_scenario_id": ".dot"}),
    ("source_step_id", {"source_step_id": 12}),
    ("agent_id", {"agent_id": "x" * 129}),
    ("verification_method", {"verification_method": ""}),
    ("value", {"value": None}),
]


@pytest.mark.parametrize(
    ("key", "change"), BAD_FIELDS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BAD_FIELDS)]
)
@pytest.mark.parametrize("cid", ["cust-1", "fresh"])
async def test_field_with_a_wrong_attribute_answers_422_and_writes_nothing(
    api: httpx.AsyncClient, before: dict[str, Any], key: str, change: dict[str, Any], cid: str
) -> None:
    body = {**FIELD, "value": "b@example.com", **change}
    errors = assert_validation_problem(await api.put(f"/v1/profiles/{cid}/fields/email", json=body))
    assert any(key in e["loc"] or e["loc"] == ["body"] for e in errors), errors
    assert await state(api) == before


@pytest.mark.parametrize("missing", ["value", "source"])
async def test_field_without_a_required_attribute_answers_422(
    api: httpx.AsyncClient, before: dict[str, Any], missing: str
) -> None:
    body = {k: v for k, v in FIELD.items() if k != missing}
    errors = assert_validation_problem(await api.put("/v1/profiles/fresh/fields/email", json=body))
    assert ["body", missing] in [e["loc"] for e in errors]
    assert await state(api) == before


BAD_ASSETS: list[tuple[str, dict[str, Any]]] = [
    ("size_bytes", {"size_bytes": -1}),
    ("size_bytes", {"size_bytes": "big"}),
    ("size_bytes", {"size_bytes": 2**63}),
    ("mime_type", {"mime_type": "pdf"}),
    ("name", {"name": ""}),
    ("asset_type", {"asset_type": ""}),
    ("storage_path", {"storage_path": 7}),
    ("retention_policy", {"retention_policy": ""}),
    ("expires_at", {"expires_at": "soon"}),
    ("source_item_type", {"source_item_id": "x", "source_item_type": "planet"}),
    ("source_item_id", {"source_item_id": "nope", "source_item_type": "profile_asset"}),
]


@pytest.mark.parametrize(
    ("key", "change"), BAD_ASSETS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BAD_ASSETS)]
)
async def test_asset_with_a_wrong_attribute_answers_422_and_writes_nothing(
    api: httpx.AsyncClient, before: dict[str, Any], key: str, change: dict[str, Any]
) -> None:
    for cid in ("cust-1", "fresh"):
        resp = await api.post(f"/v1/profiles/{cid}/assets", json={**ASSET, **change})
        errors = assert_validation_problem(resp)
        assert any(key in e["loc"] or e["loc"] == ["body"] for e in errors), errors
    assert await state(api) == before


@pytest.mark.parametrize(
    "missing", ["name", "asset_type", "storage_provider", "storage_path", "mime_type", "checksum"]
)
async def test_asset_without_a_required_attribute_answers_422(
    api: httpx.AsyncClient, before: dict[str, Any], missing: str
) -> None:
    body = {k: v for k, v in ASSET.items() if k != missing}
    errors = assert_validation_problem(await api.post("/v1/profiles/cust-1/assets", json=body))
    assert ["body", missing] in [e["loc"] for e in errors]
    assert await state(api) == before


BAD_IDENTITIES: list[dict[str, Any]] = [
    {"channel": "WhatsApp", "channel_user_id": "+1"},
    {"channel": "1sms", "channel_user_id": "+1"},
    {"channel": "sms-x", "channel_user_id": "+1"},
    {"channel": "a" * 33, "channel_user_id": "+1"},
    {"channel": "", "channel_user_id": "+1"},
    {"channel": "sms", "channel_user_id": ""},
    {"channel": "sms", "channel_user_id": "x" * 257},
    {"channel": "sms", "channel_user_id": "+1", "verified": "maybe"},
    {"channel": "sms", "channel_user_id": "+1", "primary": "first"},
    {"channel": "sms"},
]


@pytest.mark.parametrize("identity", BAD_IDENTITIES)
async def test_bad_channel_identity_answers_422_and_links_nothing(
    api: httpx.AsyncClient, before: dict[str, Any], identity: dict[str, Any]
) -> None:
    for cid in ("cust-1", "fresh"):
        resp = await api.post(f"/v1/profiles/{cid}/channel-identities", json=identity)
        assert_validation_problem(resp)
    created = await api.post(
        "/v1/profiles", json={"customer_id": "fresh", "channel_identities": [identity]}
    )
    assert_validation_problem(created)
    assert await state(api) == before


@pytest.mark.parametrize(
    "body",
    [{}, {"granted": "maybe"}, {"granted": None}, {"granted": True, "source_session_id": "a\tb"}],
)
async def test_bad_consent_answers_422_and_changes_nothing(
    api: httpx.AsyncClient, before: dict[str, Any], body: dict[str, Any]
) -> None:
    for cid in ("cust-1", "fresh"):
        assert_validation_problem(
            await api.put(f"/v1/profiles/{cid}/consents/marketing", json=body)
        )
    assert await state(api) == before


@pytest.mark.parametrize(
    "body", [{}, {"source_customer_id": "has space"}, {"source_customer_id": 7}]
)
async def test_bad_merge_request_answers_422_and_changes_nothing(
    api: httpx.AsyncClient, before: dict[str, Any], body: dict[str, Any]
) -> None:
    assert_validation_problem(await api.post("/v1/profiles/cust-1/merge", json=body))
    assert await state(api) == before


@pytest.mark.parametrize(
    "body",
    [
        {"customer_id": "has space"},
        {"customer_id": ""},
        {"customer_id": 12},
        {"channel_identities": "sms:+1"},
        {"customer_id": "fresh", "channel_identities": [IDENTITY] * 101},
    ],
)
async def test_bad_new_profile_answers_422_and_creates_nothing(
    api: httpx.AsyncClient, before: dict[str, Any], body: dict[str, Any]
) -> None:
    assert_validation_problem(await api.post("/v1/profiles", json=body))
    assert await state(api) == before


# -- identifiers in paths and bodies -----------------------------------------------------

BAD_CUSTOMER_IDS = ["has space", "x" * 129, ".leading-dot", "-leading-dash", "café", "a,b"]
BAD_FIELD_NAMES = ["Uppercase", "x" * 51, "1leading_digit", "e-mail", "naïve"]
BAD_CHANNELS = ["WhatsApp", "1sms", "a" * 33, "sms-x", "_sms"]


@pytest.mark.parametrize("cid", BAD_CUSTOMER_IDS)
async def test_bad_customer_id_answers_422_on_every_route(
    api: httpx.AsyncClient, before: dict[str, Any], cid: str
) -> None:
    reads = [
        ("GET", f"/v1/profiles/{cid}"),
        ("GET", f"/v1/profiles/{cid}/fields/email"),
        ("GET", f"/v1/profiles/{cid}/fields/email/history"),
        ("GET", f"/v1/profiles/{cid}/assets"),
        ("DELETE", f"/v1/profiles/{cid}/fields/email"),
    ]
    for method, url in reads:
        assert_validation_problem(await api.request(method, url))
    for method, path, body in WRITES:
        url, filled = fill(path, body, cid)
        assert_validation_problem(await api.request(method, url, json=filled))
    merge_from_bad = await api.post("/v1/profiles/cust-1/merge", json={"source_customer_id": cid})
    assert_validation_problem(merge_from_bad)
    assert await state(api) == before


@pytest.mark.parametrize("cid", ["x" * 128, "A", "a.b:c@d+e-f_g"])
async def test_customer_ids_at_the_edges_of_the_pattern_are_accepted(
    api: httpx.AsyncClient, cid: str
) -> None:
    resp = await api.post("/v1/profiles", json={"customer_id": cid})
    assert resp.status_code == 201, resp.text
    assert resp.json()["customer_id"] == cid
    assert (await api.get(f"/v1/profiles/{cid}")).json()["customer_id"] == cid


@pytest.mark.parametrize("name", BAD_FIELD_NAMES)
async def test_bad_field_name_answers_422(
    api: httpx.AsyncClient, before: dict[str, Any], name: str
) -> None:
    base = f"/v1/profiles/cust-1/fields/{name}"
    assert_validation_problem(await api.put(base, json=FIELD))
    assert_validation_problem(await api.put(f"/v1/profiles/fresh/fields/{name}", json=FIELD))
    assert_validation_problem(await api.get(base))
    assert_validation_problem(await api.get(f"{base}/history"))
    assert_validation_problem(await api.delete(base))
    assert_validation_problem(await api.put(f"/v1/profiles/cust-1/consents/{name}", json=CONSENT))
    assert await state(api) == before


@pytest.mark.parametrize("name", ["x" * 50, "_private", "a1_b2"])
async def test_field_names_at_the_edges_of_the_pattern_are_accepted(
    api: httpx.AsyncClient, name: str
) -> None:
    resp = await api.put(f"/v1/profiles/cust-1/fields/{name}", json=FIELD)
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == name


@pytest.mark.parametrize("channel", BAD_CHANNELS)
async def test_bad_channel_in_by_channel_path_answers_422(
    api: httpx.AsyncClient, channel: str
) -> None:
    assert_validation_problem(await api.get(f"/v1/profiles/by-channel/{channel}/+1"))


async def test_too_long_channel_user_id_in_path_answers_422(api: httpx.AsyncClient) -> None:
    assert_validation_problem(await api.get(f"/v1/profiles/by-channel/sms/{'x' * 257}"))


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/assets/not-a-uuid"),
        ("DELETE", "/v1/assets/not-a-uuid"),
        ("GET", "/v1/lineage/not-a-uuid"),
        ("GET", "/v1/profiles/cust-1?include=everything"),
        ("GET", "/v1/profiles/cust-1/assets?include=everything"),
    ],
)
async def test_bad_ids_and_query_values_answer_422(
    api: httpx.AsyncClient, before: dict[str, Any], method: str, url: str
) -> None:
    assert_validation_problem(await api.request(method, url))
    assert await state(api) == before


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/nothing-here"),
        ("GET", "/nothing-here"),
        ("GET", "/v1/profiles/cust-1/fields"),
        ("GET", "/v1/profiles/cust-1/fields/email/history/extra"),
        ("GET", "/v1/profiles/by-channel/sms"),
        ("GET", "/v1/profiles/by-channel/sms/+1/extra"),
        ("PUT", "/v1/profiles/cust-1/fields/"),
        ("GET", "/v1/assets"),
        ("GET", "/v1/lineage"),
        ("GET", "/v2/profiles/cust-1"),
    ],
)
async def test_a_path_no_route_matches_answers_404_problem(
    api: httpx.AsyncClient, method: str, url: str
) -> None:
    assert_problem(await api.request(method, url), 404)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("DELETE", "/v1/profiles/cust-1"),
        ("PATCH", "/v1/profiles/cust-1/fields/email"),
        ("POST", "/v1/profiles/cust-1/fields/email"),
        ("PUT", "/v1/lineage/00000000-0000-0000-0000-000000000000"),
    ],
)
async def test_a_method_the_route_lacks_answers_405_problem(
    api: httpx.AsyncClient, before: dict[str, Any], method: str, url: str
) -> None:
    resp = await api.request(method, url, json=FIELD)
    assert_problem(resp, 405)
    assert "allow" in resp.headers
    assert await state(api) == before


# -- unknown keys -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=WRITE_IDS)
async def test_unknown_key_in_a_body_answers_422_and_changes_nothing(
    api: httpx.AsyncClient, before: dict[str, Any], method: str, path: str, body: dict[str, Any]
) -> None:
    url, filled = fill(path, body, "cust-1")
    errors = assert_validation_problem(await api.request(method, url, json={**filled, "colour": 1}))
    assert [e["loc"] for e in errors] == [["body", "colour"]]
    assert await state(api) == before


async def test_unknown_key_inside_a_nested_identity_answers_422(
    api: httpx.AsyncClient, before: dict[str, Any]
) -> None:
    body = {"customer_id": "fresh", "channel_identities": [{**IDENTITY, "nickname": "x"}]}
    errors = assert_validation_problem(await api.post("/v1/profiles", json=body))
    assert errors[0]["loc"] == ["body", "channel_identities", 0, "nickname"]
    assert await state(api) == before


@pytest.mark.parametrize("typo", ["Value", "sourceItemId", "confidance", "verifed"])
async def test_misspelt_field_attribute_is_not_silently_dropped(
    api: httpx.AsyncClient, before: dict[str, Any], typo: str
) -> None:
    body = {**FIELD, "value": "b@example.com", typo: "x"}
    assert_validation_problem(await api.put("/v1/profiles/cust-1/fields/email", json=body))
    assert await state(api) == before


# -- values storage cannot hold ---------------------------------------------------------


async def send_ascii_json(
    api: httpx.AsyncClient, method: str, url: str, body: dict[str, Any]
) -> httpx.Response:
    """Send JSON with \\u escapes, so lone surrogates travel as valid JSON text."""
    raw = json.dumps(body, ensure_ascii=True).encode()
    return await api.request(method, url, content=raw, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    "change",
    [
        {"value": "nul\u0000byte"},
        {"value": {"k": "nul\u0000byte"}},
        {"value": {"nul\u0000key": 1}},
        {"source_metadata": {"note": "nul\u0000byte"}},
        {"verification_method": "otp\u0000"},
        {"value": "lone \ud800 surrogate"},
        {"verification_method": "lone \udfff surrogate"},
    ],
    ids=["value", "nested", "key", "metadata", "text", "surrogate", "surrogate-text"],
)
async def test_unstorable_text_in_a_field_is_refused_not_a_500(
    api: httpx.AsyncClient, before: dict[str, Any], change: dict[str, Any]
) -> None:
    body = {**FIELD, **change}
    resp = await send_ascii_json(api, "PUT", "/v1/profiles/cust-1/fields/email", body)
    assert resp.status_code in (400, 422), resp.text
    assert_problem(resp, resp.status_code)
    assert await state(api) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/profiles/cust-1/assets", {**ASSET, "name": "nul\u0000name"}),
        ("/v1/profiles/cust-1/assets", {**ASSET, "checksum": "lone \ud800"}),
        ("/v1/profiles/cust-1/channel-identities", {"channel": "sms", "channel_user_id": "\u0000"}),
    ],
    ids=["asset-nul", "asset-surrogate", "identity-nul"],
)
async def test_unstorable_text_elsewhere_is_refused_not_a_500(
    api: httpx.AsyncClient, before: dict[str, Any], path: str, body: dict[str, Any]
) -> None:
    resp = await send_ascii_json(api, "POST", path, body)
    assert resp.status_code in (400, 422), resp.text
    assert_problem(resp, resp.status_code)
    assert await state(api) == before


@pytest.mark.parametrize(
    "raw",
    [
        b'{"value": NaN, "source": "user_provided"}',
        b'{"value": Infinity, "source": "user_provided"}',
        b'{"value": 1e999, "source": "user_provided"}',
        b'{"value": 1, "source": "user_provided", "confidence": NaN}',
        b'{"value": 1, "source": "user_provided", "confidence": 1e999}',
    ],
)
async def test_non_finite_numbers_are_refused_not_a_500(
    api: httpx.AsyncClient, before: dict[str, Any], raw: bytes
) -> None:
    resp = await api.put(
        "/v1/profiles/cust-1/fields/email",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code in (400, 422), resp.text
    assert_problem(resp, resp.status_code)
    assert await state(api) == before


async def test_absurdly_deep_json_is_refused_not_a_500(
    api: httpx.AsyncClient, before: dict[str, Any]
) -> None:
    depth = 100_000
    raw = b'{"source": "user_provided", "value": ' + b"[" * depth + b"]" * depth + b"}"
    resp = await api.put(
        "/v1/profiles/cust-1/fields/email",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code in (400, 422), resp.text
    assert_problem(resp, resp.status_code)
    assert await state(api) == before


# -- body size ----------------------------------------------------------------------------


def padded_field(total: int) -> bytes:
    """A valid field body of exactly `total` bytes."""
    empty = json.dumps({"value": "", "source": "user_provided"}).encode()
    return json.dumps({"value": "x" * (total - len(empty)), "source": "user_provided"}).encode()


async def chunks(raw: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """Stream a body in pieces (httpx sends it chunked, with no Content-Length)."""
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


async def test_body_of_exactly_the_limit_is_accepted(api: httpx.AsyncClient) -> None:
    # A value itself is limited to 64 KiB: the rest of the body is JSON whitespace.
    value = padded_field(64 * 1024)
    raw = value + b" " * (LIMIT - len(value))
    assert len(raw) == LIMIT
    resp = await api.put(
        "/v1/profiles/cust-1/fields/note",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 201, resp.text[:200]
    stored = (await api.get("/v1/profiles/cust-1/fields/note")).json()["value"]
    assert len(stored) == 64 * 1024 - len(padded_field(0))


@pytest.mark.parametrize("size", [LIMIT + 1, 3 * LIMIT])
@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("cid", ["cust-1", "fresh"])
async def test_body_over_the_limit_answers_413_and_writes_nothing(
    api: httpx.AsyncClient, before: dict[str, Any], size: int, streamed: bool, cid: str
) -> None:
    raw = padded_field(size)
    headers = {"Content-Type": "application/json"}
    url = f"/v1/profiles/{cid}/fields/email"
    if streamed:
        resp = await api.put(url, content=chunks(raw), headers=headers)
        assert "content-length" not in resp.request.headers
        assert resp.request.headers["transfer-encoding"] == "chunked"
    else:
        resp = await api.put(url, content=raw, headers=headers)
        assert resp.request.headers["content-length"] == str(size)
    body = assert_problem(resp, 413)
    assert "1048576" in body["detail"]
    assert await state(api) == before


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_oversized_asset_and_profile_bodies_answer_413(
    api: httpx.AsyncClient, before: dict[str, Any], streamed: bool
) -> None:
    headers = {"Content-Type": "application/json"}
    asset = json.dumps({**ASSET, "storage_path": "x" * LIMIT}).encode()
    profile = json.dumps(
        {"customer_id": "fresh", "channel_identities": [IDENTITY] * 30_000}
    ).encode()
    for url, raw in (("/v1/profiles/cust-1/assets", asset), ("/v1/profiles", profile)):
        assert len(raw) > LIMIT
        content: bytes | AsyncIterator[bytes] = chunks(raw) if streamed else raw
        assert_problem(await api.post(url, content=content, headers=headers), 413)
    assert await state(api) == before
