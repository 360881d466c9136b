"""Scenario and rule texts, the extraction job deferred with them, and the extracted
requirements and suggested definitions an extraction run stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ccvault.domain.audit import Action, AuditNote, job_actor, requirement_target
from ccvault.domain.errors import NotFound
from ccvault.domain.scenarios import (
    PlannedRequirement,
    SourceKind,
    SourceText,
    Suggestion,
    TextPart,
)
from ccvault.domain.schema import FieldDefinition, Requirement, ReviewItem
from ccvault.storage import audit as audit_sql
from ccvault.storage import events as events_sql
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("scenarios.sql")
EXTRACT_TASK = "ccv.extract_requirements"


def queueing_lock(kind: SourceKind, tenant_id: UUID, agent_id: str, source_id: str) -> str:
    """One waiting extraction job per scenario or rule."""
    return f"extract:{tenant_id}:{agent_id}:{kind.value}:{source_id}"


async def _defer(
    conn: AsyncConnection[Any], kind: SourceKind, tenant_id: UUID, agent_id: str, source_id: str
) -> None:
    """Queue an extraction job in the caller's transaction."""
    args = {
        "kind": kind.value,
        "tenant_id": str(tenant_id),
        "agent_id": agent_id,
        "source_id": source_id,
    }
    await conn.execute(
        Q["defer_extraction"],
        {
            "queueing_lock": queueing_lock(kind, tenant_id, agent_id, source_id),
            "args": Jsonb(args),
        },
    )


def scenario_text(
    name: str, description: str | None, conditions: list[str], steps: list[dict[str, Any]]
) -> SourceText:
    """A scenario's text in pieces, as the extractor reads it and a reviewer sees it."""
    parts = [TextPart(description)] if description else []
    parts += [TextPart(c) for c in conditions]
    for step in steps:
        if step.get("description"):
            parts.append(TextPart(step["description"], step["step_id"]))
        parts += [TextPart(c, step["step_id"]) for c in step.get("conditions", [])]
    step_ids = [step["step_id"] for step in steps]
    return SourceText(SourceKind.scenario, name, parts, step_ids)


def rule_text(name: str, condition: str, action: str | None) -> SourceText:
    """A rule's text in pieces, as the extractor reads it and a reviewer sees it."""
    parts = [TextPart(condition)] + ([TextPart(action)] if action else [])
    return SourceText(SourceKind.rule, name, parts)


class ScenarioStore:
    """Scenarios and rules of an agent, tenant-scoped."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def _put(
        self,
        kind: SourceKind,
        tenant_id: UUID,
        agent_id: str,
        source_id: str,
        query: str,
        params: dict[str, Any],
        audit: AuditNote | None = None,
    ) -> dict[str, Any]:
        """Store the text and defer its extraction in one transaction (with its audit
        entry when given)."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(query, params)
            row = await cur.fetchone()
            assert row is not None
            await audit_sql.note(conn, tenant_id, audit)
            await _defer(conn, kind, tenant_id, agent_id, source_id)
            if kind is SourceKind.scenario and row[1]:
                # Deleting a scenario took the requirements of the rules naming it; a
                # scenario created anew under that id gets them back from its rules.
                cur = await conn.execute(
                    Q["rules_naming_scenario"],
                    {"tenant_id": tenant_id, "agent_id": agent_id, "scenario_id": source_id},
                )
                for (rule_id,) in await cur.fetchall():
                    await _defer(conn, SourceKind.rule, tenant_id, agent_id, rule_id)
        assert row is not None
        return dict(row[0])

    async def put_scenario(
        self,
        tenant_id: UUID,
        agent_id: str,
        scenario_id: str,
        body: dict[str, Any],
        *,
        audit: AuditNote | None = None,
    ) -> dict[str, Any]:
        """Create or replace a scenario's text; its extraction is queued."""
        params = {
            "tenant_id": tenant_id,
            "agent_id": agent_id,
            "scenario_id": scenario_id,
            "name": body["name"],
            "description": body.get("description"),
            "conditions": Jsonb(body.get("conditions", [])),
            "steps": Jsonb(body.get("steps", [])),
        }
        return await self._put(
            SourceKind.scenario,
            tenant_id,
            agent_id,
            scenario_id,
            Q["put_scenario"],
            params,
            audit,
        )

    async def put_rule(
        self,
        tenant_id: UUID,
        agent_id: str,
        rule_id: str,
        body: dict[str, Any],
        *,
        audit: AuditNote | None = None,
    ) -> dict[str, Any]:
        """Create or replace a rule's text; its extraction is queued."""
        params = {
            "tenant_id": tenant_id,
            "agent_id": agent_id,
            "rule_id": rule_id,
            "name": body["name"],
            "condition": body["condition"],
            "action": body.get("action"),
            "scenario_id": body.get("scenario_id"),
        }
        return await self._put(
            SourceKind.rule, tenant_id, agent_id, rule_id, Q["put_rule"], params, audit
        )

    async def get(
        self, kind: SourceKind, tenant_id: UUID, agent_id: str, source_id: str
    ) -> dict[str, Any]:
        """The stored text with its last extraction's status; NotFound otherwise."""
        key = "scenario_id" if kind is SourceKind.scenario else "rule_id"
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                Q[f"get_{kind.value}"],
                {"tenant_id": tenant_id, "agent_id": agent_id, key: source_id},
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no {kind.value} {source_id!r} for agent {agent_id!r}")
        return dict(row[0])

    async def delete(
        self,
        kind: SourceKind,
        tenant_id: UUID,
        agent_id: str,
        source_id: str,
        *,
        audit: AuditNote | None = None,
    ) -> None:
        """Remove a scenario or rule and its requirements (and keep its audit entry, in
        the same transaction, when it was there)."""
        key = "scenario_id" if kind is SourceKind.scenario else "rule_id"
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                Q[f"delete_{kind.value}"],
                {"tenant_id": tenant_id, "agent_id": agent_id, key: source_id},
            )
            row = await cur.fetchone()
            if row is not None and row[0]:
                await audit_sql.note(conn, tenant_id, audit)
        if row is None or row[0] == 0:
            raise NotFound(f"no {kind.value} {source_id!r} for agent {agent_id!r}")

    # -- extraction runs --------------------------------------------------------------

    async def start_extraction(
        self, kind: SourceKind, tenant_id: UUID, agent_id: str, source_id: str
    ) -> tuple[SourceText, list[FieldDefinition], str | None, datetime] | None:
        """Mark the run `running` and read its text and the agent's definitions; None
        when the scenario/rule was deleted meanwhile. Also returns the scenario id the
        requirements belong to, and the text's updated_at (the outcome is recorded only
        if the text is still that one)."""
        params = {
            "tenant_id": tenant_id,
            "agent_id": agent_id,
            "source_id": source_id,
            "status": "running",
            "error": None,
            "seen": None,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q[f"set_{kind.value}_extraction"], params)
            row = await cur.fetchone()
            if row is None:
                return None
            cur = await conn.execute(
                Q["agent_definitions"], {"tenant_id": tenant_id, "agent_id": agent_id}
            )
            defs = await cur.fetchone()
        definitions = [FieldDefinition.model_validate(d) for d in (defs[0] if defs else [])]
        if kind is SourceKind.scenario:
            name, description, conditions, steps, _, seen = row
            text = scenario_text(name, description, conditions, steps)
            return text, definitions, source_id, seen
        name, condition, action, scenario_id, seen = row
        return rule_text(name, condition, action), definitions, scenario_id, seen

    async def review_queue(
        self,
        tenant_id: UUID,
        agent_id: str,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[tuple[ReviewItem, tuple[datetime, UUID]]]:
        """Up to `limit` pending requirements after `after`, oldest first, each with
        the text it came from and its position (for the next cursor)."""
        after_at, after_id = after or (datetime.min.replace(tzinfo=UTC), UUID(int=0))
        params = {
            "tenant_id": tenant_id,
            "agent_id": agent_id,
            "after_at": after_at,
            "after_id": after_id,
            "limit": limit,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["review_queue"], params)
            rows = await cur.fetchall()
        items = []
        for doc, scenario_id, rule_id, created_at, req_id, *texts in rows:
            s_name, description, conditions, steps, r_name, condition, action = texts
            if rule_id is not None:
                source = rule_text(r_name or "", condition or "", action)
            else:
                source = scenario_text(s_name or "", description, conditions or [], steps or [])
            item = ReviewItem(
                requirement=Requirement.model_validate(doc),
                scenario_id=scenario_id,
                rule_id=rule_id,
                source_text=source.render(),
            )
            items.append((item, (created_at, req_id)))
        return items

    async def finish_extraction(
        self,
        kind: SourceKind,
        tenant_id: UUID,
        agent_id: str,
        source_id: str,
        scenario_id: str | None,
        requirements: list[PlannedRequirement],
        suggestions: list[Suggestion],
        seen: datetime | None = None,
    ) -> None:
        """Replace the unreviewed extracted requirements, add suggestions, mark done —
        in one transaction, so a re-run is idempotent and never half-applied."""
        base = {"tenant_id": tenant_id, "agent_id": agent_id}
        rule_id = source_id if kind is SourceKind.rule else None
        stored: list[str] = []
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                Q["drop_unreviewed_extracted"],
                {**base, "kind": kind.value, "source_id": source_id},
            )
            dropped = [
                requirement_target(agent_id, scenario, field, step, rule)
                for scenario, rule, field, step in await cur.fetchall()
            ]
            for req in requirements:
                cur = await conn.execute(
                    Q["insert_extracted"],
                    {
                        **base,
                        "id": uuid.uuid4(),
                        "scenario_id": scenario_id,
                        "rule_id": rule_id,
                        "field_name": req.field_name,
                        "step_id": req.step_id,
                        "required_level": req.required_level.value,
                        "fallback_action": req.fallback_action.value,
                        "when_condition": req.when_condition,
                        "collection_order": req.collection_order,
                        "confidence": req.confidence,
                        "needs_human_review": req.needs_human_review,
                        "review_status": req.review_status.value,
                    },
                )
                if await cur.fetchone() is not None:
                    stored.append(
                        requirement_target(
                            agent_id, scenario_id, req.field_name, req.step_id, rule_id
                        )
                    )
            await _audit_extracted(conn, tenant_id, dropped, stored)
            for suggestion in suggestions:
                await conn.execute(
                    Q["insert_suggestion"],
                    {
                        **base,
                        "id": uuid.uuid4(),
                        "name": suggestion.name,
                        "display_name": suggestion.display_name,
                        "description": suggestion.description,
                        "value_type": suggestion.value_type.value,
                        "collection_prompt": suggestion.collection_prompt,
                        "min": suggestion.bounds.get("min"),
                        "max": suggestion.bounds.get("max"),
                        "min_age": _age(suggestion.bounds.get("min_age")),
                        "max_age": _age(suggestion.bounds.get("max_age")),
                    },
                )
            await events_sql.emit_extracted(conn, tenant_id, kind.value, agent_id, source_id)
            await conn.execute(
                Q[f"set_{kind.value}_extraction"],
                {
                    **base,
                    "source_id": source_id,
                    "status": "done",
                    "error": None,
                    "seen": seen,
                },
            )

    async def fail_extraction(
        self,
        kind: SourceKind,
        tenant_id: UUID,
        agent_id: str,
        source_id: str,
        error: str,
        seen: datetime | None = None,
    ) -> None:
        """Record a failed run; the scenario/rule stays as saved and usable."""
        async with self.pool.connection() as conn:
            await conn.execute(
                Q[f"set_{kind.value}_extraction"],
                {
                    "tenant_id": tenant_id,
                    "agent_id": agent_id,
                    "source_id": source_id,
                    "status": "failed",
                    "error": error[:1000],
                    "seen": seen,
                },
            )


# The actor of the extraction job's entries (its task is `ccv.extract_requirements`).
EXTRACTION_ACTOR = job_actor("extract_requirements")


async def _audit_extracted(
    conn: AsyncConnection[Any], tenant_id: UUID, dropped: list[str], stored: list[str]
) -> None:
    """The run's entries, in its transaction: a put per requirement stored, a delete
    per one dropped and not stored again (a re-run of the same text is all puts)."""
    again = set(stored)
    gone = [target for target in dict.fromkeys(dropped) if target not in again]
    entries = [(Action.requirement_put, None, target) for target in stored]
    entries += [(Action.requirement_delete, None, target) for target in gone]
    await audit_sql.note_many(conn, tenant_id, EXTRACTION_ACTOR, entries)


def _age(years: float | None) -> int | None:
    """Ages are whole years (a smallint column)."""
    return None if years is None else int(years)
