"""A scenario rewritten while its extraction runs keeps the newer run's status."""

from __future__ import annotations

from uuid import UUID

from ccvault.domain.schema import FieldDefinition
from ccvault.extraction.models import ProposedField, SourceKind, SourceText
from ccvault.extraction.run import run_extraction
from ccvault.runtime import Vault
from ccvault.storage.scenarios import ScenarioStore

SCENARIO = {"name": "Open account", "description": "Customer must be over 18"}


class RewritingExtractor:
    """Stands in for a slow model: while it 'thinks', the caller PUTs a new text."""

    name = "rewriting"

    def __init__(self, store: ScenarioStore, tenant_id: UUID) -> None:
        self.store = store
        self.tenant_id = tenant_id

    async def extract(
        self, source: SourceText, definitions: list[FieldDefinition]
    ) -> list[ProposedField]:
        await self.store.put_scenario(
            self.tenant_id, "a1", "open", {**SCENARIO, "description": "Ask for the email"}
        )
        return [ProposedField(field_name="date_of_birth", confidence=0.9)]


async def test_a_run_finishing_after_a_rewrite_leaves_the_newer_run_queued(
    vault: Vault, tenant_id: UUID
) -> None:
    store = vault.scenarios
    await store.put_scenario(tenant_id, "a1", "open", SCENARIO)
    outcome = await run_extraction(
        store, RewritingExtractor(store, tenant_id), SourceKind.scenario, tenant_id, "a1", "open"
    )
    assert outcome == "done"
    stored = await store.get(SourceKind.scenario, tenant_id, "a1", "open")
    assert stored["description"] == "Ask for the email"
    assert stored["extraction"]["status"] == "queued", "the newer text still waits for its run"
    async with vault.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND queueing_lock = %s",
            (f"extract:{tenant_id}:a1:scenario:open",),
        )
        row = await cur.fetchone()
    assert row is not None and row[0] == 1
