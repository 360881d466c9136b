"""Fields: a write as the tenant's validation mode wants it (find the agent's definition,
check and normalize the value, then store it or refuse it in strict mode), and the reads,
history and deletes of one field."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog

from ccvault.domain.audit import Action, AuditNote, note
from ccvault.domain.caller import Caller
from ccvault.domain.errors import InvalidInput, Problem, Withheld
from ccvault.domain.etags import IfMatch
from ccvault.domain.models import ProfileField, ValidationMode, ValueType
from ccvault.domain.purposes import require_purpose, withheld
from ccvault.domain.schema import FieldDefinition
from ccvault.domain.validation import Rules, check_is_slow, check_value
from ccvault.domain.values import infer_value_type
from ccvault.domain.writes import NewField
from ccvault.services.audit import AuditService
from ccvault.storage.profiles import ProfileStore
from ccvault.storage.schema import SchemaStore

log = structlog.get_logger("ccvault.validation")


@dataclass(frozen=True)
class StoredWrite:
    """The stored version and, in warn mode, what was wrong with it."""

    field: ProfileField
    warnings: tuple[Problem, ...]


@dataclass(frozen=True)
class CheckedField:
    """A value as the tenant's mode leaves it: normalized (when its type check passed),
    its type, what was wrong with it, and what its definition adds to the stored row."""

    value: Any
    value_type: ValueType
    problems: tuple[Problem, ...]
    retention_days: int | None = None
    field_definition_id: UUID | None = None

    def refused(self, mode: ValidationMode) -> bool:
        """Whether the mode refuses the write (strict mode and any problem)."""
        return bool(self.problems) and mode is ValidationMode.strict


async def check_field(
    definition: FieldDefinition | None,
    mode: ValidationMode,
    tenant_id: UUID,
    name: str,
    new: NewField,
) -> CheckedField:
    """Validate and normalize a new value of field `name` against `definition` (the one
    `new.agent_id` names, None when it names none or has none) as `mode` wants: every
    write, single or bulk, comes through here."""
    # A definition's own type wins over the request's; else the declared or implied type.
    value_type = definition.value_type if definition else new.value_type
    value_type = value_type or infer_value_type(new.value)
    value = new.value
    problems: tuple[Problem, ...] = ()
    if mode is not ValidationMode.disabled:
        if new.agent_id and definition is None:
            msg = f"agent {new.agent_id!r} has no enabled definition for {name!r}"
            problems += (Problem(("path", "name"), msg, "unknown_field"),)
        rules = definition.rules if definition else Rules(value_type)
        if check_is_slow(value, rules):
            # Compiling a pattern not yet cached, or matching a long text (RE2 lets go of
            # the GIL while it matches), happens on a worker thread, not on the loop.
            checked = await asyncio.to_thread(check_value, value, rules)
        else:
            checked = check_value(value, rules)
        if definition and any(p.code == "config_error" for p in checked.problems):
            log.warning(
                "stored definition unusable",
                tenant_id=str(tenant_id),
                agent_id=new.agent_id,
                field=name,
                problem=checked.problems[0].msg,
            )
        problems += checked.problems
        value = checked.value
    return CheckedField(
        value,
        value_type,
        problems,
        retention_days=definition.retention_days if definition else None,
        field_definition_id=definition.id if definition else None,
    )


async def write_field(
    profiles: ProfileStore,
    schema: SchemaStore,
    mode: ValidationMode,
    tenant_id: UUID,
    customer_id: str,
    name: str,
    new: NewField,
    *,
    key_id: UUID | None = None,
    if_match: IfMatch | None = None,
    audit: AuditNote | None = None,
) -> StoredWrite:
    """Validate (per `mode`) and store a new version of a field, written by `key_id`
    (None when no key applies) and refused (412) if the profile moved past `if_match`."""
    definition = (
        await schema.definition_for_write(tenant_id, new.agent_id, name) if new.agent_id else None
    )
    checked = await check_field(definition, mode, tenant_id, name, new)
    problems = checked.problems
    if checked.refused(mode):
        raise InvalidInput(f"the value for {name!r} failed validation", list(problems))
    if problems:
        # Never the customer id (nor the value): logs name no customer.
        log.warning(
            "validation warning",
            tenant_id=str(tenant_id),
            field=name,
            codes=[p.code for p in problems],
        )
    field = await profiles.save_field(
        tenant_id,
        customer_id,
        name,
        new,
        value=checked.value,
        value_type=checked.value_type,
        retention_days=checked.retention_days,
        field_definition_id=checked.field_definition_id,
        key_id=key_id,
        if_match=if_match,
        audit=audit,
    )
    return StoredWrite(field, problems)


class FieldService:
    """Write, read, list the history of, and delete one field of a profile."""

    def __init__(
        self, profiles: ProfileStore, schema: SchemaStore, *, audit: AuditService | None = None
    ) -> None:
        self._profiles = profiles
        self._schema = schema
        self._audit = audit

    async def write(
        self,
        caller: Caller,
        customer_id: str,
        name: str,
        new: NewField,
        *,
        if_match: IfMatch | None = None,
    ) -> StoredWrite:
        """Validate per the tenant's mode and store a new active version; the previous
        one becomes superseded in the same transaction."""
        return await write_field(
            self._profiles,
            self._schema,
            ValidationMode(caller.validation_mode),
            caller.tenant_id,
            customer_id,
            name,
            new,
            key_id=caller.key_id,
            if_match=if_match,
            audit=note(caller, Action.field_write, customer_id, target=name),
        )

    async def get(
        self, caller: Caller, customer_id: str, name: str, *, purpose: str | None = None
    ) -> ProfileField:
        """The active version (NotFound when absent, deleted, or past its expires_at;
        Withheld when a read for `purpose` may not see it)."""
        require_purpose(purpose, caller.require_purpose)
        field, owner = await self._profiles.get_field_owned(caller.tenant_id, customer_id, name)
        if purpose is None or field.field_definition_id is None:
            self._read(caller, Action.field_read, owner, name, purpose)
            return field
        rules = await self._schema.read_rules(caller.tenant_id, [field.field_definition_id])
        if not rules:
            self._read(caller, Action.field_read, owner, name, purpose)
            return field
        profile, _ = await self._profiles.get_profile_versioned(caller.tenant_id, customer_id)
        for hidden in withheld(purpose, [field], rules, profile.consents):
            why = "its definition does not list that purpose"
            if hidden.reason == "consent":
                why = "the customer has not granted the consent its definition names"
            raise Withheld(f"field {name!r} is withheld from reads for {purpose!r}: {why}")
        self._read(caller, Action.field_read, owner, name, purpose)
        return field

    async def history(self, caller: Caller, customer_id: str, name: str) -> list[ProfileField]:
        """Every version of the field, newest first, whatever its status."""
        versions, owner = await self._profiles.field_history_owned(
            caller.tenant_id, customer_id, name
        )
        self._read(caller, Action.history_read, owner, name, None)
        return versions

    async def delete(
        self, caller: Caller, customer_id: str, name: str, *, if_match: IfMatch | None = None
    ) -> None:
        """Soft-delete the current version; items derived from it become orphaned."""
        await self._profiles.delete_field(
            caller.tenant_id,
            customer_id,
            name,
            if_match=if_match,
            audit=note(caller, Action.field_delete, customer_id, target=name),
        )

    def _read(
        self, caller: Caller, action: Action, customer_id: str, name: str, purpose: str | None
    ) -> None:
        if self._audit is not None:
            self._audit.read(caller, action, customer_id, target=name, purpose=purpose)
