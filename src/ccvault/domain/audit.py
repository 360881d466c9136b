"""Audit entries (DESIGN §8 "Audit log"): what one is, how its hash is computed, and how a
chain of them is checked. Pure: the sealer (storage) and `ccv audit verify` both hash with
the functions here, so a chain verifies exactly when it is as the sealer wrote it.

An entry names no value and no customer id: its subject is `subject_hash` (the HMAC of
the customer id under the tenant's secret, as erasure receipts name it) and its `target`
is a field name, an item id or a definition's key, never something the customer said.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from ccvault.domain.caller import Caller

# The prev_hash of each tenant's first entry.
GENESIS = "0" * 64


class Action(StrEnum):
    """`<resource>.<verb>`, exactly as DESIGN §8 lists them."""

    field_write = "field.write"
    field_read = "field.read"
    field_delete = "field.delete"
    history_read = "history.read"
    asset_add = "asset.add"
    asset_delete = "asset.delete"
    profile_create = "profile.create"
    profile_read = "profile.read"
    profile_patch = "profile.patch"
    profile_merge = "profile.merge"
    profile_erase = "profile.erase"
    profile_export = "profile.export"
    lineage_read = "lineage.read"
    consent_put = "consent.put"
    identity_link = "identity.link"
    definition_put = "definition.put"
    definition_delete = "definition.delete"
    scenario_put = "scenario.put"
    scenario_delete = "scenario.delete"
    rule_put = "rule.put"
    rule_delete = "rule.delete"
    requirement_put = "requirement.put"
    requirement_delete = "requirement.delete"
    requirement_review = "requirement.review"


@dataclass(frozen=True)
class AuditNote:
    """An entry before it is sealed: what a write (in its own transaction) or a read (in
    the next batch) hands to the log. `at` is stamped by the database for writes."""

    actor: str
    action: Action
    subject_hash: str | None
    target: str | None
    purpose: str | None
    request_id: str | None


def job_actor(name: str) -> str:
    """The actor of the entries a background job leaves (DESIGN §8: `job:<name>`)."""
    return f"job:{name}"


def requirement_target(
    agent_id: str,
    scenario_id: str | None,
    field_name: str,
    step_id: str | None,
    rule_id: str | None = None,
) -> str:
    """A requirement's key as an entry's target: `agent/scenario/field[@step]`; one that
    belongs to a rule without a scenario is `agent/rule:<rule_id>/field`."""
    scope = scenario_id if scenario_id is not None else f"rule:{rule_id}"
    key = f"{agent_id}/{scope}/{field_name}"
    return key if step_id is None else f"{key}@{step_id}"


def key_actor(key_id: UUID | None) -> str:
    """The actor of a key's entries: its id; `admin` without one (operators, the CLI)."""
    return str(key_id) if key_id is not None else "admin"


def actor_of(caller: Caller) -> str:
    """The actor of the caller's entries (`key_actor` of its key)."""
    return key_actor(caller.key_id)


@functools.lru_cache(maxsize=65536)
def _subject(secret: bytes, customer_id: str) -> str:
    """subject_hash, remembered: a hot profile is read again and again (two HMACs each)."""
    # Here, not at the top: privacy.py's export model imports AuditEntry from this module.
    from ccvault.domain.privacy import subject_hash

    return subject_hash(secret, customer_id)


def note(
    caller: Caller,
    action: Action,
    customer_id: str | None = None,
    *,
    target: str | None = None,
    purpose: str | None = None,
    request_id: str | None = None,
) -> AuditNote:
    """The entry `caller` leaves by doing `action` on `customer_id`'s data."""
    subject = _subject(caller.secret, customer_id) if customer_id and caller.secret else None
    return AuditNote(
        actor=actor_of(caller),
        action=action,
        subject_hash=subject,
        target=target,
        purpose=purpose if purpose is not None else caller.purpose,
        request_id=request_id if request_id is not None else caller.request_id,
    )


class AuditEntry(BaseModel):
    """One sealed entry of a tenant's audit log."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    seq: int
    """1, 2, 3... per tenant, in the order entries were sealed."""
    at: datetime
    """When the write or read happened."""
    actor: str
    """The API key's id, `admin`, or `job:<name>`."""
    action: str
    """`<resource>.<verb>`, e.g. `field.write`, `profile.read`."""
    subject_hash: str | None
    """The customer as erasure receipts name them (HMAC of the id under the tenant's
    secret); null for actions on no customer (definitions, scenarios...)."""
    target: str | None
    """What was acted on: a field name, an item id, `agent/name`; never a value."""
    purpose: str | None
    """The purpose the request named (for MCP calls, the agent unless one was given)."""
    request_id: str | None
    """The request's X-Request-Id."""
    prev_hash: str
    """The previous entry's hash (64 zeros for the first)."""
    hash: str
    """SHA-256 (hex) over this entry's canonical JSON and `prev_hash`."""


def instant(at: datetime) -> str:
    """`at` as the canonical JSON writes it: UTC, microseconds, always the same digits
    (`YYYY-MM-DDTHH:MM:SS.ffffffZ`)."""
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    # isoformat of a UTC instant ends in "+00:00"; it costs a fifth of strftime, which
    # was a quarter of sealing a read's entry.
    return at.isoformat(timespec="microseconds")[:-6] + "Z"


def canonical(seq: int, at: datetime, fields: dict[str, Any], at_text: str | None = None) -> bytes:
    """An entry's canonical JSON: its content keys sorted, no spaces, UTF-8; `prev_hash`
    and `hash` are not part of it (the hash adds prev_hash itself). `at_text` is
    `instant(at)` when the caller has it already."""
    # Built in sorted key order (what sort_keys=True gives), without paying for the sort.
    doc = {
        "action": fields["action"],
        "actor": fields["actor"],
        "at": at_text if at_text is not None else instant(at),
        "purpose": fields["purpose"],
        "request_id": fields["request_id"],
        "seq": seq,
        "subject_hash": fields["subject_hash"],
        "target": fields["target"],
    }
    return _ENCODE(doc).encode()


_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def entry_hash(
    prev_hash: str, seq: int, at: datetime, fields: dict[str, Any], at_text: str | None = None
) -> str:
    """SHA-256 (hex) over the canonical JSON followed by the previous entry's hash."""
    digest = hashlib.sha256(canonical(seq, at, fields, at_text))
    digest.update(prev_hash.encode("ascii"))
    return digest.hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    """The first entry of a chain that is not as it was sealed, and how."""

    seq: int
    problem: str


@dataclass(frozen=True)
class ChainHead:
    """A chain's last entry as the sealer recorded it (`audit_head`, in the sealing
    transaction): what tells a chain whose newest entries were deleted."""

    seq: int
    hash: str


@dataclass
class ChainWalk:
    """Checks one tenant's entries fed in `seq` order; remembers the first break. With
    `head` (the recorded head read before the walk: entries sealed later may follow it),
    the entry at the head's seq must carry its hash and the chain must reach it
    (`finish`)."""

    head: ChainHead | None = None
    last_seq: int = 0
    last_hash: str = GENESIS
    checked: int = 0
    broken: ChainBreak | None = None

    def finish(self, *, had_entries: bool) -> None:
        """After the last row: a chain that stops short of its recorded head lost its
        newest entries; one that had entries when the walk began needs a head at all."""
        if self.broken is not None:
            return
        if self.head is None:
            if had_entries:
                self.broken = ChainBreak(
                    self.last_seq,
                    f"the chain's recorded head is missing (audit_head; the chain ends at "
                    f"entry {self.last_seq})",
                )
            return
        if self.last_seq < self.head.seq:
            first = self.last_seq + 1
            self.broken = ChainBreak(
                first,
                f"entries {first} to {self.head.seq} are missing: the chain ends at entry "
                f"{self.last_seq} but its recorded head is entry {self.head.seq} "
                "(the newest entries were removed)",
            )

    def feed(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows `(seq, at, actor, action, subject_hash, target, purpose, request_id,
        prev_hash, hash)` in ascending seq."""
        if self.broken is not None:
            return
        for seq, at, actor, action, subject, target, purpose, request_id, prev, stored in rows:
            self.checked += 1
            if seq != self.last_seq + 1:
                self.broken = ChainBreak(
                    self.last_seq + 1, f"entry {self.last_seq + 1} is missing (next is {seq})"
                )
                return
            if prev != self.last_hash:
                self.broken = ChainBreak(
                    seq, f"entry {seq} does not follow entry {seq - 1} (removed or reordered)"
                )
                return
            fields = {
                "actor": actor,
                "action": action,
                "subject_hash": subject,
                "target": target,
                "purpose": purpose,
                "request_id": request_id,
            }
            if entry_hash(prev, seq, at, fields) != stored:
                self.broken = ChainBreak(seq, f"entry {seq} was changed (its hash does not match)")
                return
            if self.head is not None and seq == self.head.seq and stored != self.head.hash:
                self.broken = ChainBreak(
                    seq, f"entry {seq} is not the one sealed (the recorded head's hash differs)"
                )
                return
            self.last_seq, self.last_hash = seq, stored
