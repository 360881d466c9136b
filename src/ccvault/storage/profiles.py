"""The profile store: profiles, identities, consents, fields and assets on PostgreSQL.

Every write locks its profile row first (ccv_lock_profile, migration 0006), so
writers of one profile are serialized by PostgreSQL and the one-active index holds.
Field and asset writes are one call of a plpgsql function each (lock, source check,
supersede, insert): one round trip, one transaction.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter

from ccvault.domain.audit import AuditNote
from ccvault.domain.bounds import profile_limit_error
from ccvault.domain.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, Problem
from ccvault.domain.etags import ANY_VERSION, IfMatch
from ccvault.domain.models import (
    ChannelIdentity,
    Consent,
    Profile,
    ProfileAsset,
    ProfileField,
    ValueType,
    VerificationLevel,
)
from ccvault.domain.values import infer_value_type
from ccvault.domain.writes import ConsentAnswer, NewAsset, NewField, NewIdentity, _SourceLink
from ccvault.storage import audit as audit_sql
from ccvault.storage import events as events_sql
from ccvault.storage.cache import ProfileCache, Touched
from ccvault.storage.db import Pool
from ccvault.storage.profile_json import Unexpected, plain_read_json
from ccvault.storage.queries import load

Q = load("profiles.sql")
# A merge can find one of its profiles merged away meanwhile; that settles fast.
_LOCK_ATTEMPTS = 5
_HISTORY: TypeAdapter[dict[str, list[ProfileField]]] = TypeAdapter(dict[str, list[ProfileField]])
M = load("merge.sql")

# Keys only some reads answer with: `?include=history` and `?purpose=` reads.
PLAIN_READ_EXCLUDES = {"field_history", "withheld_fields"}


class ProfileStore:
    """Reads and writes one tenant-scoped profile at a time; every query filters tenant_id."""

    def __init__(self, pool: Pool, cache: ProfileCache | None = None) -> None:
        self.pool = pool
        self.cache = cache

    # -- profiles ---------------------------------------------------------------

    async def get_profile(
        self, tenant_id: UUID, customer_id: str, *, include_history: bool = False
    ) -> Profile:
        """The whole current profile (one cache hit or one query); NotFound if none.

        With include_history, a second query adds every version of every field.
        """
        if include_history or self.cache is None:
            profile, _ = await self.get_profile_versioned(
                tenant_id, customer_id, include_history=include_history
            )
            return profile
        body, _, parsed = await self._read_through(tenant_id, customer_id, model=True)
        # A miss parsed the profile already: it is not parsed again from its own JSON.
        return parsed if parsed is not None else Profile.model_validate_json(body)

    async def get_profile_versioned(
        self, tenant_id: UUID, customer_id: str, *, include_history: bool = False
    ) -> tuple[Profile, int]:
        """The profile from PostgreSQL with the version it was read at (its ETag).

        The version is the profile's at the first query: a write committing between the
        two queries of include_history only makes the tag older than the answer, so an
        If-Match with it is refused, never wrongly accepted.
        """
        doc, version, *_ = await self._read_profile(tenant_id, customer_id)
        profile = Profile.model_validate_json(doc)
        if not include_history:
            return profile, version
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                Q["profile_history"], {"tenant_id": tenant_id, "customer_id": customer_id}
            )
            row = await cur.fetchone()
        assert row is not None
        history = _HISTORY.validate_json(row[0])
        return profile.model_copy(update={"field_history": history}), version

    async def get_profile_json(self, tenant_id: UUID, customer_id: str) -> bytes:
        """The current profile as API JSON bytes (see `read_profile_json`)."""
        body, _ = await self.read_profile_json(tenant_id, customer_id)
        return body

    async def read_profile_json(self, tenant_id: UUID, customer_id: str) -> tuple[bytes, int]:
        """The current profile as API JSON bytes and its version: served from the cache as
        stored when it is there, else read in one query and cached under the version it
        was read at. The version is the answer's ETag, so a hit's costs no query."""
        body, version, _ = await self._read_through(tenant_id, customer_id)
        return body, version

    async def read_profile_json_owned(
        self, tenant_id: UUID, customer_id: str
    ) -> tuple[bytes, int, str]:
        """As `read_profile_json`, with the customer id the profile belongs to: the
        target's when `customer_id` is an alias (reads are audited under it)."""
        body, version, parsed = await self._read_through(tenant_id, customer_id)
        # Aliases are never cached and always parsed (see _read_through): a read that
        # answers no model read the id it was asked.
        return body, version, parsed.customer_id if parsed is not None else customer_id

    async def _read_through(
        self, tenant_id: UUID, customer_id: str, *, model: bool = False
    ) -> tuple[bytes, int, Profile | None]:
        """As `read_profile_json`; with `model`, a miss also answers the profile model it
        parsed (None on a hit, and without `model`)."""
        epoch = -1
        if self.cache is not None:
            cached, epoch, cached_version = await self.cache.get_versioned(tenant_id, customer_id)
            if cached is not None:
                return cached, cached_version, None
        doc, version, via_alias, expires_at_ms = await self._read_profile(tenant_id, customer_id)
        # Every path answers the models' JSON form. Without a model to return, the
        # document is rewritten into that form directly (profile_json.py: the same bytes
        # for under half the cost of parsing and dumping the models).
        profile = body = None
        # An alias's read goes through the model: its customer_id (the target's) is what
        # the read is audited under (read_profile_json_owned); aliases are rare and never
        # cached, so they were misses anyway.
        if not model and not via_alias:
            with contextlib.suppress(Unexpected):
                body = plain_read_json(doc)
        if body is None:
            profile = Profile.model_validate_json(doc)
            body = profile.model_dump_json(exclude=PLAIN_READ_EXCLUDES).encode()
        # Aliases are read through to PostgreSQL: only the target's key is invalidated.
        if self.cache is not None and not via_alias:
            await self.cache.put(tenant_id, customer_id, version, epoch, body, expires_at_ms)
        return body, version, profile

    async def _read_profile(
        self, tenant_id: UUID, customer_id: str
    ) -> tuple[str, int, bool, int | None]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                Q["get_profile"], {"tenant_id": tenant_id, "customer_id": customer_id}
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no profile {customer_id!r}")
        doc, version, via_alias, expires_at_ms = row
        return doc, version, via_alias, expires_at_ms

    async def _invalidate(self, touched: list[Touched]) -> None:
        """After commit: make every later read, on any process, see this write."""
        if self.cache is not None:
            await self.cache.invalidate(touched)

    async def customer_for_channel(
        self, tenant_id: UUID, channel: str, channel_user_id: str
    ) -> str:
        """The customer_id an identity is linked to; NotFound when it is linked to none."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                Q["get_profile_by_channel"],
                {"tenant_id": tenant_id, "channel": channel, "channel_user_id": channel_user_id},
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no profile for {channel}:{channel_user_id}")
        return str(row[0])

    async def create_profile(
        self,
        tenant_id: UUID,
        customer_id: str | None,
        identities: list[NewIdentity],
        *,
        audit: Callable[[str], AuditNote] | None = None,
    ) -> str:
        """Create an empty profile with its identities; Conflict if the id or one is taken.
        `audit` makes the entry for the (possibly minted) customer id, in the transaction."""
        customer_id = customer_id or str(uuid.uuid4())
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                Q["create_profile"],
                {"id": uuid.uuid4(), "tenant_id": tenant_id, "customer_id": customer_id},
            )
            row = await cur.fetchone()
            if row is None:
                raise Conflict(f"profile {customer_id!r} already exists")
            for identity in identities:
                await self._link_identity(conn, tenant_id, row[0], identity)
            if audit is not None:
                await audit_sql.note(conn, tenant_id, audit(customer_id))
        return customer_id

    async def link_identity(
        self,
        tenant_id: UUID,
        customer_id: str,
        identity: NewIdentity,
        *,
        if_match: IfMatch | None = None,
        audit: AuditNote | None = None,
    ) -> tuple[ChannelIdentity, bool]:
        """Link a channel identity (created=False when it was already on this profile)."""
        async with self.pool.connection() as conn, conn.transaction():
            profile_id, touched = await self._lock_or_create(
                conn, tenant_id, customer_id, touch=False, if_match=if_match
            )
            result = await self._link_identity(conn, tenant_id, profile_id, identity)
            await audit_sql.note(
                conn, tenant_id, audit, asked=customer_id, landed=touched.customer_id
            )
        await self._invalidate([touched])
        return result

    async def _link_identity(
        self, conn: AsyncConnection[Any], tenant_id: UUID, profile_id: UUID, new: NewIdentity
    ) -> tuple[ChannelIdentity, bool]:
        params = {
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "profile_id": profile_id,
            **new.model_dump(),
        }
        cur = await conn.execute(Q["link_identity"], params)
        row = await cur.fetchone()
        if row is None:
            raise Conflict(
                f"identity {new.channel}:{new.channel_user_id} belongs to another profile"
            )
        channel, user_id, verified, primary, created_at, created = row
        if created:
            await conn.execute(Q["touch_profile"], params)
        if created and new.primary:
            await conn.execute(Q["make_primary_identity"], params)
            primary = True
        identity = ChannelIdentity(
            channel=channel,
            channel_user_id=user_id,
            verified=verified,
            primary=primary,
            created_at=created_at,
        )
        return identity, bool(created)

    async def put_consent(
        self,
        tenant_id: UUID,
        customer_id: str,
        consent_type: str,
        answer: ConsentAnswer,
        *,
        if_match: IfMatch | None = None,
        audit: AuditNote | None = None,
    ) -> Consent:
        """Record the customer's current answer for a consent type."""
        async with self.pool.connection() as conn, conn.transaction():
            profile_id, touched = await self._lock_or_create(
                conn, tenant_id, customer_id, if_match=if_match
            )
            cur = await conn.execute(
                Q["put_consent"],
                {
                    "tenant_id": tenant_id,
                    "profile_id": profile_id,
                    "consent_type": consent_type,
                    "granted": answer.granted,
                    "source_session_id": answer.source_session_id,
                },
            )
            row = await cur.fetchone()
            await audit_sql.note(
                conn, tenant_id, audit, asked=customer_id, landed=touched.customer_id
            )
        await self._invalidate([touched])
        assert row is not None
        keys = ("consent_type", "granted", "granted_at", "revoked_at", "source_session_id")
        return Consent.model_validate(dict(zip((*keys, "updated_at"), row, strict=True)))

    async def set_verification_level(
        self,
        tenant_id: UUID,
        customer_id: str,
        level: VerificationLevel,
        *,
        if_match: IfMatch | None = None,
        audit: AuditNote | None = None,
    ) -> str:
        """Record how far the customer is verified (an alias acts on its target); returns
        the customer id the level now belongs to. NotFound for an unknown profile."""
        async with self.pool.connection() as conn, conn.transaction():
            profile_id, touched = await self._lock_or_create(
                conn, tenant_id, customer_id, touch=False, create=False, if_match=if_match
            )
            await conn.execute(
                Q["set_verification_level"],
                {"tenant_id": tenant_id, "profile_id": profile_id, "level": level.value},
            )
            await audit_sql.note(
                conn, tenant_id, audit, asked=customer_id, landed=touched.customer_id
            )
        await self._invalidate([touched])
        return touched.customer_id

    async def merge(
        self,
        tenant_id: UUID,
        target: str,
        source: str,
        *,
        if_match: IfMatch | None = None,
        audit: AuditNote | None = None,
    ) -> str:
        """Fold `source` into `target`; the source id becomes an alias. Returns the target id.

        An If-Match is checked against the target, under its lock."""
        async with self.pool.connection() as conn, conn.transaction():
            rows = await self._resolve_for_merge(conn, tenant_id, target, source)
            for wanted in (target, source):
                if wanted not in rows:
                    raise NotFound(f"no profile {wanted!r}")
            (target_id, target_customer, target_version) = rows[target]
            source_id = rows[source][0]
            if if_match is not None and not _matches(if_match, target_version):
                raise PreconditionFailed(
                    f"profile {target!r} changed since the ETag given", target_version
                )
            if target_id == source_id:
                raise InvalidInput(
                    "a profile cannot be merged into itself",
                    [
                        Problem(
                            ("body", "source_customer_id"), "same profile as target", "value_error"
                        )
                    ],
                )
            ids = {"tenant_id": tenant_id, "source_id": source_id, "target_id": target_id}
            for step in (
                "merge_fields",
                "move_fields",
                "merge_assets",
                "move_assets",
                "move_identities",
                "merge_consents",
            ):
                await conn.execute(M[step], ids)
            try:
                await conn.execute(M["check_target_limits"], ids)
            except psycopg.Error as exc:
                _raise_profile_limit(exc)
                raise
            await events_sql.emit_merged(conn, tenant_id, target_customer, rows[source][1])
            touched = []
            for step in ("retire_source_profile", "bump_target_profile"):
                cur = await conn.execute(M[step], ids)
                touched += [Touched(tenant_id, c, v) for c, v in await cur.fetchall()]
            await audit_sql.note(conn, tenant_id, audit, asked=target, landed=str(target_customer))
        await self._invalidate(touched)
        return str(target_customer)

    async def _resolve_for_merge(
        self, conn: AsyncConnection[Any], tenant_id: UUID, target: str, source: str
    ) -> dict[str, tuple[UUID, str, int]]:
        """Both profiles (id, customer id, version), aliases followed, locked; again if a
        concurrent merge retired one while we waited for its lock."""
        params = {"tenant_id": tenant_id, "customer_ids": [target, source]}
        for _ in range(_LOCK_ATTEMPTS):
            cur = await conn.execute(M["resolve_profiles"], params)
            found = await cur.fetchall()
            if all(merged_into is None for *_, merged_into in found):
                return {requested: (pid, cid, version) for pid, cid, requested, version, _ in found}
        raise Conflict("the profiles kept changing during the merge; try again")

    # -- fields -----------------------------------------------------------------

    async def save_field(
        self,
        tenant_id: UUID,
        customer_id: str,
        name: str,
        new: NewField,
        *,
        value: Any = None,
        value_type: ValueType | None = None,
        retention_days: int | None = None,
        field_definition_id: UUID | None = None,
        key_id: UUID | None = None,
        if_match: IfMatch | None = None,
        audit: AuditNote | None = None,
    ) -> ProfileField:
        """Write a new active version, superseding the current one in the same transaction.

        `value` and `value_type` override the request's once the caller has validated and
        normalized them; `retention_days` dates `expires_at` when the request gives none.
        `key_id` (the caller's key) and the request's agent_id become its written_by.
        """
        params = {
            **new.model_dump(exclude={"agent_id"}),
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "customer_id": customer_id,
            "name": name,
            "value": Jsonb(new.value if value is None else value),
            "value_type": value_type or new.value_type or infer_value_type(new.value),
            "source_uuid": new.source_uuid,
            "source_metadata": Jsonb(new.source_metadata),
            "retention_days": retention_days,
            "field_definition_id": field_definition_id,
            "written_by_key_id": key_id,
            "written_by_agent_id": new.agent_id,
            "if_versions": _versions(if_match),
        }
        doc = await self._write_item(Q["save_field"], params, customer_id, new, audit)
        return ProfileField.model_validate_json(doc)

    async def get_field(self, tenant_id: UUID, customer_id: str, name: str) -> ProfileField:
        """The live version of a field; NotFound when absent, deleted or past expires_at."""
        field, _ = await self.get_field_owned(tenant_id, customer_id, name)
        return field

    async def get_field_owned(
        self, tenant_id: UUID, customer_id: str, name: str
    ) -> tuple[ProfileField, str]:
        """As `get_field`, with the customer id the profile belongs to (an alias's
        target's: reads are audited under it)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                Q["get_field"], {"tenant_id": tenant_id, "customer_id": customer_id, "name": name}
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no active field {name!r} for {customer_id!r}")
        return ProfileField.model_validate(row[0]), str(row[1])

    async def field_history(
        self, tenant_id: UUID, customer_id: str, name: str
    ) -> list[ProfileField]:
        """Every version of a field, newest first, whatever its status."""
        versions, _ = await self.field_history_owned(tenant_id, customer_id, name)
        return versions

    async def field_history_owned(
        self, tenant_id: UUID, customer_id: str, name: str
    ) -> tuple[list[ProfileField], str]:
        """As `field_history`, with the customer id the profile belongs to."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                Q["field_history"],
                {"tenant_id": tenant_id, "customer_id": customer_id, "name": name},
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no profile {customer_id!r}")
        return [ProfileField.model_validate(doc) for doc in row[1]], str(row[2])

    async def delete_field(
        self,
        tenant_id: UUID,
        customer_id: str,
        name: str,
        *,
        if_match: IfMatch | None = None,
        audit: AuditNote | None = None,
    ) -> UUID:
        """Soft-delete the current version and orphan what derives from it."""
        async with self.pool.connection() as conn, conn.transaction():
            profile_id, touched = await self._lock_or_create(
                conn, tenant_id, customer_id, create=False, if_match=if_match
            )
            cur = await conn.execute(
                Q["soft_delete_field"],
                {"tenant_id": tenant_id, "profile_id": profile_id, "name": name},
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound(f"no current field {name!r} for {customer_id!r}")
            orphaned = await self._orphan_dependents(conn, tenant_id, row[0])
            await audit_sql.note(
                conn, tenant_id, audit, asked=customer_id, landed=touched.customer_id
            )
        await self._bump_and_invalidate(touched, tenant_id, orphaned)
        return UUID(str(row[0]))

    # -- assets -----------------------------------------------------------------

    async def save_asset(
        self,
        tenant_id: UUID,
        customer_id: str,
        new: NewAsset,
        *,
        key_id: UUID | None = None,
        if_match: IfMatch | None = None,
        audit: AuditNote | None = None,
    ) -> ProfileAsset:
        """Add an asset version; a current asset with the same name becomes superseded."""
        params = {
            **new.model_dump(exclude={"agent_id"}),
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "customer_id": customer_id,
            "source_uuid": new.source_uuid,
            "written_by_key_id": key_id,
            "written_by_agent_id": new.agent_id,
            "if_versions": _versions(if_match),
        }
        doc = await self._write_item(Q["save_asset"], params, customer_id, new, audit)
        return ProfileAsset.model_validate(doc)

    async def list_assets(
        self, tenant_id: UUID, customer_id: str, *, include_history: bool = False
    ) -> list[ProfileAsset]:
        """Live assets of a profile (every version with include_history)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                Q["list_asset_history" if include_history else "list_assets"],
                {"tenant_id": tenant_id, "customer_id": customer_id},
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no profile {customer_id!r}")
        return [ProfileAsset.model_validate(doc) for doc in row[1]]

    async def get_asset(self, tenant_id: UUID, asset_id: UUID) -> ProfileAsset:
        """One asset version by id, deleted ones included (for audit)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(Q["get_asset"], {"tenant_id": tenant_id, "id": asset_id})
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no asset {asset_id}")
        return ProfileAsset.model_validate(row[0])

    async def delete_asset(
        self,
        tenant_id: UUID,
        asset_id: UUID,
        *,
        audit: Callable[[str], AuditNote] | None = None,
    ) -> None:
        """Soft-delete an asset and orphan what derives from it; `audit` makes the entry
        for the asset's customer id, in the transaction."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(Q["get_asset"], {"tenant_id": tenant_id, "id": asset_id})
            found = await cur.fetchone()
            if found is None:
                raise NotFound(f"no asset {asset_id}")
            # Same lock order as every other write to this profile.
            cur = await conn.execute(
                Q["lock_profile_by_id"], {"tenant_id": tenant_id, "id": found[1], "touch": True}
            )
            locked = await cur.fetchone()
            assert locked is not None
            cur = await conn.execute(
                Q["soft_delete_asset"],
                {"tenant_id": tenant_id, "id": asset_id, "profile_id": found[1]},
            )
            if await cur.fetchone() is None:
                raise NotFound(f"asset {asset_id} is already deleted")
            orphaned = await self._orphan_dependents(conn, tenant_id, asset_id)
            if audit is not None:
                await audit_sql.note(conn, tenant_id, audit(str(locked[1])))
        await self._bump_and_invalidate(
            Touched(tenant_id, locked[1], locked[3]), tenant_id, orphaned
        )

    # -- helpers ----------------------------------------------------------------

    async def _lock_or_create(
        self,
        conn: AsyncConnection[Any],
        tenant_id: UUID,
        customer_id: str,
        *,
        touch: bool = True,
        create: bool = True,
        if_match: IfMatch | None = None,
    ) -> tuple[UUID, Touched]:
        """Lock the profile row (creating it if needed), following an alias to its target;
        bumps its version, and its updated_at when `touch`. One round trip when the
        profile exists. An If-Match is checked under the lock (PreconditionFailed)."""
        params = {
            "tenant_id": tenant_id,
            "customer_id": customer_id,
            "touch": touch,
            "create": create,
            "if_versions": _versions(if_match),
        }
        with _write_errors(customer_id):
            cur = await conn.execute(Q["lock_profile"], params)
            row = await cur.fetchone()
        assert row is not None
        profile_id, customer, version = row
        return profile_id, Touched(tenant_id, customer, version)

    async def _write_item(
        self,
        query: str,
        params: dict[str, Any],
        customer_id: str,
        link: _SourceLink,
        audit: AuditNote | None = None,
    ) -> Any:
        """Run a write function (one round trip, its own transaction, with its audit
        entry when given), then invalidate the profile's cache entry; returns the new
        item's document."""
        if audit is not None:
            # Filed under the customer the write landed on (an alias's target).
            query = audit_sql.with_subject_note(query)
            params = {**params, **audit_sql.note_params(params["tenant_id"], audit)}
        async with self.pool.connection() as conn:
            with _write_errors(customer_id, link):
                cur = await conn.execute(query, params)
                row = await cur.fetchone()
        assert row is not None
        doc, customer, version = row
        await self._invalidate([Touched(params["tenant_id"], customer, version)])
        return doc

    async def _orphan_dependents(
        self, conn: AsyncConnection[Any], tenant_id: UUID, item_id: UUID
    ) -> list[UUID]:
        """Orphan what derives from a deleted item; returns the profiles it touched."""
        cur = await conn.execute(Q["orphan_dependents"], {"tenant_id": tenant_id, "id": item_id})
        return [row[0] for row in await cur.fetchall()]

    async def _bump_and_invalidate(
        self, own: Touched, tenant_id: UUID, orphaned_profiles: list[UUID]
    ) -> None:
        """After a delete committed: new versions for the other profiles it orphaned
        items in (their own short transaction), then invalidate everything touched."""
        touched = [own, *await self.bump_profiles(orphaned_profiles, tenant_id)]
        await self._invalidate(touched)

    async def bump_profiles(self, profile_ids: list[UUID], tenant_id: UUID) -> list[Touched]:
        """New versions for the profiles a committed delete orphaned items in, in a
        transaction of their own (one autocommit statement); the caller invalidates them."""
        if not profile_ids:
            return []
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                Q["bump_profiles"], {"tenant_id": tenant_id, "ids": profile_ids}
            )
            return [Touched(t, c, v) for t, c, v in await cur.fetchall()]


def _versions(if_match: IfMatch | None) -> list[int] | None:
    """An If-Match as ccv_lock_profile takes it (migration 0010): NULL for none."""
    return None if if_match is None else list(if_match.versions)


def _matches(if_match: IfMatch, version: int) -> bool:
    """The Python twin of ccv_lock_profile's check, for writes that lock otherwise."""
    return version in if_match.versions or ANY_VERSION in if_match.versions


@contextlib.contextmanager
def _write_errors(customer_id: str, link: _SourceLink | None = None) -> Iterator[None]:
    """The write functions' own SQLSTATEs (migrations 0006, 0010) as the store's errors."""
    try:
        yield
    except psycopg.Error as exc:
        _raise_profile_limit(exc)
        if exc.sqlstate == "CV404":
            raise NotFound(f"no profile {customer_id!r}") from None
        if exc.sqlstate == "CV412":
            found = exc.diag.message_detail or ""
            raise PreconditionFailed(
                f"profile {customer_id!r} changed since the ETag given (or does not exist)",
                int(found) if found.isdigit() else None,
            ) from None
        if exc.sqlstate == "CV409":
            raise Conflict(f"profile {customer_id!r} kept changing; try again") from None
        if exc.sqlstate == "CV422" and link is not None:
            raise _source_problem(link, exc.diag.message_primary or "") from None
        if exc.sqlstate == "55P03" and link is not None:
            # The source's row is held by an erasure (ccv_check_source, migration 0015).
            raise _source_problem(link, "source_erased") from None
        raise


def _raise_profile_limit(exc: psycopg.Error) -> None:
    """A profile limit the database refused the write for (migration 0012) as a 422."""
    if exc.sqlstate == "CV422":
        refused = profile_limit_error(exc.diag.message_primary or "")
        if refused is not None:
            raise refused from None


def _source_problem(link: _SourceLink, reason: str) -> InvalidInput:
    kind = link.source_item_type.value if link.source_item_type else ""
    loc = ("body", "source_item_id")
    if reason == "source_deleted":
        return InvalidInput(
            f"source {kind} {link.source_uuid} is deleted",
            [Problem(loc, f"the {kind} is deleted", "source_deleted")],
        )
    if reason == "source_erased":
        return InvalidInput(
            f"source {kind} {link.source_uuid} is being erased",
            [Problem(loc, f"the {kind} is being erased", "source_not_found")],
        )
    return InvalidInput(
        f"source {kind} {link.source_uuid} does not exist",
        [Problem(loc, f"no {kind} with this id", "source_not_found")],
    )
