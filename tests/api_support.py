"""Shared pieces of the HTTP tests: a valid asset body and the problem+json check."""

from __future__ import annotations

from typing import Any

import httpx

ASSET: dict[str, Any] = {
    "name": "passport",
    "asset_type": "document",
    "storage_provider": "s3",
    "storage_path": "bucket/passport.pdf",
    "mime_type": "application/pdf",
    "size_bytes": 1234,
    "checksum": "sha256:abc",
}


def assert_problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with the given status."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    assert all(isinstance(body[k], str) for k in ("type", "title", "detail"))
    return body
