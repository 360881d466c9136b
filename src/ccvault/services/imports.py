"""Bulk import and export of profiles as NDJSON (DESIGN §8 "Scale").

Import reads a stream of bytes line by line, validates each line and each field exactly
as a field write does (`check_field`, the tenant's mode), and stores the lines in batches
of one transaction each. A line is stored whole or not at all: a batch the database
refuses is split in halves until the line at fault stands alone, and only that line is
reported. Memory stays flat: one batch is held at a time, and at most
`MAX_REPORTED` errors (and warnings) are kept; the rest are counted.

Importing the same file twice writes nothing the second time: a field whose current
version holds the same value and provenance gets no new version (`unchanged`), identities
already linked stay as they are, an unchanged consent is left alone, and a profile nothing
changed in keeps its version and `updated_at`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from ccvault.domain.caller import Caller
from ccvault.domain.errors import Problem
from ccvault.domain.imports import MAX_LINE_BYTES, ImportLine, consent_of, field_of
from ccvault.domain.models import ValidationMode
from ccvault.domain.schema import FieldDefinition
from ccvault.services.fields import check_field
from ccvault.storage.cache import ProfileCache
from ccvault.storage.cache_epoch import DurableEpoch, cache_key_secret
from ccvault.storage.db import Pool, open_pool
from ccvault.storage.imports import BatchRefused, FieldRow, ImportStore, PreparedLine
from ccvault.storage.schema import SchemaStore
from ccvault.storage.tenants import TenantStore

# A batch: at most this many lines, field versions, or bytes of line text.
BATCH_LINES = 1000
BATCH_FIELDS = 10_000
BATCH_BYTES = 8 * 1024 * 1024
# Errors (and warnings) listed in the answer; past this they are only counted.
MAX_REPORTED = 1000
# Definitions remembered during one import (agent, field name): a few per agent.
_DEFINITIONS_KEPT = 10_000
# While a batch is being stored, validation hands the event loop over every this many
# lines (about a millisecond of work): validating never waits for anything, so without
# it the batch in flight would not send its next statement until validation of the
# following batch is done, and PostgreSQL would sit idle meanwhile.
_YIELD_EVERY = 8

Progress = Callable[[int], None]


@dataclass(frozen=True)
class LineReport:
    """What was wrong with one line (1-based, as an editor counts them)."""

    line: int
    errors: list[Problem]

    def as_json(self) -> dict[str, Any]:
        """The answer's form: `{line, errors: [{loc, msg, code}]}`."""
        return {
            "line": self.line,
            "errors": [{"loc": list(p.loc), "msg": p.msg, "code": p.code} for p in self.errors],
        }


@dataclass
class ImportSummary:
    """What an import did."""

    lines: int = 0
    profiles: int = 0
    created: int = 0
    fields: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[LineReport] = field(default_factory=list)
    warnings: list[LineReport] = field(default_factory=list)
    warned: int = 0
    touched_existing: int = 0

    def as_json(self) -> dict[str, Any]:
        """The answer of POST /v1/profiles/import."""
        return {
            "profiles": self.profiles,
            "fields": self.fields,
            "errors": [e.as_json() for e in self.errors],
            "lines": self.lines,
            "created": self.created,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "warnings": [w.as_json() for w in self.warnings],
        }

    def _fail(self, report: LineReport) -> None:
        self.failed += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(report)

    def _warn(self, report: LineReport) -> None:
        self.warned += 1
        if len(self.warnings) < MAX_REPORTED:
            self.warnings.append(report)


class Importer:
    """Imports into and exports from one database (and its cache, when there is one)."""

    def __init__(self, pool: Pool, cache: ProfileCache | None = None) -> None:
        self.store = ImportStore(pool, cache)
        self.schema = SchemaStore(pool)

    async def run(
        self,
        tenant_id: UUID,
        mode: ValidationMode,
        chunks: AsyncIterable[bytes],
        *,
        key_id: UUID | None = None,
        progress: Progress | None = None,
    ) -> ImportSummary:
        """Import an NDJSON byte stream into the tenant; `progress` is told the bytes read."""
        run = _Run(self, tenant_id, mode, key_id)
        try:
            async for number, text in _lines(chunks, progress):
                await run.add(number, text)
            await run.flush()
            await run.settle()
        finally:
            run.abandon()
        return run.summary

    async def import_ndjson(self, caller: Caller, chunks: AsyncIterable[bytes]) -> ImportSummary:
        """POST /v1/profiles/import: the caller's tenant, validation mode and key."""
        return await self.run(
            caller.tenant_id, ValidationMode(caller.validation_mode), chunks, key_id=caller.key_id
        )

    async def export(self, tenant_id: UUID) -> AsyncIterator[str]:
        """Every live profile of the tenant as an import line (no newline)."""
        async for text in self.store.export_lines(tenant_id):
            yield text

    async def count(self, tenant_id: UUID) -> int:
        """How many lines an export writes."""
        return await self.store.count_profiles(tenant_id)


class _Run:
    """One import: the batch being filled and the summary so far."""

    def __init__(
        self, importer: Importer, tenant_id: UUID, mode: ValidationMode, key_id: UUID | None
    ) -> None:
        self.importer = importer
        self.tenant_id = tenant_id
        self.mode = mode
        self.key_id = key_id
        self.summary = ImportSummary()
        self.batch: list[PreparedLine] = []
        self.batch_customers: set[str] = set()
        self.batch_fields = 0
        self.batch_bytes = 0
        self.definitions: dict[tuple[str, str], FieldDefinition | None] = {}
        self.pending: asyncio.Task[None] | None = None

    async def add(self, number: int, text: bytes | None) -> None:
        """Validate one line and add it to the batch (None: the line was too long)."""
        self.summary.lines += 1
        if text is None:
            msg = f"a line is limited to {MAX_LINE_BYTES} bytes"
            self.summary._fail(LineReport(number, [Problem(("line",), msg, "too_long")]))
            return
        if self.pending is not None and self.summary.lines % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
        prepared = await self._prepare(number, text)
        if prepared is None:
            return
        # Two lines of one profile go to different batches, in file order (the later
        # one supersedes the earlier one's values).
        if prepared.customer_id in self.batch_customers:
            await self.flush()
        self.batch.append(prepared)
        self.batch_customers.add(prepared.customer_id)
        self.batch_fields += len(prepared.fields)
        self.batch_bytes += len(text)
        if (
            len(self.batch) >= BATCH_LINES
            or self.batch_fields >= BATCH_FIELDS
            or self.batch_bytes >= BATCH_BYTES
        ):
            await self.flush()

    async def flush(self) -> None:
        """Hand the batch to the database (splitting it to isolate refused lines) once
        the previous one is stored: while PostgreSQL writes one batch, this process
        validates the next (two cores at work, and at most two batches in memory)."""
        batch, self.batch = self.batch, []
        self.batch_customers = set()
        self.batch_fields = self.batch_bytes = 0
        await self.settle()
        if batch:
            self.pending = asyncio.create_task(self._store(batch), name="ccv-import-batch")

    async def settle(self) -> None:
        """Wait for the batch in flight (its failure is raised here)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            await pending

    def abandon(self) -> None:
        """The import ended early (an error, a client gone): stop the batch in flight."""
        if self.pending is not None:
            self.pending.cancel()

    async def _store(self, batch: list[PreparedLine]) -> None:
        store = self.importer.store
        try:
            result = await store.write_batch(self.tenant_id, self.key_id, batch)
        except BatchRefused as refused:
            if len(batch) == 1:
                self.summary._fail(LineReport(batch[0].line, refused.problems))
                return
            middle = len(batch) // 2
            await self._store(batch[:middle])
            await self._store(batch[middle:])
            return
        self.summary.profiles += len(batch)
        self.summary.created += result.created
        self.summary.fields += result.fields
        self.summary.unchanged += result.unchanged
        self.summary.touched_existing += len(result.touched)

    async def _prepare(self, number: int, text: bytes) -> PreparedLine | None:
        """The line validated as the tenant's mode wants, or None (reported) when refused."""
        try:
            line = ImportLine.model_validate_json(text)
        except ValidationError as exc:
            self.summary._fail(LineReport(number, _problems(exc)))
            return None
        prepared = PreparedLine(number, line.customer_id)
        problems: list[Problem] = []
        warnings: list[Problem] = []
        for name, raw in line.fields.items():
            try:
                new = field_of(raw)
            except ValidationError as exc:
                problems += _problems(exc, ("fields", name))
                continue
            definition = await self._definition(new.agent_id, name)
            checked = await check_field(definition, self.mode, self.tenant_id, name, new)
            found = [_at_field(name, p) for p in checked.problems]
            if checked.refused(self.mode):
                problems += found
                continue
            warnings += found
            prepared.fields.append(
                FieldRow(
                    name,
                    new,
                    checked.value,
                    checked.value_type.value,
                    checked.retention_days,
                    checked.field_definition_id,
                )
            )
        if problems:
            self.summary._fail(LineReport(number, problems))
            return None
        if warnings and self.mode is ValidationMode.warn:
            self.summary._warn(LineReport(number, warnings))
        prepared.identities = list(line.channel_identities)
        prepared.consents = [(kind, consent_of(raw)) for kind, raw in line.consents.items()]
        return prepared

    async def _definition(self, agent_id: str | None, name: str) -> FieldDefinition | None:
        """The definition a field names through its agent_id (remembered for the import)."""
        if agent_id is None:
            return None
        key = (agent_id, name)
        if key not in self.definitions:
            if len(self.definitions) >= _DEFINITIONS_KEPT:
                self.definitions.clear()
            self.definitions[key] = await self.importer.schema.definition_for_write(
                self.tenant_id, agent_id, name
            )
        return self.definitions[key]


async def _lines(
    chunks: AsyncIterable[bytes], progress: Progress | None
) -> AsyncIterator[tuple[int, bytes | None]]:
    """(line number, text) for each non-blank line of the stream; None for a line longer
    than MAX_LINE_BYTES, which is skipped without being held in memory."""
    buffer = bytearray()
    number = 0
    skipping = False  # inside a line already reported as too long
    async for chunk in chunks:
        if progress is not None:
            progress(len(chunk))
        buffer += chunk
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            number += 1
            if skipping:
                skipping = False
            elif end - start > MAX_LINE_BYTES:
                yield number, None
            else:
                text = bytes(buffer[start:end])
                if text.strip():
                    yield number, text
            start = end + 1
        del buffer[:start]
        if len(buffer) > MAX_LINE_BYTES:
            if not skipping:
                yield number + 1, None
            skipping = True
            buffer.clear()
    if buffer.strip() and not skipping:
        yield number + 1, bytes(buffer)


def _problems(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[Problem]:
    """Pydantic's errors as problems `{loc, msg, code}` (never the input itself)."""
    return [
        Problem(
            (*prefix, *e["loc"]),
            e["msg"],
            "json_invalid" if e["type"] == "json_invalid" else e["type"],
        )
        for e in exc.errors(include_input=False, include_url=False)
    ]


def _at_field(name: str, problem: Problem) -> Problem:
    """A field write's problem (`["body", "value"]`) located in the line."""
    rest = problem.loc[1:] if problem.loc[:1] == ("body",) else ()
    return Problem(("fields", name, *rest), problem.msg, problem.code)


# -- entry points ---------------------------------------------------------------------


@dataclass(frozen=True)
class TenantRef:
    """A tenant as the command line names it."""

    tenant_id: UUID
    validation_mode: ValidationMode


class OfflineImporter(Importer):
    """The importer of `ccv import` / `ccv export`: its own pool, and the cache when one
    is configured. Without one, an import that changed existing profiles raises the
    durable cache epoch, which every running server lifts within a second."""

    def __init__(self, pool: Pool, cache: ProfileCache | None) -> None:
        super().__init__(pool, cache)
        self.pool = pool
        self.cache = cache

    async def tenant(self, name: str) -> TenantRef | None:
        """The tenant with that name, if any."""
        found = await TenantStore(self.pool).get_by_name(name)
        if found is None:
            return None
        return TenantRef(found.tenant_id, ValidationMode(found.validation_mode))

    async def run(
        self,
        tenant_id: UUID,
        mode: ValidationMode,
        chunks: AsyncIterable[bytes],
        *,
        key_id: UUID | None = None,
        progress: Progress | None = None,
    ) -> ImportSummary:
        """As Importer.run; then retire cached entries if no cache could be told."""
        summary = await super().run(tenant_id, mode, chunks, key_id=key_id, progress=progress)
        if summary.touched_existing and self.cache is None:
            await DurableEpoch(self.pool).advance()
        return summary


@asynccontextmanager
async def offline_importer(
    database_url: str, redis_url: str | None = None, cache_ttl_seconds: int = 1800
) -> AsyncIterator[OfflineImporter]:
    """An importer on the configured database (and Redis, when given), closed afterwards."""
    pool = await open_pool(database_url, min_size=1, max_size=2)
    cache = None
    try:
        if redis_url:
            epoch = DurableEpoch(pool)
            cache = ProfileCache.from_url(
                redis_url,
                cache_ttl_seconds,
                key_secret=await cache_key_secret(pool),
                durable_epoch=epoch.current,
                raise_durable_epoch=epoch.advance,
                catch_up_durable_epoch=epoch.catch_up,
            )
            await cache.start()
        yield OfflineImporter(pool, cache)
    finally:
        if cache is not None:
            await cache.close()
        await pool.close()
