"""The console over HTTP: sign-in, CSRF, CSP, tenant isolation, the sign-in limit, and
CCV_CONSOLE=off."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from ccvault.api.app import create_app
from ccvault.runtime import Vault
from console_support import csrf_of, sign_in


async def _customer(api: httpx.AsyncClient, customer_id: str = "c-1") -> str:
    """A customer with an email field (written through the API); the field's id."""
    answer = await api.put(
        f"/v1/profiles/{customer_id}/fields/email",
        json={"value": "ada@example.com", "source": "user_provided"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _assert_csp(answer: httpx.Response) -> None:
    csp = answer.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "http" not in csp  # no other origin


async def test_a_wrong_key_is_refused_and_the_right_one_signs_in(
    web: httpx.AsyncClient, tenant: tuple[uuid.UUID, str]
) -> None:
    refused = await sign_in(web, "ccv_not-a-key")
    assert refused.status_code == 401
    assert "not accepted" in refused.text
    assert (await web.get("/console/customers")).headers["location"] == "/console/sign-in"
    accepted = await sign_in(web, tenant[1])
    assert accepted.status_code == 303
    assert accepted.headers["location"] == "/console/customers"
    cookie = accepted.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Path=/console" in cookie
    assert tenant[1] not in cookie  # the key travels encrypted
    assert (await web.get("/console/customers")).status_code == 200


async def test_the_cookie_is_secure_behind_https(
    vault: Vault, tenant: tuple[uuid.UUID, str]
) -> None:
    transport = httpx.ASGITransport(app=create_app(vault=vault))
    async with httpx.AsyncClient(transport=transport, base_url="https://vault") as client:
        answer = await sign_in(client, tenant[1])
    assert "secure" in answer.headers["set-cookie"].lower()


async def test_customers_are_listed_and_searched(
    signed_in: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    await _customer(api, "alpha-1")
    await _customer(api, "beta-1")
    listed = await signed_in.get("/console/customers")
    assert "alpha-1" in listed.text and "beta-1" in listed.text
    searched = await signed_in.get("/console/customers", params={"q": "alp"})
    assert "alpha-1" in searched.text and "beta-1" not in searched.text
    linked = await api.post(
        "/v1/profiles/beta-1/channel-identities",
        json={"channel": "whatsapp", "channel_user_id": "+4915100000"},
    )
    assert linked.status_code == 201, linked.text
    found = await signed_in.get(
        "/console/customers", params={"channel": "whatsapp", "channel_user_id": "+4915100000"}
    )
    assert found.status_code == 303
    assert found.headers["location"] == "/console/customers/beta-1"


async def test_a_post_without_the_csrf_token_is_refused(
    signed_in: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    await _customer(api)
    refused = await signed_in.post("/console/customers/c-1/fields/email/delete")
    assert refused.status_code == 403
    wrong = await signed_in.post(
        "/console/customers/c-1/fields/email/delete", data={"csrf_token": "forged"}
    )
    assert wrong.status_code == 403
    assert (await api.get("/v1/profiles/c-1/fields/email")).status_code == 200
    page = await signed_in.get("/console/customers/c-1")
    deleted = await signed_in.post(
        "/console/customers/c-1/fields/email/delete", data={"csrf_token": csrf_of(page)}
    )
    assert deleted.status_code == 303
    assert (await api.get("/v1/profiles/c-1/fields/email")).status_code == 404


async def test_every_console_answer_carries_the_csp(
    web: httpx.AsyncClient, tenant: tuple[uuid.UUID, str], api: httpx.AsyncClient
) -> None:
    field_id = await _customer(api)
    answers = [
        await web.get("/console"),
        await web.get("/console/"),
        await web.get("/console/sign-in"),
        await web.get("/console/customers"),  # redirect to sign in
        await web.post("/console/sign-in", data={"api_key": "x"}),  # no token: 403
        await web.get("/console/static/console.css"),
        await web.get("/console/static/htmx.min.js"),
    ]
    await sign_in(web, tenant[1])
    answers += [
        await web.get("/console/customers"),
        await web.get("/console/customers/c-1"),
        await web.get("/console/customers/nobody"),
        await web.get("/console/customers/bad%20id"),
        await web.get(f"/console/lineage/{field_id}"),
        await web.get("/console/agents"),
        await web.get("/console/review"),
        await web.get("/console/audit", params={"customer_id": "c-1"}),
        await web.get("/console/no-such-page"),
        await web.get("/console/admin/tenants"),
    ]
    statuses = sorted({a.status_code for a in answers})
    assert statuses == [200, 303, 307, 403, 404, 422]
    for answer in answers:
        _assert_csp(answer)
        assert answer.headers["x-frame-options"] == "DENY"


async def test_another_tenants_customer_is_not_found(
    web: httpx.AsyncClient, api: httpx.AsyncClient, other_key: str
) -> None:
    field_id = await _customer(api, "mine-1")
    await sign_in(web, other_key)
    assert (await web.get("/console/customers/mine-1")).status_code == 404
    assert (await web.get(f"/console/lineage/{field_id}")).status_code == 404
    assert "mine-1" not in (await web.get("/console/customers")).text
    page = await web.get("/console/customers")
    refused = await web.post(
        "/console/customers/mine-1/fields/email/delete", data={"csrf_token": csrf_of(page)}
    )
    assert refused.status_code == 404
    assert (await api.get("/v1/profiles/mine-1/fields/email")).status_code == 200


async def test_sign_in_attempts_are_limited_per_address(web: httpx.AsyncClient) -> None:
    page = await web.get("/console/sign-in")
    token = csrf_of(page)
    codes = [
        (
            await web.post("/console/sign-in", data={"api_key": "no", "csrf_token": token})
        ).status_code
        for _ in range(11)
    ]
    assert codes == [401] * 10 + [429]


async def test_sign_out_ends_the_session(signed_in: httpx.AsyncClient) -> None:
    page = await signed_in.get("/console/customers")
    out = await signed_in.post("/console/sign-out", data={"csrf_token": csrf_of(page)})
    assert out.status_code == 303
    assert (await signed_in.get("/console/customers")).status_code == 303


async def test_the_admin_key_sees_tenants_and_jobs_and_a_tenant_key_does_not(
    web: httpx.AsyncClient, tenant: tuple[uuid.UUID, str], vault: Vault
) -> None:
    assert vault.settings.admin_api_key is not None
    await sign_in(web, tenant[1])
    assert (await web.get("/console/admin/tenants")).status_code == 403
    await sign_in(web, vault.settings.admin_api_key.get_secret_value())
    tenants = await web.get("/console/admin/tenants")
    assert tenants.status_code == 200
    assert str(tenant[0]) in tenants.text
    keys = await web.get(f"/console/admin/tenants/{tenant[0]}")
    assert keys.status_code == 200 and "Create key" in keys.text
    assert (await web.get("/console/admin/jobs")).status_code == 200
    assert (await web.get("/console/customers")).status_code == 403


@pytest.mark.parametrize("path", ["/console", "/console/", "/console/sign-in"])
async def test_the_console_can_be_switched_off(vault: Vault, path: str) -> None:
    settings = vault.settings.model_copy(update={"console": False})
    transport = httpx.ASGITransport(app=create_app(settings, vault=vault))
    async with httpx.AsyncClient(transport=transport, base_url="http://vault") as client:
        assert (await client.get(path)).status_code == 404


async def test_console_reads_are_audited_and_the_audit_page_lists_them(
    signed_in: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    await _customer(api, "aud-1")
    assert (await signed_in.get("/console/customers/aud-1")).status_code == 200
    page = await signed_in.get("/console/audit", params={"customer_id": "aud-1"})
    assert page.status_code == 200
    assert "profile.read" in page.text and "field.write" in page.text
    listed = (await api.get("/v1/profiles/aud-1/audit")).json()["items"]
    assert [e["action"] for e in listed][:2] == ["profile.read", "field.write"]
    assert "aud-1" not in str(listed)
    assert listed[0]["request_id"]  # the id the console request was given


async def test_customers_are_paged(signed_in: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    for n in range(30):
        await _customer(api, f"pg-{n:02d}")
    first = await signed_in.get("/console/customers")
    assert first.text.count('href="/console/customers/pg-') == 25
    found = re.search(r'href="(/console/customers\?q=&amp;cursor=[^"]+)"', first.text)
    assert found, "no Next page link"
    second = await signed_in.get(found[1].replace("&amp;", "&"))
    assert second.text.count('href="/console/customers/pg-') == 5
    seen = set(re.findall(r'href="/console/customers/(pg-\d+)"', first.text + second.text))
    assert len(seen) == 30


async def test_a_tenant_that_requires_purposes_is_read_for_the_console_purpose(
    web: httpx.AsyncClient, vault: Vault
) -> None:
    created = await vault.services.tenants.create(
        f"purposeful-{uuid.uuid4().hex[:8]}", require_purpose=True
    )
    headers = {"Authorization": f"Bearer {created.api_key}"}
    transport = httpx.ASGITransport(app=create_app(vault=vault))
    async with httpx.AsyncClient(transport=transport, base_url="http://vault") as api:
        definition = await api.put(
            "/v1/agents/bot/field-definitions/iban",
            json={"display_name": "IBAN", "value_type": "string", "purposes": ["billing"]},
            headers=headers,
        )
        assert definition.status_code == 201, definition.text
        for name, agent in (("iban", "bot"), ("city", None)):
            written = await api.put(
                f"/v1/profiles/p-1/fields/{name}",
                json={"value": "x", "source": "user_provided", "agent_id": agent},
                headers=headers,
            )
            assert written.status_code == 201, written.text
        assert (await api.get("/v1/profiles/p-1", headers=headers)).status_code == 422
    await sign_in(web, created.api_key)
    page = await web.get("/console/customers/p-1")
    assert page.status_code == 200
    assert 'id="field-city"' in page.text and 'id="field-iban"' not in page.text
    assert "Withheld from this purpose" in page.text
    billing = await web.get("/console/customers/p-1", params={"purpose": "billing"})
    assert 'id="field-iban"' in billing.text
    history = await web.get("/console/customers/p-1/history")
    assert history.status_code == 200 and "history-city" in history.text
