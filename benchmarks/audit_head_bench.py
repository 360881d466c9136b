"""What the recorded head (`audit_head`, migration 0025) costs sealing.

Rounds alternate (ROUNDS, default 6) between the sealer's append statement as it is
(the entries and the head in one statement) and the same append without the head's CTE
(the statement before migration 0025). Each round seals `ENTRIES` (default 100,000)
pending entries of a fresh tenant, inserted set-based first (not timed). Reports
entries/s per round. A fresh migrated database on CCV_BENCH_DATABASE_URL (or an
embedded server). Run: `python benchmarks/audit_head_bench.py`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ccvault.config import Settings
from ccvault.runtime import open_vault
from ccvault.storage import audit as audit_sql
from harness import log, run_async
from servers import fresh_database, postgres_server

ENTRIES = int(os.environ.get("CCV_BENCH_AUDIT_ENTRIES", "100000"))
ROUNDS = int(os.environ.get("CCV_BENCH_ROUNDS", "6"))
OUTPUT = Path(__file__).resolve().parent / "results" / "audit_head.json"
# The append without the head (storage/audit.sql before migration 0025).
APPEND_WITHOUT_HEAD = """
INSERT INTO audit_log (tenant_id, seq, at, actor, action, subject_hash, target, purpose,
                       request_id, prev_hash, hash)
SELECT %(tenant_id)s, (e->>0)::bigint, (e->>1)::timestamptz, e->>2, e->>3, e->>4, e->>5,
       e->>6, e->>7, e->>8, e->>9
  FROM json_array_elements(%(rows)s::json) e
"""
FILL = """
INSERT INTO audit_pending (tenant_id, at, actor, action, subject_hash, target, purpose,
                           request_id)
SELECT %(tenant)s, now() - make_interval(secs => %(n)s - i), 'bench-key',
       (ARRAY['field.write', 'profile.read', 'field.read'])[1 + i %% 3],
       md5(i::text) || md5((i + 1)::text), 'field_' || i %% 20, NULL, md5(i::text)
  FROM generate_series(1, %(n)s) i
"""


async def main() -> dict[str, Any]:
    with postgres_server() as server, fresh_database(server.url) as url:
        vault = await open_vault(Settings(database_url=url, cache=False))
        with_head = audit_sql.Q["append"]
        rates: dict[str, list[int]] = {"with_head": [], "without_head": []}
        try:
            for round_no in range(ROUNDS):
                mode = "with_head" if round_no % 2 == 0 else "without_head"
                tenant = (await vault.services.tenants.create(f"seal-{round_no}")).tenant_id
                async with vault.pool.connection() as conn:
                    await conn.execute(FILL, {"tenant": tenant, "n": ENTRIES})
                    await conn.execute("VACUUM ANALYZE audit_pending")
                audit_sql.Q["append"] = with_head if mode == "with_head" else APPEND_WITHOUT_HEAD
                started = time.perf_counter()
                sealed = await vault.services.audit.seal(tenant)
                rates[mode].append(round(sealed / (time.perf_counter() - started)))
                log(f"round {round_no} {mode}: {rates[mode][-1]} entries/s")
        finally:
            audit_sql.Q["append"] = with_head
            await vault.close()
    return {"entries_per_s": rates, "entries": ENTRIES, "server": server.kind}


if __name__ == "__main__":
    report, loop = run_async(main)
    report["loop"] = loop
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    log(json.dumps(report["entries_per_s"]))
