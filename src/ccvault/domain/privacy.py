"""Privacy shapes (DESIGN §8): erasure requests, receipts and counts, and the subject hash
that names a customer in receipts without naming them."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, StringConstraints

from ccvault.domain.audit import AuditEntry
from ccvault.domain.inputs import Input
from ccvault.domain.models import ChannelIdentity, Consent, Profile, ProfileAsset

# Text for people, up to 500 characters, without control characters (C0, DEL, C1).
REASON_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]{1,500}$"
# Keys the subject hash apart from every other use of the tenant's secret (list cursors
# are signed with the secret itself): a cursor's MAC can never be a subject hash.
_SUBJECT_KEY_LABEL = b"ccvault subject hash v1"


def subject_hash(secret: bytes, customer_id: str) -> str:
    """The customer as receipts (and audit entries) name them: hex HMAC-SHA256 of the id
    under a key derived from the tenant's secret. Stable per tenant, useless without the
    secret, different in every tenant."""
    key = hmac.new(secret, _SUBJECT_KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(key, customer_id.encode(), hashlib.sha256).hexdigest()


class EraseRequest(Input):
    """POST /v1/profiles/{customer_id}/erase body (optional)."""

    reason: Annotated[str, StringConstraints(pattern=REASON_PATTERN)] | None = None
    """Why the profile is erased (e.g. `GDPR art. 17 request #8812`), kept on the receipt
    as given: it must not name the customer (a reason containing the customer id is
    refused with 422)."""


class ErasureCounts(BaseModel):
    """Rows deleted by one erasure, by kind (every version counts)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    fields: int
    """Field versions of the profile."""
    assets: int
    """Asset versions of the profile."""
    identities: int
    """Channel identities of the profile."""
    consents: int
    """Consents of the profile."""
    derived_items: int
    """Field and asset versions of other profiles derived, directly or transitively, from
    an erased item."""


class Erasure(BaseModel):
    """The answer to an erasure: its receipt's id, when, and what went."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    receipt_id: UUID
    """The receipt kept for this erasure (listed by `GET /admin/erasures`)."""
    erased_at: datetime
    """When the erasure committed."""
    counts: ErasureCounts
    """Rows deleted, by kind."""


class ErasureReceipt(Erasure):
    """What the vault keeps of an erasure: no customer id, no value."""

    subject_hash: str
    """Hex HMAC-SHA256 of the erased customer id under the tenant's secret: a tenant that
    knows an id can recognise its receipt; the receipt alone names no one."""
    reason: str | None
    """The reason the caller gave, if any."""


class ConsentRecord(Consent):
    """One answer the customer gave (or a merge carried over) for one kind of consent."""

    recorded_at: datetime
    """From when the answer stood for this profile (reads as of an instant go by it)."""


class ProfileExport(BaseModel):
    """GET /v1/profiles/{customer_id}/export: everything held about one customer. Streamed:
    the server writes it piece by piece, never holding it whole."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    customer_id: str
    """The customer's id (the target's, when the request named an alias)."""
    exported_at: datetime
    """When the export began."""
    profile: Profile
    """The current profile, with `field_history`: every version of every field, deleted
    ones included, newest first per name. An export naming a `purpose` leaves out the
    fields that purpose may not see and lists them in `withheld_fields`."""
    assets: list[ProfileAsset]
    """Every version of every asset, deleted ones included, by name, newest first."""
    consents: list[Consent]
    """The customer's current answer per consent type."""
    channel_identities: list[ChannelIdentity]
    """The handles linked to the customer."""
    audit: list[AuditEntry]
    """The customer's audit entries, oldest first (DESIGN §8 "Audit log")."""
    consent_history: list[ConsentRecord] = []
    """Every consent answer kept for the customer (profiles merged into it included),
    oldest first: the history reads as of an instant use."""
