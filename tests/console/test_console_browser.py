"""The console in a real browser (chromium through Playwright): every flow a person runs,
each outcome confirmed through the HTTP API. Screenshots of every page at 1280x800 go to
<basetemp>/console-screenshots."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import VIEWPORT, chromium_path, served
from playwright.async_api import Browser, Page, async_playwright, expect

from ccvault.config import Settings
from ccvault.domain.models import ValueType
from ccvault.extraction.models import SourceKind
from ccvault.extraction.plan import Suggestion
from ccvault.runtime import Vault
from ccvault.storage.scenarios import ScenarioStore

AGENT = "support-bot"


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go (printed once)."""
    where = tmp_path_factory.getbasetemp() / "console-screenshots"
    where.mkdir(exist_ok=True)
    print(f"\nconsole screenshots: {where}")
    return where


@pytest.fixture(scope="session")
def live(settings: Settings) -> AsyncIterator[str]:
    """The app served over real HTTP for the browser."""
    chromium_path()  # skip before starting anything when there is no browser
    with served(settings) as base:
        yield base


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One chromium for the whole session."""
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, live: str) -> AsyncIterator[Page]:
    """A fresh browser context (no cookies) at 1280x800, in a time zone not UTC."""
    context = await browser.new_context(
        base_url=live, viewport=VIEWPORT, timezone_id="Europe/Berlin", accept_downloads=True
    )
    context.set_default_timeout(10_000)
    opened = await context.new_page()
    yield opened
    await context.close()


async def _sign_in(page: Page, key: str) -> None:
    await page.goto("/console/")
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()


async def _ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


async def _seed_customer(api: httpx.AsyncClient) -> dict[str, str]:
    """ada (email written twice, an age band derived from it, identity, consent, asset)
    and bob; the ids of ada's items."""
    first = await api.put(
        "/v1/profiles/cust-ada/fields/email",
        json={"value": "ada@old.example", "source": "user_provided", "confidence": 0.9},
    )
    await _ok(first, 201)
    email = await _ok(
        await api.put(
            "/v1/profiles/cust-ada/fields/email",
            json={
                "value": "ada@example.com",
                "source": "user_provided",
                "verified": True,
                "verification_method": "email_link",
            },
        ),
        201,
    )
    band = await _ok(
        await api.put(
            "/v1/profiles/cust-ada/fields/age_band",
            json={
                "value": "30-39",
                "source": "llm_extracted",
                "confidence": 0.72,
                "source_item_id": email["id"],
                "source_item_type": "profile_field",
                "expires_at": "2031-01-01T00:00:00Z",
            },
        ),
        201,
    )
    await _ok(
        await api.post(
            "/v1/profiles/cust-ada/channel-identities",
            json={"channel": "whatsapp", "channel_user_id": "+4915112345678", "primary": True},
        ),
        201,
    )
    await _ok(await api.put("/v1/profiles/cust-ada/consents/marketing", json={"granted": True}))
    await _ok(
        await api.post(
            "/v1/profiles/cust-ada/assets",
            json={
                "name": "passport",
                "asset_type": "document",
                "storage_provider": "s3",
                "storage_path": "bucket/ada/passport.pdf",
                "mime_type": "application/pdf",
                "size_bytes": 48213,
                "checksum": "sha256:abc",
            },
        ),
        201,
    )
    await _ok(
        await api.put(
            "/v1/profiles/cust-bob/fields/name", json={"value": "Bob", "source": "human_entered"}
        ),
        201,
    )
    return {"email": email["id"], "age_band": band["id"]}


async def test_sign_in_search_profile_history_lineage_delete_erase_and_sign_out(
    page: Page, api: httpx.AsyncClient, tenant: tuple[uuid.UUID, str], shots: Path
) -> None:
    ids = await _seed_customer(api)

    await page.goto("/console/")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    await page.screenshot(path=shots / "01-sign-in.png")
    await _sign_in(page, "ccv_wrong-key")
    await expect(page.get_by_role("alert")).to_contain_text("not accepted")
    await page.screenshot(path=shots / "02-sign-in-refused.png")
    await _sign_in(page, tenant[1])
    await expect(page.get_by_role("heading", name="Customers")).to_be_visible()
    await expect(page.get_by_role("link", name="cust-bob")).to_be_visible()
    await page.screenshot(path=shots / "03-customers.png")

    # Search by id prefix, then by channel identity.
    await page.get_by_label("Customer id starts with").fill("cust-a")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_role("link", name="cust-ada")).to_be_visible()
    await expect(page.get_by_role("link", name="cust-bob")).to_have_count(0)
    listed = await _ok(await api.get("/v1/profiles", params={"q": "cust-a"}))
    assert [i["customer_id"] for i in listed["items"]] == ["cust-ada"]
    await page.get_by_label("Channel", exact=True).fill("whatsapp")
    await page.get_by_label("Id on that channel").fill("+4915112345678")
    await page.get_by_role("button", name="Find").click()
    await expect(page.get_by_role("heading", name="cust-ada")).to_be_visible()

    # The profile: values, status, verification, and times in the viewer's zone.
    row = page.locator("#field-email")
    await expect(row).to_contain_text("ada@example.com")
    await expect(row).to_contain_text("verified")
    await expect(row.locator("time").first).to_contain_text("GMT+1")
    profile = await _ok(await api.get("/v1/profiles/cust-ada"))
    assert profile["fields"]["email"]["value"] == "ada@example.com"
    assert profile["fields"]["email"]["verified"] is True
    await page.screenshot(path=shots / "04-profile.png")
    await page.screenshot(path=shots / "04-profile-full.png", full_page=True)

    # History: both versions of the email, newest first.
    await page.locator("#history-email summary").click()
    history = page.locator("#history-email li")
    await expect(history).to_have_count(2)
    await expect(history.first).to_contain_text("ada@example.com")
    await expect(history.nth(1)).to_contain_text("superseded")
    await page.locator("#history-email").scroll_into_view_if_needed()
    await page.screenshot(path=shots / "05-history.png")
    versions = await _ok(await api.get("/v1/profiles/cust-ada/fields/email/history"))
    assert [v["value"] for v in versions["items"]] == ["ada@example.com", "ada@old.example"]

    # Lineage of the age band: its box and its source's, each a link.
    await page.locator("#field-age_band").get_by_role("link", name="Lineage").click()
    nodes = page.locator("svg a.node")
    await expect(nodes).to_have_count(2)
    await expect(page.locator("svg a.node.focus")).to_have_attribute(
        "href", f"/console/lineage/{ids['age_band']}"
    )
    await page.screenshot(path=shots / "06-lineage.png")
    walked = await _ok(
        await api.get(f"/v1/lineage/{ids['age_band']}", params={"direction": "ancestors"})
    )
    assert [e["item_id"] for e in walked["chain"]] == [ids["age_band"], ids["email"]]
    await page.locator(f'svg a.node[href="/console/lineage/{ids["email"]}"]').click()
    await expect(page.get_by_role("heading", name="Lineage of email")).to_be_visible()
    await expect(page.locator("svg a.node")).to_have_count(2)

    # Delete the age band from the profile.
    await page.goto("/console/customers/cust-ada")
    await page.locator("#field-age_band").get_by_role("button", name="Delete").click()
    await expect(page.locator("#field-age_band")).to_have_count(0)
    assert (await api.get("/v1/profiles/cust-ada/fields/age_band")).status_code == 404

    # Export downloads the access-request document.
    async with page.expect_download() as downloading:
        await page.get_by_role("button", name="Export").click()
    download = await downloading.value
    saved = await download.path()
    exported = json.loads(await asyncio.to_thread(saved.read_text))
    assert exported["customer_id"] == "cust-ada"

    # Erase bob behind the typed confirmation.
    await page.goto("/console/customers/cust-bob")
    await page.get_by_role("button", name="Erase").click()
    erase = page.get_by_role("button", name="Erase")
    await expect(erase).to_be_disabled()
    await page.get_by_label("Type the customer id to confirm").fill("cust-bob")
    await expect(erase).to_be_enabled()
    await page.screenshot(path=shots / "07-erase.png")
    await erase.click()
    await expect(page.get_by_role("heading", name="Erased")).to_be_visible()
    await page.screenshot(path=shots / "08-erased.png")
    assert (await api.get("/v1/profiles/cust-bob")).status_code == 404

    # Audit: the console's own reads and the delete are there, as the API lists them.
    await page.goto("/console/customers/cust-ada")
    await page.get_by_role("button", name="Audit entries").click()
    await expect(page.get_by_role("heading", name="Audit")).to_be_visible()
    await expect(page.locator("tbody tr", has_text="field.delete")).to_have_count(1)
    await page.screenshot(path=shots / "09-audit.png")
    entries = await _ok(await api.get("/v1/profiles/cust-ada/audit", params={"limit": 200}))
    actions = {e["action"] for e in entries["items"]}
    assert {"field.delete", "profile.read", "profile.export"} <= actions

    await page.goto("/console/customers/nobody-here")
    await page.screenshot(path=shots / "09-not-found-page.png")

    # Sign out: the pages send the browser back to the sign-in form.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("API key")).to_be_visible()
    await page.goto("/console/customers")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()


async def _seed_agent(api: httpx.AsyncClient, vault: Vault, tenant_id: uuid.UUID) -> list[str]:
    """An agent with a scenario, two suggestions and four pending requirements (oldest
    first); their ids."""
    await _ok(
        await api.put(
            f"/v1/agents/{AGENT}/field-definitions/email",
            json={"display_name": "Email", "value_type": "email", "required_verification": True},
        ),
        201,
    )
    await _ok(
        await api.put(
            f"/v1/agents/{AGENT}/scenarios/refund",
            json={
                "name": "Refund",
                "description": "Before refunding an order, confirm the customer's email and "
                "order number; for orders over 500 EUR also the IBAN and a phone number.",
            },
        )
    )
    suggestions = [
        Suggestion(
            name=name,
            display_name=display,
            value_type=ValueType.string,
            description="mentioned by the refund scenario",
            collection_prompt=f"What is your {display}?",
        )
        for name, display in (("order_number", "Order number"), ("iban", "IBAN"))
    ]
    await ScenarioStore(vault.pool).finish_extraction(
        SourceKind.scenario, tenant_id, AGENT, "refund", "refund", [], suggestions
    )
    ids = []
    async with vault.pool.connection() as conn:
        for n, name in enumerate(["order_number", "iban", "phone", "email"]):
            req_id = uuid.uuid4()
            await conn.execute(
                """INSERT INTO scenario_field_requirements (
                       id, tenant_id, agent_id, scenario_id, field_name, required_level,
                       fallback_action, confidence, needs_human_review, review_status,
                       origin, collection_order, created_at)
                   VALUES (%s, %s, %s, 'refund', %s, 'soft', 'ask', 0.6, true, 'pending',
                           'extracted', %s, now() + make_interval(secs => %s))""",
                (req_id, tenant_id, AGENT, name, n, n),
            )
            ids.append(str(req_id))
    return ids


async def _review_status(api: httpx.AsyncClient) -> dict[str, str]:
    listed = await _ok(await api.get(f"/v1/agents/{AGENT}/scenarios/refund/requirements"))
    return {r["id"]: r["review_status"] for r in listed["items"]}


async def test_review_by_click_and_keyboard_and_suggestions_activated_and_dismissed(
    page: Page,
    api: httpx.AsyncClient,
    vault: Vault,
    tenant: tuple[uuid.UUID, str],
    shots: Path,
) -> None:
    ids = await _seed_agent(api, vault, tenant[0])
    await _sign_in(page, tenant[1])
    await page.get_by_role("link", name="Review queue").click()
    items = page.locator("li.review-item")
    await expect(items).to_have_count(4)
    await expect(items.first).to_contain_text("order_number")
    await page.screenshot(path=shots / "10-review-queue.png")

    # By click.
    await items.nth(0).get_by_role("button", name="Approve").click()
    await expect(page.locator("li.review-done")).to_have_count(1)
    await items.nth(0).get_by_role("button", name="Reject").click()  # now the iban item
    await expect(page.locator("li.review-done")).to_have_count(2)
    status = await _review_status(api)
    assert (status[ids[0]], status[ids[1]]) == ("approved", "rejected")

    # By keyboard: j to the second (email), a; then r on what remains (phone).
    await page.reload()
    await expect(items).to_have_count(2)
    await expect(items.first).to_be_focused()
    await page.keyboard.press("j")
    await expect(items.nth(1)).to_be_focused()
    await page.keyboard.press("a")
    await expect(page.locator("li.review-done")).to_have_count(1)
    await page.keyboard.press("r")
    await expect(page.locator("li.review-done")).to_have_count(2)
    status = await _review_status(api)
    assert (status[ids[3]], status[ids[2]]) == ("approved", "rejected")
    await page.screenshot(path=shots / "11-review-decided.png")

    # Suggestions: activate one, dismiss the other.
    await page.get_by_role("link", name="Agents").click()
    await page.screenshot(path=shots / "12-agents.png")
    await page.get_by_role("link", name=AGENT).click()
    await expect(page.get_by_role("heading", name=AGENT)).to_be_visible()
    await page.screenshot(path=shots / "13-agent.png")
    await page.screenshot(path=shots / "13-agent-full.png", full_page=True)
    await page.locator("tr", has_text="order_number").get_by_role("button", name="Activate").click()
    await page.locator("tr", has_text="iban").get_by_role("button", name="Dismiss").click()
    await expect(page.get_by_text("No suggestions waiting")).to_be_visible()
    active = await _ok(await api.get(f"/v1/agents/{AGENT}/field-definitions"))
    assert sorted(d["name"] for d in active["items"]) == ["email", "order_number"]
    suggested = await _ok(
        await api.get(f"/v1/agents/{AGENT}/field-definitions", params={"status": "suggested"})
    )
    assert suggested["items"] == []


async def test_the_operator_sees_tenants_keys_and_jobs(
    page: Page, settings: Settings, tenant: tuple[uuid.UUID, str], shots: Path
) -> None:
    assert settings.admin_api_key is not None
    await _sign_in(page, settings.admin_api_key.get_secret_value())
    await expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    await page.screenshot(path=shots / "14-admin-tenants.png")
    await page.goto(f"/console/admin/tenants/{tenant[0]}")
    await page.get_by_label("Label of a new key").fill("console test")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.locator("code.secret")).to_contain_text("ccv_")
    await page.screenshot(path=shots / "15-admin-tenant.png")
    await page.get_by_role("link", name="Jobs").click()
    await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    await page.screenshot(path=shots / "16-admin-jobs.png")
