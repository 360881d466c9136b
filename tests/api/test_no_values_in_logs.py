"""No values in logs (issue 13.6): the API suite's kinds of writes (fields, assets,
consents, identities, merges, imports, definitions, erasure, export, purpose reads), the
failures among them (validation, conflicts, bad lineage, malformed bodies) and the
sweeps, with every log line captured at DEBUG, as `ccv serve` writes them: none of the
values written, and none of the customer ids or channel handles, appears anywhere."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api_support import ASSET
from ccvault.api.app import create_app
from ccvault.jobs.sweeps import apply_history_retention, detect_orphaned_items, expire_stale_fields
from ccvault.runtime import Vault
from log_support import captured_logs, json_lines

# Client-side loggers: the test's own HTTP client logs the URLs it requests.
CLIENT_LOGGERS = {"httpx", "httpcore"}


class Secrets:
    """Unique strings, each found nowhere but in what this test sends."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, label: str) -> str:
        value = f"{label}{uuid.uuid4().hex[:12]}"
        self.seen.append(value)
        return value


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every line at DEBUG, JSON as in production."""
    with captured_logs("DEBUG") as stream:
        yield stream


@pytest.fixture
async def client(
    vault: Vault, logs: io.StringIO, tenant: tuple[uuid.UUID, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """The tenant's client on an app built after logging was captured."""
    app = create_app(vault.settings, vault=vault)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": f"Bearer {tenant[1]}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://vault", headers=headers
    ) as opened:
        yield opened


async def test_no_value_or_customer_id_reaches_a_log_line(
    client: httpx.AsyncClient,
    vault: Vault,
    logs: io.StringIO,
    tenant: tuple[uuid.UUID, str],
    admin_headers: dict[str, str],
) -> None:
    s = Secrets()
    cid, other, alias = s("cid"), s("other"), s("alias")
    agent = "log-agent"
    calls: list[tuple[str, httpx.Response]] = []

    async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        resp = await client.request(method, path, **kwargs)
        calls.append((f"{method} {path}", resp))
        return resp

    def field(value: Any, **extra: Any) -> dict[str, Any]:
        return {"value": value, "source": "user_provided", **extra}

    # Profiles and identities (a conflict too).
    handle = s("handle")
    identity = {"channel": "email", "channel_user_id": handle}
    await call("POST", "/v1/profiles", json={"customer_id": cid, "channel_identities": [identity]})
    await call(
        "POST", "/v1/profiles", json={"customer_id": other, "channel_identities": [identity]}
    )
    await call(
        "POST",
        f"/v1/profiles/{cid}/channel-identities",
        json={"channel": "sms", "channel_user_id": s("+4915")},
    )
    await call("GET", f"/v1/profiles/by-channel/email/{handle}")
    # Definitions (strict validation, a regex, purposes) and field writes.
    await call(
        "PUT",
        f"/v1/agents/{agent}/field-definitions/code",
        json={
            "display_name": "Code",
            "value_type": "string",
            "validation_regex": "^[0-9]{4}$",
            "purposes": ["support"],
            "consent_type": "marketing",
        },
    )
    written = (
        await call("PUT", f"/v1/profiles/{cid}/fields/email", json=field(s("mail") + "@x.io"))
    ).json()
    await call("PUT", f"/v1/profiles/{cid}/fields/email", json=field(s("second") + "@x.io"))
    await call("PUT", f"/v1/profiles/{cid}/fields/code", json=field(s("badcode"), agent_id=agent))
    await call(
        "PUT", f"/v1/profiles/{cid}/fields/phone", json=field(s("notaphone"), value_type="phone")
    )
    await call(
        "PUT", f"/v1/profiles/{cid}/fields/born", json=field(s("notadate"), value_type="date")
    )
    await call("PUT", f"/v1/profiles/{cid}/fields/blob", json=field({"k": s("json")}))
    await call(
        "PUT",
        f"/v1/profiles/{cid}/fields/otp",
        json=field(s("otp"), expires_at=(datetime.now(UTC) - timedelta(seconds=1)).isoformat()),
    )
    await call(
        "PUT",
        f"/v1/profiles/{other}/fields/score",
        json=field(s("derived"), source_item_id=written["id"], source_item_type="profile_field"),
    )
    await call(
        "PUT",
        f"/v1/profiles/{cid}/fields/bad_source",
        json=field(
            s("nosource"), source_item_id=str(uuid.uuid4()), source_item_type="profile_field"
        ),
    )
    await call(
        "PUT",
        f"/v1/profiles/{cid}/fields/meta",
        json=field(s("meta"), source_session_id=s("session"), source_metadata={"k": s("metaval")}),
    )
    await call("PUT", f"/v1/profiles/{cid}/fields/email", content=f'{{"value": "{s("broken")}"')
    await call("PUT", f"/v1/profiles/{cid}/fields/{s('BadName')}", json=field(s("badname")))
    await call("PUT", f"/v1/profiles/{cid}/fields/big", json=field("x" * 100 + s("long")))
    await call("DELETE", f"/v1/profiles/{cid}/fields/meta")
    # Assets, consents, verification, merge.
    await call("POST", f"/v1/profiles/{cid}/assets", json=ASSET | {"storage_path": s("s3://p/")})
    await call("POST", f"/v1/profiles/{cid}/assets", json=ASSET | {"checksum": s("bad checksum ")})
    await call(
        "PUT",
        f"/v1/profiles/{cid}/consents/marketing",
        json={"granted": True, "source_session_id": s("consent-session")},
    )
    await call("PATCH", f"/v1/profiles/{cid}", json={"verification_level": s("level")})
    await call("PUT", f"/v1/profiles/{alias}/fields/nick", json=field(s("nick")))
    await call("POST", f"/v1/profiles/{cid}/merge", json={"source_customer_id": alias})
    await call("POST", f"/v1/profiles/{cid}/merge", json={"source_customer_id": cid})
    # Missing fields with context values; reads for purposes (a withheld field: 403).
    await call(
        "POST",
        f"/v1/profiles/{cid}/missing-fields",
        json={"agent_id": agent, "scenario_id": "s1", "context": {"amount": s("ctx")}},
    )
    await call("GET", f"/v1/profiles/{cid}/fields/code", params={"purpose": "marketing"})
    await call("GET", f"/v1/profiles/{cid}", params={"purpose": "support", "include": "history"})
    await call("GET", f"/v1/profiles/{cid}/context", params={"agent_id": agent, "format": "text"})
    # Import: good lines, a bad line, a malformed line.
    good = {"customer_id": s("imported"), "fields": {"tier": s("tier")}}
    bad = {
        "customer_id": s("imported-bad"),
        "fields": {"born": {"value": s("x"), "value_type": "date"}},
    }
    body = "\n".join([json.dumps(good), json.dumps(bad), "{" + s("notjson")]).encode()
    await call(
        "POST",
        "/v1/profiles/import",
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    # Export, then the sweeps (retention with a tenant that keeps a day), then erasure.
    await call("GET", f"/v1/profiles/{cid}/export")
    patched = await client.patch(
        f"/admin/tenants/{tenant[0]}", json={"history_retention_days": 1}, headers=admin_headers
    )
    assert patched.status_code == 200, patched.text
    async with vault.pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_fields SET collected_at = collected_at - interval '2 days'"
            " WHERE tenant_id = %s",
            (tenant[0],),
        )
    await expire_stale_fields(vault.profiles, tenant[0], pause=0)
    await detect_orphaned_items(vault.profiles, tenant[0], pause=0)
    assert (await apply_history_retention(vault.profiles, tenant[0], pause=0)).fields > 0
    await call("POST", f"/v1/profiles/{cid}/erase", json={"reason": "request #1"})
    await call("GET", f"/v1/profiles/{cid}")
    await call("POST", f"/v1/profiles/{cid}/erase")

    statuses = {status for _, r in calls for status in [r.status_code]}
    assert {200, 201, 204, 403, 404, 409, 422} <= statuses, [(c, r.status_code) for c, r in calls]
    server_lines = [line for line in json_lines(logs) if line.get("logger") not in CLIENT_LOGGERS]
    assert len(server_lines) >= len(calls)  # one access line per request at least
    text = "\n".join(json.dumps(line) for line in server_lines)
    leaked = [secret for secret in s.seen if secret in text]
    lines = [line for line in server_lines if any(x in json.dumps(line) for x in leaked)]
    assert leaked == [], lines[:5]
    assert tenant[1] not in text  # nor the API key
