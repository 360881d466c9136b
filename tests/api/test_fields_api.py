"""Fields, assets and lineage over HTTP: versions, history, soft delete, sources, chains."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api_support import ASSET, assert_problem

FIELD_KEYS = {
    "id",
    "name",
    "value",
    "value_type",
    "status",
    "source",
    "source_item_id",
    "source_item_type",
    "source_metadata",
    "source_session_id",
    "source_scenario_id",
    "source_step_id",
    "confidence",
    "verified",
    "verification_method",
    "verified_at",
    "requires_confirmation",
    "collected_at",
    "updated_at",
    "expires_at",
    "superseded_by_id",
    "superseded_at",
    "deleted_at",
    "is_orphaned",
    "field_definition_id",
    "written_by",
}
ASSET_KEYS = {
    "id",
    "name",
    "asset_type",
    "storage_provider",
    "storage_path",
    "mime_type",
    "size_bytes",
    "checksum",
    "status",
    "source_item_id",
    "source_item_type",
    "derived_from_tool",
    "verified",
    "verification_result",
    "retention_policy",
    "uploaded_at",
    "expires_at",
    "superseded_by_id",
    "superseded_at",
    "deleted_at",
    "is_orphaned",
    "analysis_field_ids",
    "written_by",
}
CHAIN_KEYS = {"depth", "item_id", "item_type", "name", "status", "deleted_at", "source_item_id"}


def assert_validation_problem(resp: httpx.Response) -> list[dict[str, Any]]:
    """A 422 problem listing errors as {loc, msg, code}."""
    body = assert_problem(resp, 422)
    errors: list[dict[str, Any]] = body["errors"]
    assert errors
    assert all(e.keys() == {"loc", "msg", "code"} for e in errors)
    return errors


async def put_field(
    api: httpx.AsyncClient, cid: str, name: str, value: Any, **extra: Any
) -> dict[str, Any]:
    """Write a field version and return it."""
    body = {"value": value, "source": "user_provided", **extra}
    resp = await api.put(f"/v1/profiles/{cid}/fields/{name}", json=body)
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    created.pop("validation_warnings", None)
    return created


async def post_asset(api: httpx.AsyncClient, cid: str, **extra: Any) -> dict[str, Any]:
    """Add an asset version and return it."""
    resp = await api.post(f"/v1/profiles/{cid}/assets", json={**ASSET, **extra})
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def snapshot(api: httpx.AsyncClient, cid: str) -> dict[str, Any]:
    """The whole profile with history, to compare before and after a refused request."""
    resp = await api.get(f"/v1/profiles/{cid}", params={"include": "history"})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def derived_from(item: dict[str, Any], kind: str = "profile_field") -> dict[str, str]:
    """Body attributes naming `item` as the source."""
    return {"source_item_id": item["id"], "source_item_type": kind}


# -- write and read ---------------------------------------------------------------------


async def test_put_field_answers_201_with_the_full_field(api: httpx.AsyncClient) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    resp = await api.put(
        "/v1/profiles/cust-1/fields/email",
        json={
            "value": "ada@example.com",
            "value_type": "email",
            "source": "llm_extracted",
            "source_item_id": "sess-42",
            "source_item_type": "session",
            "source_metadata": {"model": "m1", "turn": 3},
            "source_session_id": "sess-42",
            "source_scenario_id": "onboarding",
            "source_step_id": "step-1",
            "confidence": 0.85,
            "verified": True,
            "verification_method": "otp",
            "expires_at": expires,
            "requires_confirmation": True,
        },
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    field = resp.json()
    assert field.keys() >= FIELD_KEYS
    assert field.keys() - FIELD_KEYS <= {"validation_warnings"}
    uuid.UUID(field["id"])
    assert field["name"] == "email"
    assert field["value"] == "ada@example.com"
    assert field["value_type"] == "email"
    assert field["status"] == "active"
    assert field["source"] == "llm_extracted"
    assert field["source_item_id"] == "sess-42"
    assert field["source_item_type"] == "session"
    assert field["source_metadata"] == {"model": "m1", "turn": 3}
    assert field["source_session_id"] == "sess-42"
    assert field["source_scenario_id"] == "onboarding"
    assert field["source_step_id"] == "step-1"
    assert field["confidence"] == 0.85
    assert field["verified"] is True
    assert field["verification_method"] == "otp"
    assert field["verified_at"] is not None
    assert field["requires_confirmation"] is True
    assert datetime.fromisoformat(field["expires_at"]) == datetime.fromisoformat(expires)
    assert field["collected_at"] is not None
    assert field["updated_at"] is not None
    assert field["superseded_by_id"] is None
    assert field["superseded_at"] is None
    assert field["deleted_at"] is None
    assert field["is_orphaned"] is False
    assert field["field_definition_id"] is None


async def test_put_field_defaults(api: httpx.AsyncClient) -> None:
    field = await put_field(api, "cust-1", "nickname", "Ada")
    assert field["value_type"] == "string"
    assert field["confidence"] == 1.0
    assert field["verified"] is False
    assert field["verified_at"] is None
    assert field["requires_confirmation"] is False
    assert field["source_metadata"] == {}
    assert field["source_item_id"] is None
    assert field["source_item_type"] is None
    assert field["expires_at"] is None


@pytest.mark.parametrize(
    ("value", "value_type"),
    [("text", "string"), (42, "number"), (1.5, "number"), (True, "boolean"), ({"a": 1}, "json")],
)
async def test_value_type_follows_the_json_value(
    api: httpx.AsyncClient, value: Any, value_type: str
) -> None:
    field = await put_field(api, "cust-1", "thing", value)
    assert field["value_type"] == value_type
    assert field["value"] == value
    assert (await api.get("/v1/profiles/cust-1/fields/thing")).json()["value"] == value


async def test_get_field_answers_the_active_version(api: httpx.AsyncClient) -> None:
    await put_field(api, "cust-1", "email", "a@example.com")
    latest = await put_field(api, "cust-1", "email", "b@example.com")
    resp = await api.get("/v1/profiles/cust-1/fields/email")
    assert resp.status_code == 200
    assert resp.json() == latest


async def test_get_absent_field_answers_404(api: httpx.AsyncClient) -> None:
    await put_field(api, "cust-1", "email", "a@example.com")
    assert_problem(await api.get("/v1/profiles/cust-1/fields/phone"), 404)
    assert_problem(await api.get("/v1/profiles/nobody/fields/email"), 404)


async def test_new_value_supersedes_the_previous_one(api: httpx.AsyncClient) -> None:
    first = await put_field(api, "cust-1", "email", "a@example.com")
    second = await put_field(api, "cust-1", "email", "b@example.com")
    assert second["id"] != first["id"]
    assert second["status"] == "active"
    history = (await api.get("/v1/profiles/cust-1/fields/email/history")).json()["items"]
    old = next(v for v in history if v["id"] == first["id"])
    assert old["status"] == "superseded"
    assert old["superseded_by_id"] == second["id"]
    assert old["superseded_at"] is not None
    assert old["value"] == "a@example.com"
    profile = (await api.get("/v1/profiles/cust-1")).json()
    assert profile["field_status_summary"]["active"] == 1
    assert profile["field_status_summary"]["superseded"] == 1


async def test_history_lists_every_version_newest_first(api: httpx.AsyncClient) -> None:
    ids = [(await put_field(api, "cust-1", "email", f"v{i}@example.com"))["id"] for i in range(3)]
    resp = await api.get("/v1/profiles/cust-1/fields/email/history")
    assert resp.status_code == 200
    body = resp.json()
    assert body.keys() == {"items"}
    assert [v["id"] for v in body["items"]] == ids[::-1]
    assert [v["status"] for v in body["items"]] == ["active", "superseded", "superseded"]
    assert all(v.keys() >= FIELD_KEYS for v in body["items"])


async def test_history_of_an_unknown_name_is_empty(api: httpx.AsyncClient) -> None:
    await put_field(api, "cust-1", "email", "a@example.com")
    resp = await api.get("/v1/profiles/cust-1/fields/phone/history")
    assert resp.status_code == 200
    assert resp.json() == {"items": []}


async def test_history_of_an_unknown_profile_answers_404(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/v1/profiles/nobody/fields/email/history"), 404)


# -- delete -------------------------------------------------------------------------------


async def test_delete_field_answers_204_then_404(api: httpx.AsyncClient) -> None:
    field = await put_field(api, "cust-1", "email", "a@example.com")
    first = await api.delete("/v1/profiles/cust-1/fields/email")
    assert first.status_code == 204
    assert first.content == b""
    assert_problem(await api.get("/v1/profiles/cust-1/fields/email"), 404)
    before = await snapshot(api, "cust-1")
    assert_problem(await api.delete("/v1/profiles/cust-1/fields/email"), 404)
    assert await snapshot(api, "cust-1") == before
    [kept] = (await api.get("/v1/profiles/cust-1/fields/email/history")).json()["items"]
    assert kept["id"] == field["id"]
    assert kept["deleted_at"] is not None
    assert kept["status"] == "active"
    assert kept["value"] == "a@example.com"
    assert "email" not in before["fields"]
    assert before["field_status_summary"] == {
        "active": 0,
        "superseded": 0,
        "expired": 0,
        "orphaned": 0,
    }


async def test_delete_of_an_absent_field_answers_404(api: httpx.AsyncClient) -> None:
    await put_field(api, "cust-1", "email", "a@example.com")
    before = await snapshot(api, "cust-1")
    assert_problem(await api.delete("/v1/profiles/cust-1/fields/phone"), 404)
    assert await snapshot(api, "cust-1") == before
    assert_problem(await api.delete("/v1/profiles/nobody/fields/email"), 404)
    assert_problem(await api.get("/v1/profiles/nobody"), 404)


async def test_write_after_delete_creates_a_new_active_version(api: httpx.AsyncClient) -> None:
    old = await put_field(api, "cust-1", "email", "a@example.com")
    assert (await api.delete("/v1/profiles/cust-1/fields/email")).status_code == 204
    new = await put_field(api, "cust-1", "email", "b@example.com")
    assert (await api.get("/v1/profiles/cust-1/fields/email")).json()["id"] == new["id"]
    history = (await api.get("/v1/profiles/cust-1/fields/email/history")).json()["items"]
    assert [v["id"] for v in history] == [new["id"], old["id"]]
    deleted = history[1]
    assert deleted["status"] == "active"
    assert deleted["deleted_at"] is not None
    assert deleted["superseded_by_id"] is None


async def test_delete_orphans_the_items_derived_from_it(api: httpx.AsyncClient) -> None:
    parent = await put_field(api, "cust-1", "raw_address", "1 rue de Paris")
    child = await put_field(api, "cust-1", "city", "Paris", **derived_from(parent))
    asset = await post_asset(api, "cust-1", **derived_from(parent))
    assert (await api.delete("/v1/profiles/cust-1/fields/raw_address")).status_code == 204
    [orphan] = (await api.get("/v1/profiles/cust-1/fields/city/history")).json()["items"]
    assert orphan["id"] == child["id"]
    assert orphan["status"] == "orphaned"
    assert orphan["is_orphaned"] is True
    assert orphan["deleted_at"] is None
    got_asset = (await api.get(f"/v1/assets/{asset['id']}")).json()
    assert got_asset["status"] == "orphaned"
    assert got_asset["is_orphaned"] is True
    summary = (await api.get("/v1/profiles/cust-1")).json()["field_status_summary"]
    assert summary == {"active": 0, "superseded": 0, "expired": 0, "orphaned": 1}


# -- sources ----------------------------------------------------------------------------


async def test_field_derived_from_a_field_records_its_source(api: httpx.AsyncClient) -> None:
    parent = await put_field(api, "cust-1", "raw_address", "1 rue de Paris")
    child = await put_field(api, "cust-1", "city", "Paris", **derived_from(parent))
    assert child["source_item_id"] == parent["id"]
    assert child["source_item_type"] == "profile_field"


@pytest.mark.parametrize("kind", ["profile_field", "profile_asset"])
async def test_unknown_source_item_answers_422_and_writes_nothing(
    api: httpx.AsyncClient, kind: str
) -> None:
    await put_field(api, "cust-1", "email", "a@example.com")
    before = await snapshot(api, "cust-1")
    body = {
        "value": "b@example.com",
        "source": "user_provided",
        "source_item_id": str(uuid.uuid4()),
        "source_item_type": kind,
    }
    errors = assert_validation_problem(await api.put("/v1/profiles/cust-1/fields/email", json=body))
    assert errors[0]["loc"][-1] == "source_item_id"
    assert await snapshot(api, "cust-1") == before
    assert_validation_problem(await api.put("/v1/profiles/fresh/fields/email", json=body))
    assert_problem(await api.get("/v1/profiles/fresh"), 404)
    asset = {**ASSET, "source_item_id": body["source_item_id"], "source_item_type": kind}
    assert_validation_problem(await api.post("/v1/profiles/cust-1/assets", json=asset))
    assert await snapshot(api, "cust-1") == before


async def test_source_of_the_wrong_kind_answers_422(api: httpx.AsyncClient) -> None:
    parent = await put_field(api, "cust-1", "raw_address", "1 rue de Paris")
    before = await snapshot(api, "cust-1")
    resp = await api.put(
        "/v1/profiles/cust-1/fields/city",
        json={"value": "Paris", "source": "llm_extracted", **derived_from(parent, "profile_asset")},
    )
    assert_validation_problem(resp)
    assert await snapshot(api, "cust-1") == before


async def test_deleted_source_answers_422_and_writes_nothing(api: httpx.AsyncClient) -> None:
    parent = await put_field(api, "cust-1", "raw_address", "1 rue de Paris")
    asset = await post_asset(api, "cust-1")
    assert (await api.delete("/v1/profiles/cust-1/fields/raw_address")).status_code == 204
    assert (await api.delete(f"/v1/assets/{asset['id']}")).status_code == 204
    before = await snapshot(api, "cust-1")
    for source in (derived_from(parent), derived_from(asset, "profile_asset")):
        field = {"value": "Paris", "source": "llm_extracted", **source}
        assert_validation_problem(await api.put("/v1/profiles/cust-1/fields/city", json=field))
        derived = {**ASSET, "name": "scan", **source}
        assert_validation_problem(await api.post("/v1/profiles/cust-1/assets", json=derived))
    assert await snapshot(api, "cust-1") == before
    assert (await api.get("/v1/profiles/cust-1/assets")).json() == {"items": []}


@pytest.mark.parametrize("kind", ["session", "tool", "external"])
async def test_outside_sources_are_not_checked(api: httpx.AsyncClient, kind: str) -> None:
    field = await put_field(
        api, "cust-1", "city", "Paris", source_item_id="anything-at-all", source_item_type=kind
    )
    assert field["source_item_id"] == "anything-at-all"
    assert field["source_item_type"] == kind
    assert field["status"] == "active"


async def test_an_orphan_is_still_a_valid_source(api: httpx.AsyncClient) -> None:
    parent = await put_field(api, "cust-1", "raw_address", "1 rue de Paris")
    child = await put_field(api, "cust-1", "city", "Paris", **derived_from(parent))
    await api.delete("/v1/profiles/cust-1/fields/raw_address")
    grandchild = await put_field(api, "cust-1", "country", "FR", **derived_from(child))
    assert grandchild["status"] == "active"
    assert grandchild["is_orphaned"] is False


# -- validation mode ---------------------------------------------------------------------


async def set_mode(
    http: httpx.AsyncClient, admin_headers: dict[str, str], tenant_id: uuid.UUID, mode: str
) -> None:
    """Switch the test tenant's validation mode through the admin API."""
    resp = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"validation_mode": mode}, headers=admin_headers
    )
    assert resp.status_code == 200, resp.text


async def test_strict_mode_refuses_a_value_not_of_its_declared_type(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
) -> None:
    await set_mode(http, admin_headers, tenant_id, "strict")
    await put_field(api, "cust-1", "email", "a@example.com", value_type="email")
    before = await snapshot(api, "cust-1")
    resp = await api.put(
        "/v1/profiles/cust-1/fields/email",
        json={"value": "not an email", "value_type": "email", "source": "user_provided"},
    )
    errors = assert_validation_problem(resp)
    assert errors[0]["code"] == "format_error"
    assert await snapshot(api, "cust-1") == before


async def test_warn_mode_keeps_the_value_and_reports_warnings(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
) -> None:
    await set_mode(http, admin_headers, tenant_id, "warn")
    resp = await api.put(
        "/v1/profiles/cust-1/fields/email",
        json={"value": "not an email", "value_type": "email", "source": "user_provided"},
    )
    assert resp.status_code == 201, resp.text
    field = resp.json()
    assert field["status"] == "active"
    assert field["value"] == "not an email"
    warnings = field["validation_warnings"]
    assert warnings
    assert all(w.keys() == {"loc", "msg", "code"} for w in warnings)
    assert warnings[0]["code"] == "format_error"


async def test_disabled_mode_keeps_the_value_without_warnings(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
) -> None:
    await set_mode(http, admin_headers, tenant_id, "disabled")
    resp = await api.put(
        "/v1/profiles/cust-1/fields/email",
        json={"value": "not an email", "value_type": "email", "source": "user_provided"},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "active"
    assert "validation_warnings" not in resp.json()


@pytest.mark.parametrize(
    ("value", "value_type", "stored"),
    [
        ("42", "integer", 42),
        ("2.5", "number", 2.5),
        ("yes", "boolean", True),
        ("Ada@EXAMPLE.COM", "email", "Ada@example.com"),
        ('{"a": [1, 2]}', "json", {"a": [1, 2]}),
    ],
)
async def test_values_are_stored_normalized_to_their_type(
    api: httpx.AsyncClient, value: Any, value_type: str, stored: Any
) -> None:
    field = await put_field(api, "cust-1", "thing", value, value_type=value_type)
    assert field["value"] == stored
    assert (await api.get("/v1/profiles/cust-1/fields/thing")).json()["value"] == stored


# -- assets -----------------------------------------------------------------------------


async def test_post_asset_answers_201_with_the_full_asset(api: httpx.AsyncClient) -> None:
    resp = await api.post("/v1/profiles/cust-1/assets", json={**ASSET, "derived_from_tool": "ocr"})
    assert resp.status_code == 201, resp.text
    asset = resp.json()
    assert asset.keys() == ASSET_KEYS
    uuid.UUID(asset["id"])
    for key, value in ASSET.items():
        assert asset[key] == value
    assert asset["derived_from_tool"] == "ocr"
    assert asset["status"] == "active"
    assert asset["retention_policy"] == "permanent"
    assert asset["uploaded_at"] is not None
    assert asset["verified"] is False
    assert asset["deleted_at"] is None
    assert asset["superseded_by_id"] is None
    assert asset["is_orphaned"] is False
    assert asset["analysis_field_ids"] == []


async def test_list_and_get_assets(api: httpx.AsyncClient) -> None:
    passport = await post_asset(api, "cust-1")
    bill = await post_asset(api, "cust-1", name="utility_bill", retention_policy="1y")
    assert bill["retention_policy"] == "1y"
    listed = await api.get("/v1/profiles/cust-1/assets")
    assert listed.status_code == 200
    assert listed.json().keys() == {"items"}
    assert {a["id"] for a in listed.json()["items"]} == {passport["id"], bill["id"]}
    one = await api.get(f"/v1/assets/{passport['id']}")
    assert one.status_code == 200
    assert one.json() == passport


async def test_same_name_asset_supersedes_the_previous_one(api: httpx.AsyncClient) -> None:
    old = await post_asset(api, "cust-1")
    new = await post_asset(api, "cust-1", storage_path="bucket/passport-v2.pdf")
    listed = (await api.get("/v1/profiles/cust-1/assets")).json()["items"]
    assert [a["id"] for a in listed] == [new["id"]]
    previous = (await api.get(f"/v1/assets/{old['id']}")).json()
    assert previous["status"] == "superseded"
    assert previous["superseded_by_id"] == new["id"]
    assert previous["superseded_at"] is not None
    everything = await api.get("/v1/profiles/cust-1/assets", params={"include": "history"})
    assert {a["id"] for a in everything.json()["items"]} == {old["id"], new["id"]}
    profile = (await api.get("/v1/profiles/cust-1")).json()
    assert [a["id"] for a in profile["assets"]] == [new["id"]]


async def test_list_assets_of_an_unknown_profile_answers_404(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/v1/profiles/nobody/assets"), 404)


async def test_get_unknown_asset_answers_404(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get(f"/v1/assets/{uuid.uuid4()}"), 404)
    assert_problem(await api.delete(f"/v1/assets/{uuid.uuid4()}"), 404)


async def test_delete_asset_answers_204_and_keeps_it_for_audit(api: httpx.AsyncClient) -> None:
    asset = await post_asset(api, "cust-1")
    resp = await api.delete(f"/v1/assets/{asset['id']}")
    assert resp.status_code == 204
    assert resp.content == b""
    kept = await api.get(f"/v1/assets/{asset['id']}")
    assert kept.status_code == 200
    assert kept.json()["deleted_at"] is not None
    assert kept.json()["status"] == "active"
    assert kept.json()["id"] == asset["id"]
    assert (await api.get("/v1/profiles/cust-1/assets")).json() == {"items": []}
    assert (await api.get("/v1/profiles/cust-1")).json()["assets"] == []
    history = (await api.get("/v1/profiles/cust-1/assets", params={"include": "history"})).json()
    assert [a["id"] for a in history["items"]] == [asset["id"]]
    before = await snapshot(api, "cust-1")
    assert_problem(await api.delete(f"/v1/assets/{asset['id']}"), 404)
    assert await snapshot(api, "cust-1") == before
    assert (await api.get(f"/v1/assets/{asset['id']}")).json() == kept.json()


async def test_delete_asset_orphans_fields_derived_from_it(api: httpx.AsyncClient) -> None:
    asset = await post_asset(api, "cust-1")
    field = await put_field(
        api, "cust-1", "passport_number", "X123", **derived_from(asset, "profile_asset")
    )
    listed = (await api.get(f"/v1/assets/{asset['id']}")).json()
    assert listed["analysis_field_ids"] == [field["id"]]
    assert (await api.delete(f"/v1/assets/{asset['id']}")).status_code == 204
    [orphan] = (await api.get("/v1/profiles/cust-1/fields/passport_number/history")).json()["items"]
    assert orphan["status"] == "orphaned"
    assert orphan["is_orphaned"] is True


# -- lineage ------------------------------------------------------------------------------


async def make_chain(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    """raw_address (field) -> scan (asset) -> city (field) -> country (field)."""
    root = await put_field(api, "cust-1", "raw_address", "1 rue de Paris")
    scan = await post_asset(api, "cust-1", name="scan", **derived_from(root))
    city = await put_field(api, "cust-1", "city", "Paris", **derived_from(scan, "profile_asset"))
    country = await put_field(api, "cust-1", "country", "FR", **derived_from(city))
    return [root, scan, city, country]


async def test_lineage_ancestors_walks_up_to_the_root(api: httpx.AsyncClient) -> None:
    root, scan, city, country = await make_chain(api)
    resp = await api.get(f"/v1/lineage/{country['id']}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body.keys() == {"item", "chain", "truncated", "cycle_detected"}
    assert body["item"] == country
    assert body["truncated"] is False
    assert body["cycle_detected"] is False
    assert all(e.keys() == CHAIN_KEYS for e in body["chain"])
    assert [(e["depth"], e["item_id"], e["item_type"], e["name"]) for e in body["chain"]] == [
        (0, country["id"], "profile_field", "country"),
        (1, city["id"], "profile_field", "city"),
        (2, scan["id"], "profile_asset", "scan"),
        (3, root["id"], "profile_field", "raw_address"),
    ]
    assert [e["source_item_id"] for e in body["chain"]] == [
        city["id"],
        scan["id"],
        root["id"],
        None,
    ]
    assert {e["status"] for e in body["chain"]} == {"active"}
    explicit = await api.get(f"/v1/lineage/{country['id']}", params={"direction": "ancestors"})
    assert explicit.json() == body


async def test_lineage_descendants_walks_down_from_the_root(api: httpx.AsyncClient) -> None:
    root, scan, city, country = await make_chain(api)
    resp = await api.get(f"/v1/lineage/{root['id']}", params={"direction": "descendants"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["item"] == root
    assert [(e["depth"], e["item_id"]) for e in body["chain"]] == [
        (0, root["id"]),
        (1, scan["id"]),
        (2, city["id"]),
        (3, country["id"]),
    ]
    assert body["truncated"] is False


async def test_lineage_item_can_be_an_asset(api: httpx.AsyncClient) -> None:
    _, scan, _, _ = await make_chain(api)
    body = (await api.get(f"/v1/lineage/{scan['id']}")).json()
    assert body["item"]["id"] == scan["id"]
    assert body["item"].keys() == ASSET_KEYS


@pytest.mark.parametrize(("max_depth", "length", "truncated"), [(0, 1, True), (1, 2, True)])
async def test_lineage_max_depth_truncates(
    api: httpx.AsyncClient, max_depth: int, length: int, truncated: bool
) -> None:
    *_, country = await make_chain(api)
    resp = await api.get(f"/v1/lineage/{country['id']}", params={"max_depth": max_depth})
    assert resp.status_code == 200
    body = resp.json()
    assert len(body["chain"]) == length
    assert body["chain"][0]["item_id"] == country["id"]
    assert body["truncated"] is truncated


async def test_lineage_depth_exactly_reached_is_not_truncated(api: httpx.AsyncClient) -> None:
    *_, country = await make_chain(api)
    body = (await api.get(f"/v1/lineage/{country['id']}", params={"max_depth": 3})).json()
    assert len(body["chain"]) == 4
    assert body["truncated"] is False


async def test_lineage_stops_at_ten_by_default(api: httpx.AsyncClient) -> None:
    item = await put_field(api, "cust-1", "f0", "v")
    for i in range(1, 13):
        item = await put_field(api, "cust-1", f"f{i}", "v", **derived_from(item))
    body = (await api.get(f"/v1/lineage/{item['id']}")).json()
    assert [e["depth"] for e in body["chain"]] == list(range(11))
    assert body["chain"][-1]["name"] == "f2"
    assert body["truncated"] is True
    assert body["cycle_detected"] is False


@pytest.mark.parametrize("max_depth", list(range(11)))
async def test_lineage_accepts_max_depth_0_to_10(api: httpx.AsyncClient, max_depth: int) -> None:
    field = await put_field(api, "cust-1", "email", "a@example.com")
    resp = await api.get(f"/v1/lineage/{field['id']}", params={"max_depth": max_depth})
    assert resp.status_code == 200
    assert [e["item_id"] for e in resp.json()["chain"]] == [field["id"]]
    assert resp.json()["truncated"] is False


@pytest.mark.parametrize(
    "params",
    [
        {"max_depth": "11"},
        {"max_depth": "-1"},
        {"max_depth": "ten"},
        {"direction": "sideways"},
    ],
)
async def test_lineage_refuses_bad_parameters(
    api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    field = await put_field(api, "cust-1", "email", "a@example.com")
    errors = assert_validation_problem(await api.get(f"/v1/lineage/{field['id']}", params=params))
    assert errors[0]["loc"] == ["query", next(iter(params))]


async def test_lineage_of_an_unknown_item_answers_404(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get(f"/v1/lineage/{uuid.uuid4()}"), 404)


async def test_lineage_shows_deleted_items_with_deleted_at(api: httpx.AsyncClient) -> None:
    parent = await put_field(api, "cust-1", "raw_address", "1 rue de Paris")
    child = await put_field(api, "cust-1", "city", "Paris", **derived_from(parent))
    await api.delete("/v1/profiles/cust-1/fields/raw_address")
    body = (await api.get(f"/v1/lineage/{child['id']}")).json()
    assert [e["item_id"] for e in body["chain"]] == [child["id"], parent["id"]]
    assert body["chain"][0]["status"] == "orphaned"
    assert body["chain"][1]["deleted_at"] is not None
    deleted = (await api.get(f"/v1/lineage/{parent['id']}")).json()
    assert deleted["item"]["deleted_at"] is not None


# -- expiry and concurrency ---------------------------------------------------------------


async def test_a_past_expires_at_is_never_read_as_current(api: httpx.AsyncClient) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    kept = await put_field(api, "cust-1", "email", "a@example.com")
    stale = await put_field(api, "cust-1", "phone", "+33600000001", expires_at=past)
    assert_problem(await api.get("/v1/profiles/cust-1/fields/phone"), 404)
    profile = (await api.get("/v1/profiles/cust-1")).json()
    assert profile["fields"].keys() == {"email"}
    assert profile["fields"]["email"]["id"] == kept["id"]
    assert profile["field_status_summary"]["expired"] == 1
    assert profile["field_status_summary"]["active"] == 1
    [version] = (await api.get("/v1/profiles/cust-1/fields/phone/history")).json()["items"]
    assert version["id"] == stale["id"]
    assert version["status"] == "expired"


async def test_a_new_value_supersedes_an_expired_one(api: httpx.AsyncClient) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    old = await put_field(api, "cust-1", "phone", "+33600000001", expires_at=past)
    new = await put_field(api, "cust-1", "phone", "+33600000002")
    history = (await api.get("/v1/profiles/cust-1/fields/phone/history")).json()["items"]
    assert [(v["id"], v["status"]) for v in history] == [
        (new["id"], "active"),
        (old["id"], "superseded"),
    ]
    assert history[1]["superseded_by_id"] == new["id"]


async def test_a_cached_profile_does_not_outlive_an_expiry(api: httpx.AsyncClient) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    await put_field(api, "cust-1", "otp", "123456", expires_at=soon)
    assert "otp" in (await api.get("/v1/profiles/cust-1")).json()["fields"]
    assert "otp" in (await api.get("/v1/profiles/cust-1")).json()["fields"]
    await asyncio.sleep(1.5)
    assert "otp" not in (await api.get("/v1/profiles/cust-1")).json()["fields"]
    assert_problem(await api.get("/v1/profiles/cust-1/fields/otp"), 404)


async def test_a_datetime_without_offset_is_read_as_utc(api: httpx.AsyncClient) -> None:
    field = await put_field(api, "cust-1", "email", "a@example.com", expires_at="2030-01-01T12:00")
    assert datetime.fromisoformat(field["expires_at"]) == datetime(2030, 1, 1, 12, tzinfo=UTC)


async def test_verified_at_given_is_kept(api: httpx.AsyncClient) -> None:
    field = await put_field(
        api,
        "cust-1",
        "email",
        "a@example.com",
        verified=True,
        verified_at="2025-05-05T05:05:05+00:00",
    )
    assert datetime.fromisoformat(field["verified_at"]) == datetime(2025, 5, 5, 5, 5, 5, tzinfo=UTC)


async def test_concurrent_writes_to_one_field_leave_one_active_version(
    api: httpx.AsyncClient,
) -> None:
    writes = [
        api.put(
            "/v1/profiles/cust-1/fields/counter",
            json={"value": i, "source": "tool_result"},
        )
        for i in range(20)
    ]
    answers = await asyncio.gather(*writes)
    assert [r.status_code for r in answers] == [201] * 20
    history = (await api.get("/v1/profiles/cust-1/fields/counter/history")).json()["items"]
    assert {v["id"] for v in history} == {r.json()["id"] for r in answers}
    active = [v for v in history if v["status"] == "active"]
    assert len(active) == 1
    assert active[0]["id"] == history[0]["id"]
    assert (await api.get("/v1/profiles/cust-1/fields/counter")).json()["id"] == active[0]["id"]
    superseded_by = {v["superseded_by_id"] for v in history if v["status"] == "superseded"}
    assert len(superseded_by) == 19
    assert superseded_by <= {v["id"] for v in history}


async def test_concurrent_writes_to_a_new_profile_all_succeed(api: httpx.AsyncClient) -> None:
    writes = [
        api.put(f"/v1/profiles/fresh/fields/f{i}", json={"value": i, "source": "tool_result"})
        for i in range(10)
    ]
    answers = await asyncio.gather(*writes)
    assert [r.status_code for r in answers] == [201] * 10
    profile = (await api.get("/v1/profiles/fresh")).json()
    assert profile["fields"].keys() == {f"f{i}" for i in range(10)}
