"""Shared pieces of the console tests: signing in through the form, reading CSRF tokens."""

from __future__ import annotations

import re

import httpx

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token a console page carries in its forms."""
    found = TOKEN.search(page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    """Sign in through the form (the client keeps the session cookie)."""
    page = await client.get("/console/sign-in")
    return await client.post("/console/sign-in", data={"api_key": key, "csrf_token": csrf_of(page)})
