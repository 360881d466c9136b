"""/docs works offline: Swagger UI comes from files in the package, checked against the
manifest that records where they came from."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest

from ccvault.api import docs

MANIFEST = json.loads((docs.ASSETS_DIR / "manifest.json").read_text())


async def test_docs_page_loads_nothing_from_another_host(http: httpx.AsyncClient) -> None:
    resp = await http.get("/docs")
    assert resp.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", resp.text)
    assert sorted(urls) == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/openapi.json",
    ]
    # Swagger UI would otherwise send the document to its public validator.
    assert '"validatorUrl": null' in resp.text


async def test_docs_urls_carry_the_root_path_behind_a_proxy(http: httpx.AsyncClient) -> None:
    transport = httpx.ASGITransport(app=http._transport.app, root_path="/vault")  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://vault") as client:
        resp = await client.get("/vault/docs")
    assert "/vault/docs/assets/swagger-ui-bundle.js" in resp.text
    assert "/vault/openapi.json" in resp.text


@pytest.mark.parametrize("name", sorted(docs.ASSETS))
async def test_each_asset_is_served_as_shipped(http: httpx.AsyncClient, name: str) -> None:
    resp = await http.get(f"/docs/assets/{name}")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == docs.ASSETS[name]
    assert "max-age" in resp.headers["cache-control"]
    assert "sha256:" + hashlib.sha256(resp.content).hexdigest() == MANIFEST["files"][name]


@pytest.mark.parametrize("name", ["manifest.json", "LICENSE", "..%2F..%2Fdocs.py", "x.js"])
async def test_nothing_else_is_served_from_the_assets_folder(
    http: httpx.AsyncClient, name: str
) -> None:
    assert (await http.get(f"/docs/assets/{name}")).status_code == 404


def test_vendored_files_match_the_manifest() -> None:
    assert MANIFEST["package"] == "swagger-ui-dist"
    assert re.fullmatch(r"\d+\.\d+\.\d+", MANIFEST["version"])
    assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", MANIFEST["integrity"])
    files = {p.name for p in Path(docs.ASSETS_DIR).iterdir()} - {"manifest.json"}
    assert files == set(MANIFEST["files"])
    for name, digest in MANIFEST["files"].items():
        content = (docs.ASSETS_DIR / name).read_bytes()
        assert "sha256:" + hashlib.sha256(content).hexdigest() == digest, name
    # Served files and the licenses that must travel with them.
    assert set(docs.ASSETS) | {"LICENSE", "NOTICE"} <= files
