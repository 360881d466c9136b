"""What finding a lineage read's audit subject costs (issue 13: lineage reads are filed
under the customer owning the item, looked up in the walk's own statement).

Dataset: one tenant, `PROFILES` profiles of 20 fields each (so the item lookups are not
on a toy table) and an 11-field chain (each field derived from the previous one). One
interleaved loop (harness.measure_interleaved) of:

- `lineage_owned(...)` from the chain's leaf (depth 10), ancestors: the statement as it
  runs now, with its owner column;
- the same statement without the owner column (cut out of today's text): the walk as
  it ran before;
- both again from the chain's root, descendants.

Goal: the owner's cost within the noise (p50 ratio <= 1.05). A fresh migrated database on
CCV_BENCH_DATABASE_URL (or an embedded server). Run: `python benchmarks/lineage_owner_bench.py`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ccvault.config import Settings
from ccvault.domain.models import Direction, Source, SourceItemType
from ccvault.domain.writes import NewField
from ccvault.runtime import open_vault
from ccvault.storage import lineage as lineage_sql
from ccvault.storage.profiles import ProfileStore
from harness import log, measure_interleaved, run_async
from servers import fresh_database, postgres_server

ITERATIONS = int(os.environ.get("CCV_BENCH_ITERATIONS", "2000"))
WARMUP = int(os.environ.get("CCV_BENCH_WARMUP", "200"))
PROFILES = int(os.environ.get("CCV_BENCH_LINEAGE_PROFILES", "2000"))
DEPTH = 10
OUTPUT = Path(__file__).resolve().parent / "results" / "lineage_owner.json"
# The owner column, from its comment to its alias (storage/lineage.sql).
_OWNER = re.compile(r",\s*-- The customer owning the item.*?AS owner", re.S)


def without_owner(query: str) -> str:
    """The walk's statement as it was before the owner column."""
    stripped = _OWNER.sub("", query)
    assert stripped != query and "owner" not in stripped
    return stripped


_FILL = """
WITH p AS (
    INSERT INTO customer_profiles (id, tenant_id, customer_id)
    SELECT gen_random_uuid(), %(tenant)s, 'c' || i FROM generate_series(1, %(profiles)s) i
    RETURNING id
)
INSERT INTO profile_fields (id, tenant_id, profile_id, name, value, value_type, status,
                            source, collected_at)
SELECT gen_random_uuid(), %(tenant)s, p.id, 'field_' || n, to_jsonb('value ' || n),
       'string', 'active', 'user_provided', now()
  FROM p, generate_series(1, 20) n
"""


async def main() -> dict[str, Any]:
    with postgres_server() as server, fresh_database(server.url) as url:
        vault = await open_vault(Settings(database_url=url, cache=False))
        try:
            tenant = (await vault.services.tenants.create("bench-lineage")).tenant_id
            async with vault.pool.connection() as conn:
                await conn.execute(_FILL, {"tenant": tenant, "profiles": PROFILES})
            store = ProfileStore(vault.pool)
            leaf = root = None
            for depth in range(DEPTH + 1):
                leaf = await store.save_field(
                    tenant,
                    "chain-owner",
                    f"chain_{depth:02d}",
                    NewField(
                        value=f"step {depth}",
                        source=Source.llm_extracted,
                        source_item_id=str(leaf.id) if leaf else None,
                        source_item_type=SourceItemType.profile_field if leaf else None,
                    ),
                )
                root = root or leaf
            assert leaf is not None and root is not None
            async with vault.pool.connection() as conn:
                await conn.execute("VACUUM ANALYZE profile_fields")
                await conn.execute("VACUUM ANALYZE customer_profiles")

            def walk(direction: Direction, item: Any, *, owner: bool) -> Any:
                query = lineage_sql.Q[direction.value]
                query = query if owner else without_owner(query)
                params = {"tenant_id": tenant, "id": item, "max_depth": DEPTH}

                async def op() -> None:
                    async with vault.pool.connection() as conn:
                        cur = await conn.execute(query, params)
                        row = await cur.fetchone()
                    assert row is not None and row[0]

                return op

            owned, _ = await lineage_sql.lineage_owned(
                vault.pool, tenant, leaf.id, Direction.ancestors
            )
            assert len(owned.chain) == DEPTH + 1
            ops = {
                "ancestors, with owner": walk(Direction.ancestors, leaf.id, owner=True),
                "ancestors, without owner": walk(Direction.ancestors, leaf.id, owner=False),
                "descendants, with owner": walk(Direction.descendants, root.id, owner=True),
                "descendants, without owner": walk(Direction.descendants, root.id, owner=False),
            }
            log(f"timing {ITERATIONS} interleaved iterations")
            stats = await measure_interleaved(ops, iterations=ITERATIONS, warmup=WARMUP)
        finally:
            await vault.close()
    report: dict[str, Any] = {"paths": {k: s.__dict__ for k, s in stats.items()}}
    for direction in ("ancestors", "descendants"):
        with_, without = stats[f"{direction}, with owner"], stats[f"{direction}, without owner"]
        report[f"{direction}_p50_ratio"] = round(with_.p50_us / without.p50_us, 3)
        report[f"{direction}_p99_ratio"] = round(with_.p99_us / without.p99_us, 3)
    report["server"] = server.kind
    return report


if __name__ == "__main__":
    result, loop = run_async(main)
    result["loop"] = loop
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(result, indent=2) + "\n")
    log(json.dumps({k: v for k, v in result.items() if "ratio" in k}))
