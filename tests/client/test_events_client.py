"""The client's change feed and webhooks against the live vault, and `ccv events tail`
following the feed in a terminal."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from ccvault.client import AsyncVault, Vault
from ccvault.client.errors import NotFound
from serve_support import CCV, clean_env


def test_the_blocking_client_pages_and_iterates_the_feed(svault: Vault) -> None:
    written = svault.fields.put("ana", "city", value="Lisbon", source="user_provided")
    svault.fields.put("ana", "phone", value="+351910000000", source="user_provided")
    page = svault.events.list(limit=2)
    assert [e.type for e in page.items] == ["profile.created", "field.written"]
    assert page.items[1].data == {"id": str(written.id), "name": "city"}
    rest = svault.events.list(after=page.next_cursor)
    assert [e.data.get("name") for e in rest.items] == ["phone"]
    everything = list(svault.events.iter(limit=1, types=["field.written"]))
    assert [e.data["name"] for e in everything] == ["city", "phone"]


async def test_the_async_client_manages_webhooks(avault: AsyncVault) -> None:
    hook = await avault.webhooks.create(
        "https://93.184.216.34/hook", secret="a-long-secret", types=["field.written"]
    )
    assert hook.types == ["field.written"]
    assert [h.id for h in await avault.webhooks.list()] == [hook.id]
    assert await avault.webhooks.deliveries(hook.id) == []
    await avault.webhooks.delete(hook.id)
    try:
        await avault.webhooks.delete(hook.id)
    except NotFound:
        pass
    else:
        raise AssertionError("a second delete must be NotFound")
    seen = [e.type async for e in avault.events.iter()]
    assert seen == []


def test_ccv_events_tail_follows_the_feed(live: str, key: str, svault: Vault) -> None:
    svault.fields.put("bea", "city", value="Porto", source="user_provided")
    tail = subprocess.Popen(
        [CCV, "events", "tail", "--json", "--types", "field.written", "--poll", "0.2"],
        env=clean_env(CCV_URL=live, CCV_KEY=key),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stdout is not None
        first = json.loads(tail.stdout.readline())
        assert (first["type"], first["customer_id"]) == ("field.written", "bea")
        time.sleep(0.5)
        svault.fields.put("bea", "phone", value="+351920000000", source="user_provided")
        second = json.loads(tail.stdout.readline())
        assert second["data"]["name"] == "phone"
    finally:
        tail.send_signal(signal.SIGINT)
        _, err = tail.communicate(timeout=20)
    assert "resume with --after" in err
