"""Console benchmark (issue 14): server time of a customer's profile page against the JSON
read of the same profile (goal p50 <= 3x), and the page's weight (HTML + CSS + JS, goal
< 150 KB).

The app runs in-process (httpx over ASGI, no sockets), so a request's time is the server's
own work plus the same small client overhead on both sides. The profile: 20 fields x 3
versions (the page shows every version in its history), 2 assets, an identity and a
consent. The page's history arrives in a second request (htmx, once the page has
loaded), timed on its own row. Baselines measured in the same run, interleaved with the
page: the JSON profile read (`GET /v1/profiles/{id}`, served from the cache as callers get
it) and the same read with `?include=history` (the data the page shows). PostgreSQL from
CCV_BENCH_DATABASE_URL and Redis from CCV_BENCH_REDIS_URL (else embedded servers).
Run: `python benchmarks/console_bench.py` (CCV_BENCH_ITERATIONS, default 300).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from ccvault.api.app import create_app
from ccvault.config import Settings
from ccvault.runtime import open_vault
from harness import log, measure_interleaved, run_async
from servers import fresh_database, postgres_server, redis_server

ITERATIONS = int(os.environ.get("CCV_BENCH_ITERATIONS", "300"))
WARMUP = 30
OUTPUT = Path(__file__).resolve().parent / "results" / "console.json"
CUSTOMER = "cust-000042"
FIELDS, VERSIONS = 20, 3
GOAL_RATIO, GOAL_KB = 3.0, 150
_ASSET = re.compile(r'(?:href|src)="(/console/static/[^"]+)"')


async def _seed(api: httpx.AsyncClient) -> None:
    for version in range(VERSIONS):
        for i in range(FIELDS):
            answer = await api.put(
                f"/v1/profiles/{CUSTOMER}/fields/field_{i:02d}",
                json={
                    "value": f"value {i} version {version}",
                    "source": "user_provided",
                    "confidence": 0.9,
                    "verified": i % 2 == 0,
                },
            )
            assert answer.status_code == 201, answer.text
    for name in ("passport", "utility_bill"):
        answer = await api.post(
            f"/v1/profiles/{CUSTOMER}/assets",
            json={
                "name": name,
                "asset_type": "document",
                "storage_provider": "s3",
                "storage_path": f"bucket/{name}.pdf",
                "mime_type": "application/pdf",
                "size_bytes": 40_000,
                "checksum": "sha256:abc",
            },
        )
        assert answer.status_code == 201, answer.text
    await api.post(
        f"/v1/profiles/{CUSTOMER}/channel-identities",
        json={"channel": "whatsapp", "channel_user_id": "+4915100000042"},
    )
    await api.put(f"/v1/profiles/{CUSTOMER}/consents/marketing", json={"granted": True})


async def _bench(database_url: str, redis_url: str) -> dict[str, Any]:
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        admin_api_key=SecretStr("bench-admin"),
        access_log=False,
    )
    vault = await open_vault(settings)
    try:
        app = create_app(vault=vault)
        transport = httpx.ASGITransport(app=app)
        created = await vault.services.tenants.create("console-bench")
        auth = {"Authorization": f"Bearer {created.api_key}"}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://v", headers=auth) as api,
            httpx.AsyncClient(transport=transport, base_url="http://v") as browser,
        ):
            log("seeding")
            await _seed(api)
            page = await browser.get("/console/sign-in")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            signed = await browser.post(
                "/console/sign-in", data={"api_key": created.api_key, "csrf_token": token[1]}
            )
            assert signed.status_code == 303, signed.text

            async def console_page() -> None:
                answer = await browser.get(f"/console/customers/{CUSTOMER}")
                assert answer.status_code == 200

            async def history_part() -> None:
                answer = await browser.get(f"/console/customers/{CUSTOMER}/history")
                assert answer.status_code == 200

            async def json_read() -> None:
                answer = await api.get(f"/v1/profiles/{CUSTOMER}")
                assert answer.status_code == 200

            async def json_read_history() -> None:
                answer = await api.get(f"/v1/profiles/{CUSTOMER}", params={"include": "history"})
                assert answer.status_code == 200

            log(f"timing {ITERATIONS} rounds")
            stats = await measure_interleaved(
                {
                    "console profile page": console_page,
                    "console history part (htmx, after the page)": history_part,
                    "JSON profile read": json_read,
                    "JSON profile read ?include=history": json_read_history,
                },
                iterations=ITERATIONS,
                warmup=WARMUP,
            )
            html = (await browser.get(f"/console/customers/{CUSTOMER}")).content
            assets = {
                path: (await browser.get(path)).content for path in _ASSET.findall(html.decode())
            }
    finally:
        await vault.close()
    weight = {"html": len(html), **{p.rsplit("/", 1)[1]: len(b) for p, b in assets.items()}}
    total = sum(weight.values())
    gzipped = len(gzip.compress(html)) + sum(len(gzip.compress(b)) for b in assets.values())
    page_p50 = stats["console profile page"].p50_us
    return {
        "iterations": ITERATIONS,
        "profile": {"fields": FIELDS, "versions_each": VERSIONS, "assets": 2},
        "stats": {name: s.__dict__ for name, s in stats.items()},
        "ratio_p50_vs_json": round(page_p50 / stats["JSON profile read"].p50_us, 2),
        "ratio_p50_vs_json_history": round(
            page_p50 / stats["JSON profile read ?include=history"].p50_us, 2
        ),
        "page_weight_bytes": weight,
        "page_weight_total_kb": round(total / 1024, 1),
        "page_weight_gzip_kb": round(gzipped / 1024, 1),
    }


def main() -> int:
    with (
        postgres_server() as pg,
        redis_server() as redis,
        fresh_database(pg.url) as url,
    ):
        result, loop = run_async(lambda: _bench(url, redis.url))
    result["loop"] = loop
    result["goals"] = {
        "ratio_p50_vs_json": GOAL_RATIO,
        "page_weight_total_kb": GOAL_KB,
        "ratio_passed": result["ratio_p50_vs_json"] <= GOAL_RATIO,
        "weight_passed": result["page_weight_total_kb"] < GOAL_KB,
    }
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(result, indent=2) + "\n")
    for name, s in result["stats"].items():
        print(f"{name:40s} p50 {s['p50_us']:>9.1f} us  p99 {s['p99_us']:>9.1f} us")
    print(
        f"page / JSON read p50: {result['ratio_p50_vs_json']}x "
        f"(/ JSON with history: {result['ratio_p50_vs_json_history']}x; goal <= {GOAL_RATIO}x)"
    )
    print(
        f"page weight: {result['page_weight_total_kb']} KB "
        f"({result['page_weight_gzip_kb']} KB gzipped; goal < {GOAL_KB} KB) "
        f"{result['page_weight_bytes']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
