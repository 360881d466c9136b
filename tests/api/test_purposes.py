"""Purpose-aware reads (DESIGN §8 "Privacy"): definitions name the purposes their field may
be read for and the consent a read needs; `?purpose=` on profile, field and context reads
leaves out what that purpose may not see, on cache hits and misses alike; a tenant may
require every read to name its purpose."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

AGENT = "kyc-bot"
PROFILE = "/v1/profiles/c1"


async def _define(api: httpx.AsyncClient, name: str, **extra: Any) -> None:
    body = {"display_name": name.replace("_", " ").title(), "value_type": "string", **extra}
    resp = await api.put(f"/v1/agents/{AGENT}/field-definitions/{name}", json=body)
    assert resp.status_code in (200, 201), resp.text


async def _write(api: httpx.AsyncClient, name: str, value: str) -> None:
    body = {"value": value, "source": "user_provided", "agent_id": AGENT}
    resp = await api.put(f"{PROFILE}/fields/{name}", json=body)
    assert resp.status_code == 201, resp.text


async def _consent(api: httpx.AsyncClient, consent_type: str, granted: bool) -> None:
    resp = await api.put(f"{PROFILE}/consents/{consent_type}", json={"granted": granted})
    assert resp.status_code == 200, resp.text


async def _profile(api: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    resp = await api.get(PROFILE, params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


@pytest.fixture
async def profile(api: httpx.AsyncClient) -> None:
    """c1 with a field for onboarding only, one needing marketing consent, one for all."""
    await _define(api, "income", purposes=["onboarding", "credit.check"])
    await _define(api, "phone_for_marketing", consent_type="marketing_phone")
    await _define(api, "first_name")
    await _write(api, "income", "3200 EUR")
    await _write(api, "phone_for_marketing", "+4930123456")
    await _write(api, "first_name", "Ada")


@pytest.mark.usefixtures("profile")
async def test_a_read_for_a_purpose_sees_only_what_that_purpose_may(
    api: httpx.AsyncClient,
) -> None:
    marketing = await _profile(api, purpose="marketing")
    assert set(marketing["fields"]) == {"first_name"}
    assert marketing["withheld_fields"] == [
        {"name": "income", "reason": "purpose"},
        {"name": "phone_for_marketing", "reason": "consent"},
    ]
    onboarding = await _profile(api, purpose="onboarding")
    assert set(onboarding["fields"]) == {"first_name", "income"}
    assert onboarding["withheld_fields"] == [{"name": "phone_for_marketing", "reason": "consent"}]
    assert "3200 EUR" not in str(marketing)


@pytest.mark.usefixtures("profile")
async def test_without_a_purpose_the_read_is_as_before(api: httpx.AsyncClient) -> None:
    for _ in range(2):  # a miss, then a cache hit
        whole = await _profile(api)
        assert set(whole["fields"]) == {"first_name", "income", "phone_for_marketing"}
        assert "withheld_fields" not in whole
    history = await _profile(api, include="history")
    assert "withheld_fields" not in history
    assert set(history["field_history"]) == {"first_name", "income", "phone_for_marketing"}


@pytest.mark.usefixtures("profile")
async def test_purposes_never_share_a_view_across_cache_hits(api: httpx.AsyncClient) -> None:
    seen = []
    for purpose in ["marketing", "onboarding", None, "marketing", "onboarding", None]:
        params = {"purpose": purpose} if purpose else {}
        seen.append(sorted((await _profile(api, **params))["fields"]))
    assert seen[:3] == seen[3:]
    assert seen[0] == ["first_name"]
    assert seen[1] == ["first_name", "income"]
    assert seen[2] == ["first_name", "income", "phone_for_marketing"]


@pytest.mark.usefixtures("profile")
async def test_a_granted_consent_opens_the_field_and_a_revoked_one_closes_it(
    api: httpx.AsyncClient,
) -> None:
    await _consent(api, "marketing_phone", True)
    assert "phone_for_marketing" in (await _profile(api, purpose="marketing"))["fields"]
    await _consent(api, "marketing_phone", False)
    after = await _profile(api, purpose="marketing")
    assert "phone_for_marketing" not in after["fields"]
    assert {"name": "phone_for_marketing", "reason": "consent"} in after["withheld_fields"]


@pytest.mark.usefixtures("profile")
async def test_history_read_for_a_purpose_leaves_out_withheld_versions(
    api: httpx.AsyncClient,
) -> None:
    await _write(api, "income", "3400 EUR")
    body = await _profile(api, include="history", purpose="marketing")
    assert set(body["field_history"]) == {"first_name"}
    assert "3200 EUR" not in str(body) and "3400 EUR" not in str(body)


@pytest.mark.usefixtures("profile")
async def test_a_withheld_field_read_is_403_naming_why(api: httpx.AsyncClient) -> None:
    resp = await api.get(f"{PROFILE}/fields/income", params={"purpose": "marketing"})
    assert resp.status_code == 403
    assert "does not list that purpose" in resp.json()["detail"]
    assert "3200" not in resp.text
    resp = await api.get(f"{PROFILE}/fields/phone_for_marketing", params={"purpose": "support"})
    assert resp.status_code == 403
    assert "consent" in resp.json()["detail"]
    ok = await api.get(f"{PROFILE}/fields/income", params={"purpose": "credit.check"})
    assert ok.status_code == 200
    assert ok.json()["value"] == "3200 EUR"


@pytest.mark.usefixtures("profile")
async def test_the_context_view_withholds_for_its_purpose(api: httpx.AsyncClient) -> None:
    params = {"agent_id": AGENT, "purpose": "marketing"}
    view = (await api.get(f"{PROFILE}/context", params=params)).json()
    assert [f["name"] for f in view["facts"]] == ["first_name"]
    assert [w["name"] for w in view["withheld_fields"]] == ["income", "phone_for_marketing"]
    text = (await api.get(f"{PROFILE}/context", params={**params, "format": "text"})).text
    assert "Withheld for this read: income (purpose), phone_for_marketing (consent)" in text
    assert "3200" not in text


async def test_bad_purposes_are_refused(api: httpx.AsyncClient) -> None:
    resp = await api.put(
        f"/v1/agents/{AGENT}/field-definitions/x",
        json={"display_name": "X", "value_type": "string", "purposes": ["Has Spaces"]},
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["loc"][:2] == ["body", "purposes"]
    resp = await api.put(
        f"/v1/agents/{AGENT}/field-definitions/x",
        json={"display_name": "X", "value_type": "string", "consent_type": "No-Way"},
    )
    assert resp.status_code == 422
    assert (await api.get(PROFILE, params={"purpose": "UPPER"})).status_code == 422


async def test_a_tenant_that_requires_purposes_refuses_reads_without_one(
    http: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await http.post(
        "/admin/tenants",
        json={"name": f"strict-{uuid.uuid4().hex[:12]}", "require_purpose": True},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["require_purpose"] is True
    key = {"Authorization": f"Bearer {created.json()['api_key']}"}
    put = await http.put(
        f"{PROFILE}/fields/tier", json={"value": "gold", "source": "user_provided"}, headers=key
    )
    assert put.status_code == 201
    for path in (
        PROFILE,
        f"{PROFILE}/fields/tier",
        f"{PROFILE}/context?agent_id=a",
        f"{PROFILE}/export",
    ):
        for _ in range(2):  # the hot read answers the same as the route
            resp = await http.get(path, headers=key)
            assert resp.status_code == 422, path
            assert resp.json()["errors"][0]["loc"] == ["query", "purpose"]
    assert (await http.get(PROFILE, params={"purpose": "support"}, headers=key)).status_code == 200
    export = await http.get(f"{PROFILE}/export", params={"purpose": "support"}, headers=key)
    assert export.status_code == 200

    tenant_id = created.json()["tenant_id"]
    patched = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"require_purpose": False}, headers=admin_headers
    )
    assert patched.status_code == 200
    assert patched.json()["require_purpose"] is False
    assert patched.json()["validation_mode"] == created.json()["validation_mode"]
    assert (await http.get(PROFILE, headers=key)).status_code == 200
    empty = await http.patch(f"/admin/tenants/{tenant_id}", json={}, headers=admin_headers)
    assert empty.status_code == 422


@pytest.mark.usefixtures("profile")
async def test_an_export_for_a_purpose_leaves_out_every_version_of_withheld_fields(
    api: httpx.AsyncClient,
) -> None:
    await _write(api, "income", "3400 EUR")  # a second version: history is filtered too
    resp = await api.get(f"{PROFILE}/export", params={"purpose": "marketing"})
    assert resp.status_code == 200, resp.text
    export = resp.json()
    assert set(export["profile"]["fields"]) == {"first_name"}
    assert set(export["profile"]["field_history"]) == {"first_name"}
    assert export["profile"]["withheld_fields"] == [
        {"name": "income", "reason": "purpose"},
        {"name": "phone_for_marketing", "reason": "consent"},
    ]
    for value in ("3200 EUR", "3400 EUR", "+4930123456"):
        assert value not in resp.text

    onboarding = (await api.get(f"{PROFILE}/export", params={"purpose": "onboarding"})).json()
    assert set(onboarding["profile"]["field_history"]) == {"first_name", "income"}
    assert len(onboarding["profile"]["field_history"]["income"]) == 2

    whole = (await api.get(f"{PROFILE}/export")).json()  # no purpose: as before
    assert "withheld_fields" not in whole["profile"]
    assert set(whole["profile"]["field_history"]) == {"first_name", "income", "phone_for_marketing"}
    assert (await api.get(f"{PROFILE}/export", params={"purpose": "UPPER"})).status_code == 422


# -- every purpose list x consent state, on uncached and cached reads ---------------------

PURPOSE_LISTS = {"any": [], "other": ["onboarding"], "listed": ["onboarding", "marketing"]}
CONSENTS = ["none required", "granted", "revoked", "absent"]


@pytest.mark.parametrize("consent", CONSENTS)
@pytest.mark.parametrize("purposes", list(PURPOSE_LISTS))
async def test_every_purpose_list_and_consent_state_on_every_read(
    api: httpx.AsyncClient, purposes: str, consent: str
) -> None:
    """A read for `marketing` of a field whose definition lists `purposes` and needs the
    `marketing_email` consent (unless none is required) in each state: the field is seen
    or withheld alike by the profile read (a miss, then a hit, then a hit after another
    purpose's read), the field read, the history read, the context view and the export."""
    consent_type = None if consent == "none required" else "marketing_email"
    await _define(api, "email", purposes=PURPOSE_LISTS[purposes], consent_type=consent_type)
    await _write(api, "email", "ada@example.com")
    if consent in ("granted", "revoked"):
        await _consent(api, "marketing_email", True)
    if consent == "revoked":
        await _consent(api, "marketing_email", False)

    if purposes == "other":
        expected: str | None = "purpose"
    elif consent in ("revoked", "absent"):
        expected = "consent"
    else:
        expected = None
    withheld = [] if expected is None else [{"name": "email", "reason": expected}]

    for read in range(3):  # uncached, cached, cached after another purpose's read
        if read == 2:
            assert "email" in (await _profile(api, purpose="onboarding"))["fields"] or (
                consent_type is not None and consent != "granted"
            )
        body = await _profile(api, purpose="marketing")
        assert ("email" in body["fields"]) is (expected is None), read
        assert body["withheld_fields"] == withheld, read
        assert ("ada@example.com" in str(body)) is (expected is None)
    history = await _profile(api, purpose="marketing", include="history")
    assert ("email" in history["field_history"]) is (expected is None)
    field = await api.get(f"{PROFILE}/fields/email", params={"purpose": "marketing"})
    assert field.status_code == (200 if expected is None else 403)
    params = {"agent_id": AGENT, "purpose": "marketing"}
    view = (await api.get(f"{PROFILE}/context", params=params)).json()
    assert [f["name"] for f in view["facts"]] == ([] if expected else ["email"])
    assert view["withheld_fields"] == withheld
    export = await api.get(f"{PROFILE}/export", params={"purpose": "marketing"})
    assert export.json()["profile"]["withheld_fields"] == withheld
    assert ("ada@example.com" in export.text) is (expected is None)
    # Without a purpose, the read is as in §4 whatever the definition says.
    assert "email" in (await _profile(api))["fields"]
