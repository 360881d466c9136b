"""The API answers end to end against real PostgreSQL."""

from __future__ import annotations

import httpx


async def test_field_write_then_profile_read_shows_it(api: httpx.AsyncClient) -> None:
    put = await api.put(
        "/v1/profiles/c1/fields/email", json={"value": "a@b.c", "source": "user_provided"}
    )
    assert put.status_code == 201, put.text
    got = await api.get("/v1/profiles/c1")
    assert got.status_code == 200
    assert got.json()["fields"]["email"]["value"] == "a@b.c"
