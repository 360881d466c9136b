"""Field definitions and scenario requirements on PostgreSQL (tenant- and agent-scoped)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from ccvault.domain.audit import AuditNote
from ccvault.domain.errors import InvalidInput, NotFound, Problem
from ccvault.domain.missing import missing_fields
from ccvault.domain.patterns import PATTERNS, PatternError, tenant_pattern
from ccvault.domain.purposes import ReadRule
from ccvault.domain.schema import (
    CurrentValue,
    DefinitionBody,
    DefinitionHints,
    DefinitionStatus,
    FieldDefinition,
    MissingFields,
    Requirement,
    RequirementBody,
)
from ccvault.storage import audit as audit_sql
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("schema.sql")
_JSON_COLUMNS = ("allowed_values", "verification_methods", "extraction_examples")


@cache
def _missing_fields_query(filters: str) -> str:
    """The missing-fields query for one shape of filters (built from constants only)."""
    return Q["missing_fields_inputs"].replace("{filters}", filters)


async def vet_pattern(pattern: str) -> None:
    """Refuse (422 config_error) a pattern RE2 cannot run within its budget, compiling it
    on a worker thread unless it is cached; a good one stays cached for the writes."""
    # google-re2 holds the GIL while compiling, so the loop still waits for the compile
    # itself (bounded by the pattern budget); the thread is for a binding that lets go.
    try:
        if PATTERNS.holds(pattern):
            tenant_pattern(pattern)
        else:
            await asyncio.to_thread(tenant_pattern, pattern)
    except PatternError as exc:
        problem = Problem(("body", "validation_regex"), str(exc), "config_error")
        raise InvalidInput("the definition's validation_regex cannot be used", [problem]) from None


class SchemaStore:
    """Definitions, requirements and the missing-fields question."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def _one(
        self, query: str, params: dict[str, Any], audit: AuditNote | None = None
    ) -> tuple[Any, ...] | None:
        """The statement's first row; with `audit`, its entry goes in the same statement
        (kept only when the statement answered a row)."""
        if audit is not None:
            query = audit_sql.with_note(query)
            params = {**params, **audit_sql.note_params(params["tenant_id"], audit)}
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchone()

    async def put_definition(
        self,
        tenant_id: UUID,
        agent_id: str,
        name: str,
        body: DefinitionBody,
        status: DefinitionStatus = DefinitionStatus.active,
        *,
        audit: AuditNote | None = None,
    ) -> tuple[FieldDefinition, bool]:
        """Create or replace a definition; True when it was created."""
        if body.validation_regex:
            await vet_pattern(body.validation_regex)
        params: dict[str, Any] = body.model_dump()
        for column in _JSON_COLUMNS:
            params[column] = None if params[column] is None else Jsonb(params[column])
        params.update(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            agent_id=agent_id,
            name=name,
            status=status.value,
        )
        row = await self._one(Q["upsert_definition"], params, audit)
        assert row is not None
        return FieldDefinition.model_validate(row[0]), bool(row[1])

    async def read_rules(self, tenant_id: UUID, ids: Iterable[UUID]) -> dict[UUID, ReadRule]:
        """What purpose-aware reads need of these definitions (only those that restrict)."""
        wanted = list(ids)
        if not wanted:
            return {}
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["read_rules"], {"tenant_id": tenant_id, "ids": wanted})
            rows = await cur.fetchall()
        return {row[0]: ReadRule(frozenset(row[1]), row[2]) for row in rows}

    async def get_definition(self, tenant_id: UUID, agent_id: str, name: str) -> FieldDefinition:
        """A live definition (active or suggested); NotFound otherwise."""
        row = await self._one(
            Q["get_definition"], {"tenant_id": tenant_id, "agent_id": agent_id, "name": name}
        )
        if row is None:
            raise NotFound(f"no field definition {name!r} for agent {agent_id!r}")
        return FieldDefinition.model_validate(row[0])

    async def definition_for_write(
        self, tenant_id: UUID, agent_id: str, name: str
    ) -> FieldDefinition | None:
        """The definition a write is validated against (active and enabled), if any."""
        row = await self._one(
            Q["definition_for_write"],
            {"tenant_id": tenant_id, "agent_id": agent_id, "name": name},
        )
        return None if row is None else FieldDefinition.model_validate(row[0])

    async def list_definitions(
        self, tenant_id: UUID, agent_id: str, status: DefinitionStatus
    ) -> list[FieldDefinition]:
        """Live definitions of an agent with the given status, by name."""
        row = await self._one(
            Q["list_definitions"],
            {"tenant_id": tenant_id, "agent_id": agent_id, "status": status.value},
        )
        assert row is not None
        return [FieldDefinition.model_validate(doc) for doc in row[0]]

    async def delete_definition(
        self, tenant_id: UUID, agent_id: str, name: str, *, audit: AuditNote | None = None
    ) -> None:
        """Retire a definition (kept for the field versions that point to it)."""
        row = await self._one(
            Q["delete_definition"],
            {"tenant_id": tenant_id, "agent_id": agent_id, "name": name},
            audit,
        )
        if row is None:
            raise NotFound(f"no field definition {name!r} for agent {agent_id!r}")

    async def put_requirement(
        self,
        tenant_id: UUID,
        agent_id: str,
        scenario_id: str,
        field_name: str,
        step_id: str | None,
        body: RequirementBody,
        *,
        audit: AuditNote | None = None,
    ) -> tuple[Requirement, bool]:
        """Create or replace the manual requirement at (scenario, field, step)."""
        params: dict[str, Any] = body.model_dump()
        params.update(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            agent_id=agent_id,
            scenario_id=scenario_id,
            field_name=field_name,
            step_id=step_id,
            depends_on_fields=Jsonb(body.depends_on_fields),
        )
        row = await self._one(Q["put_manual_requirement"], params, audit)
        assert row is not None
        return Requirement.model_validate(row[0]), bool(row[1])

    async def list_requirements(
        self, tenant_id: UUID, agent_id: str, scenario_id: str
    ) -> list[Requirement]:
        """A scenario's requirements by collection order then field name ([] if unknown)."""
        row = await self._one(
            Q["list_requirements"],
            {"tenant_id": tenant_id, "agent_id": agent_id, "scenario_id": scenario_id},
        )
        assert row is not None
        return [Requirement.model_validate(doc) for doc in row[0]]

    async def delete_requirement(
        self,
        tenant_id: UUID,
        agent_id: str,
        scenario_id: str,
        field_name: str,
        step_id: str | None,
        *,
        audit: AuditNote | None = None,
    ) -> None:
        """Remove the requirements at (scenario, field, step), whatever made them."""
        params = {
            "tenant_id": tenant_id,
            "agent_id": agent_id,
            "scenario_id": scenario_id,
            "field_name": field_name,
            "step_id": step_id,
        }
        query = Q["delete_requirement"]
        if audit is not None:
            query = audit_sql.with_note(query)
            params |= audit_sql.note_params(tenant_id, audit)
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            if not await cur.fetchall():
                raise NotFound(f"no requirement for {field_name!r} in {scenario_id!r}")

    async def review_requirement(
        self,
        tenant_id: UUID,
        agent_id: str,
        requirement_id: UUID,
        decision: str,
        *,
        audit: AuditNote | None = None,
    ) -> Requirement:
        """Record a human decision on a requirement ('approved' or 'rejected')."""
        row = await self._one(
            Q["review_requirement"],
            {
                "tenant_id": tenant_id,
                "agent_id": agent_id,
                "id": requirement_id,
                "decision": decision,
            },
            audit,
        )
        if row is None:
            raise NotFound(f"no requirement {requirement_id} for agent {agent_id!r}")
        return Requirement.model_validate(row[0])

    async def missing_fields(
        self,
        tenant_id: UUID,
        customer_id: str,
        agent_id: str,
        *,
        scenario_id: str | None = None,
        rule_id: str | None = None,
        step_id: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> MissingFields:
        """What the profile still lacks for a scenario/step/rule, in one query.

        A requirement carrying a `rule_id` applies only when that rule is asked for: a
        scenario alone gets its requirements without a rule, a rule alone its own, both
        together the union (like a step beside the scenario-wide requirements).
        """
        filters = []
        if scenario_id is not None and rule_id is not None:
            filters.append(
                "AND ((r.scenario_id = %(scenario_id)s AND r.rule_id IS NULL)"
                " OR r.rule_id = %(rule_id)s)"
            )
        elif scenario_id is not None:
            filters.append("AND r.scenario_id = %(scenario_id)s AND r.rule_id IS NULL")
        elif rule_id is not None:
            filters.append("AND r.rule_id = %(rule_id)s")
        if step_id is not None:
            filters.append("AND (r.step_id IS NULL OR r.step_id = %(step_id)s)")
        row = await self._one(
            _missing_fields_query(" ".join(filters)),
            {
                "tenant_id": tenant_id,
                "customer_id": customer_id,
                "agent_id": agent_id,
                "scenario_id": scenario_id,
                "rule_id": rule_id,
                "step_id": step_id,
            },
        )
        assert row is not None
        requirements = [Requirement.model_validate(doc) for doc in row[0]]
        definitions = {d["name"]: DefinitionHints.model_validate(d) for d in row[1]}
        current = {f["name"]: CurrentValue.model_validate(f) for f in row[2]}
        return missing_fields(requirements, definitions, current, row[3], context)
