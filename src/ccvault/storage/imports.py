"""Bulk import and export on PostgreSQL: a batch of lines in one transaction.

A batch creates the profiles it names that do not exist, locks the others (in id order,
aliases followed), COPYs its field versions into a temporary table, drops those equal to
the current version, supersedes the current versions of the rest and inserts them in one
statement, links identities and records consents, then bumps the version of every
existing profile it changed. Any refusal rolls the whole batch back (`BatchRefused`): the
caller splits the batch to find the line at fault.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import AsyncConnection

from ccvault.domain.audit import key_actor
from ccvault.domain.bounds import profile_limit_error
from ccvault.domain.errors import Problem
from ccvault.domain.imports import ImportedField
from ccvault.domain.privacy import subject_hash
from ccvault.domain.writes import ConsentAnswer, NewIdentity
from ccvault.storage import audit as audit_sql
from ccvault.storage.cache import ProfileCache, Touched
from ccvault.storage.db import Pool
from ccvault.storage.queries import load

Q = load("imports.sql")
# A batch that lost a race with a merge (its target retired while we waited) or a
# deadlock with another bulk writer is tried again this many times.
_ATTEMPTS = 3
_EXPORT_FETCH = 500


@dataclass(frozen=True)
class FieldRow:
    """A validated, normalized field version ready to store."""

    name: str
    field: ImportedField
    value: Any
    value_type: str
    retention_days: int | None
    field_definition_id: UUID | None


@dataclass
class PreparedLine:
    """One line, validated: what to write to one profile."""

    line: int
    customer_id: str
    fields: list[FieldRow] = field(default_factory=list)
    identities: list[NewIdentity] = field(default_factory=list)
    consents: list[tuple[str, ConsentAnswer]] = field(default_factory=list)


@dataclass(frozen=True)
class BatchResult:
    """What a committed batch did."""

    created: int
    fields: int
    unchanged: int
    touched: list[Touched]


class BatchRefused(Exception):
    """The database refused something in the batch; with one line, that line's problems."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].msg if problems else "refused")
        self.problems = problems


class _Retry(Exception):
    """A race lost (a merge retired a target meanwhile): run the batch again."""


class ImportStore:
    """Writes batches of import lines and reads a tenant's profiles as lines."""

    def __init__(self, pool: Pool, cache: ProfileCache | None = None) -> None:
        self.pool = pool
        self.cache = cache

    async def write_batch(
        self, tenant_id: UUID, key_id: UUID | None, lines: list[PreparedLine]
    ) -> BatchResult:
        """Store every line of the batch in one transaction, or none (BatchRefused)."""
        for attempt in range(_ATTEMPTS):
            try:
                async with self.pool.connection() as conn, conn.transaction():
                    result = await self._write(conn, tenant_id, key_id, lines)
                break
            except (_Retry, psycopg.errors.DeadlockDetected):
                if attempt == _ATTEMPTS - 1:
                    raise BatchRefused(
                        [Problem(("line",), "the profile kept changing; try again", "conflict")]
                    ) from None
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
                raise BatchRefused([Problem(("line",), _describe(exc), "value_error")]) from None
            except psycopg.Error as exc:
                refused = profile_limit_error(exc.diag.message_primary or "")
                if exc.sqlstate != "CV422" or refused is None:
                    raise
                raise BatchRefused(refused.errors) from None
        if self.cache is not None and result.touched:
            await self.cache.invalidate(result.touched)
        return result

    async def _write(
        self,
        conn: AsyncConnection[Any],
        tenant_id: UUID,
        key_id: UUID | None,
        lines: list[PreparedLine],
    ) -> BatchResult:
        customer_ids = sorted({line.customer_id for line in lines})
        base = {"tenant_id": tenant_id, "customer_ids": customer_ids}
        cur = await conn.execute(Q["create_profiles"], base)
        created = {customer: pid for customer, pid in await cur.fetchall()}
        profile_of: dict[str, UUID] = dict(created)
        # The customer each profile belongs to: what its audit entries are filed under.
        owner_of: dict[UUID, str] = {pid: customer for customer, pid in created.items()}
        existing: set[UUID] = set()
        if len(created) < len(customer_ids):
            cur = await conn.execute(Q["lock_profiles"], base)
            for requested, pid, merged_into, owner in await cur.fetchall():
                if merged_into is not None:
                    raise _Retry
                profile_of[requested] = pid
                owner_of[pid] = owner
                existing.add(pid)
        if len(set(profile_of.values())) < len(profile_of):
            # Two lines of the batch reach one profile (an alias and its target).
            raise BatchRefused(
                [Problem(("customer_id",), "names a profile an earlier line names", "conflict")]
            )
        cur = await conn.execute(Q["clock"])
        row = await cur.fetchone()
        assert row is not None
        ts: datetime = row[0]
        params = {"tenant_id": tenant_id, "ts": ts, "key_id": key_id}
        changed: set[UUID] = set()
        fields, unchanged = await self._write_fields(
            conn, params, lines, profile_of, owner_of, changed, bool(existing)
        )
        await self._link_identities(conn, params, lines, profile_of, changed)
        await self._put_consents(conn, params, lines, profile_of, changed)
        touched: list[Touched] = []
        bump = sorted(changed & existing)
        if bump:
            cur = await conn.execute(Q["bump_profiles"], {**params, "ids": bump})
            touched = [Touched(t, c, v) for t, c, v in await cur.fetchall()]
        return BatchResult(len(created), fields, unchanged, touched)

    async def _write_fields(
        self,
        conn: AsyncConnection[Any],
        params: dict[str, Any],
        lines: list[PreparedLine],
        profile_of: dict[str, UUID],
        owner_of: dict[UUID, str],
        changed: set[UUID],
        any_existing: bool,
    ) -> tuple[int, int]:
        """COPY the batch's field versions, skip unchanged ones, supersede, insert. A
        batch of new profiles only (an initial load) has nothing to compare or supersede."""
        total = sum(len(line.fields) for line in lines)
        if not total:
            return 0, 0
        await conn.execute(Q["create_staging"])
        cur = conn.cursor()
        async with cur.copy(Q["copy_staging"]) as copy:
            for line in lines:
                pid = profile_of[line.customer_id]
                for row in line.fields:
                    await copy.write_row(_staging_row(line.line, pid, row))
        unchanged = 0
        if any_existing:
            # Statistics first: joined blind with a table of millions of rows, the
            # planner could pick a scan of it per batch (a load slowing as it grows).
            await conn.execute(Q["analyze_staging"])
            cur = await conn.execute(Q["skip_unchanged"], params)
            unchanged = cur.rowcount
            await conn.execute(Q["supersede"], params)
        cur = await conn.execute(Q["insert_fields"], params)
        inserted = [pid for (pid,) in await cur.fetchall()]
        changed.update(inserted)
        if inserted:
            await self._audit_fields(conn, params, owner_of)
        return len(inserted), unchanged

    async def _audit_fields(
        self, conn: AsyncConnection[Any], params: dict[str, Any], owner_of: dict[UUID, str]
    ) -> None:
        """The audit entries of the versions just inserted (DESIGN §8: every field write),
        filed under the customer each profile belongs to (an alias's target)."""
        secret = await audit_sql.subject_secret(conn, params["tenant_id"])
        await conn.execute(
            Q["audit_fields"],
            {
                "tenant_id": params["tenant_id"],
                "actor": key_actor(params["key_id"]),
                "profile_ids": list(owner_of),
                "subjects": [subject_hash(secret, customer) for customer in owner_of.values()],
            },
        )

    async def _link_identities(
        self,
        conn: AsyncConnection[Any],
        params: dict[str, Any],
        lines: list[PreparedLine],
        profile_of: dict[str, UUID],
        changed: set[UUID],
    ) -> None:
        rows = [
            (line.line, profile_of[line.customer_id], ident)
            for line in lines
            for ident in line.identities
        ]
        if not rows:
            return
        arrays = {
            "lines": [r[0] for r in rows],
            "profile_ids": [r[1] for r in rows],
            "channels": [r[2].channel for r in rows],
            "user_ids": [r[2].channel_user_id for r in rows],
            "verified": [r[2].verified for r in rows],
        }
        cur = await conn.execute(Q["link_identities"], {**params, **arrays})
        linked = {(c, u): (pid, iid) for pid, iid, c, u in await cur.fetchall()}
        cur = await conn.execute(Q["identity_conflicts"], {**params, **arrays})
        conflicts = await cur.fetchall()
        if conflicts:
            _, channel, user_id = conflicts[0]
            raise BatchRefused(
                [
                    Problem(
                        ("channel_identities",),
                        f"identity {channel}:{user_id} belongs to another profile",
                        "conflict",
                    )
                ]
            )
        changed.update(pid for pid, _ in linked.values())
        # A new identity asked to be primary becomes it (as a single link does).
        primary = [
            linked[(ident.channel, ident.channel_user_id)]
            for _, _, ident in rows
            if ident.primary and (ident.channel, ident.channel_user_id) in linked
        ]
        if primary:
            await conn.execute(
                Q["make_primary_identities"],
                {
                    **params,
                    "profile_ids": [pid for pid, _ in primary],
                    "ids": [iid for _, iid in primary],
                },
            )

    async def _put_consents(
        self,
        conn: AsyncConnection[Any],
        params: dict[str, Any],
        lines: list[PreparedLine],
        profile_of: dict[str, UUID],
        changed: set[UUID],
    ) -> None:
        rows = [
            (profile_of[line.customer_id], kind, answer)
            for line in lines
            for kind, answer in line.consents
        ]
        if not rows:
            return
        cur = await conn.execute(
            Q["put_consents"],
            {
                **params,
                "profile_ids": [r[0] for r in rows],
                "types": [r[1] for r in rows],
                "granted": [r[2].granted for r in rows],
                "sessions": [r[2].source_session_id for r in rows],
            },
        )
        changed.update(pid for (pid,) in await cur.fetchall())

    async def export_lines(self, tenant_id: UUID) -> AsyncIterator[str]:
        """Every live profile of the tenant as one JSON line (no newline), by customer id,
        read through a server-side cursor: memory stays flat however many there are."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = conn.cursor(f"ccv_export_{uuid4().hex}")
            cur.itersize = _EXPORT_FETCH
            await cur.execute(Q["export_profiles"], {"tenant_id": tenant_id})
            async for (text,) in cur:
                yield text

    async def count_profiles(self, tenant_id: UUID) -> int:
        """How many profiles an export writes (for a progress bar)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["count_profiles"], {"tenant_id": tenant_id})
            row = await cur.fetchone()
        return int(row[0]) if row else 0


def _staging_row(line: int, profile_id: UUID, row: FieldRow) -> tuple[Any, ...]:
    """One COPY row of ccv_import_fields (jsonb columns as JSON text)."""
    f = row.field
    return (
        line,
        profile_id,
        row.name,
        json.dumps(row.value, separators=(",", ":")),
        row.value_type,
        f.source.value,
        f.source_item_id,
        f.source_item_type.value if f.source_item_type else None,
        json.dumps(f.source_metadata, separators=(",", ":")) if f.source_metadata else "{}",
        f.source_session_id,
        f.source_scenario_id,
        f.source_step_id,
        f.confidence,
        f.verified,
        f.verification_method,
        f.verified_at,
        f.requires_confirmation,
        f.collected_at,
        f.expires_at,
        row.retention_days,
        row.field_definition_id,
        f.agent_id,
    )


def _describe(exc: psycopg.Error) -> str:
    """A database refusal for the line's report, without values (they are customer data)."""
    constraint = exc.diag.constraint_name
    if constraint:
        return f"refused by the database ({constraint})"
    return "refused by the database: a value is out of range"
