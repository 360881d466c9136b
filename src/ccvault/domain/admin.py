"""Operators' shapes: tenants, keys, sweeps and jobs (the admin routes and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ccvault.domain.inputs import Input
from ccvault.domain.models import ValidationMode
from ccvault.domain.writes import KEY_LABEL_PATTERN

TenantName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}$")]
KeyLabel = Annotated[str, StringConstraints(pattern=KEY_LABEL_PATTERN)]
RetentionDays = Annotated[int, Field(strict=True, ge=1, le=36500)]


@dataclass(frozen=True)
class RetentionChange:
    """A PATCH's new `history_retention_days` (None: keep history forever), as opposed to
    no change at all (no RetentionChange)."""

    days: int | None


class NewTenant(Input):
    """POST /admin/tenants body."""

    name: TenantName
    """The tenant's name (letters, digits, `._ -`; up to 100 characters)."""
    validation_mode: ValidationMode | None = None
    """How its field writes are validated (default `CCV_VALIDATION_MODE`)."""
    require_purpose: StrictBool = False
    """Whether every read of profiles, fields, exports and context must name a `purpose`."""
    history_retention_days: RetentionDays | None = None
    """Superseded, deleted and expired versions older than this many days (1..36500) are
    deleted by the daily retention job; null (the default) keeps history forever."""


class TenantPatch(Input):
    """PATCH /admin/tenants/{tenant_id} body: the settings to change (at least one)."""

    validation_mode: ValidationMode | None = None
    """The new validation mode."""
    require_purpose: StrictBool | None = None
    """Whether reads must name a `purpose` from now on."""
    history_retention_days: RetentionDays | None = None
    """The new history retention in days (1..36500); an explicit null keeps history
    forever from now on."""

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if (
            self.validation_mode is None
            and self.require_purpose is None
            and "history_retention_days" not in self.model_fields_set
        ):
            raise PydanticCustomError(
                "missing",
                "name validation_mode, require_purpose or history_retention_days",
                {"key": "validation_mode"},
            )
        return self


class CreatedTenant(BaseModel):
    """The new tenant with its API key (shown this once; only its hash is stored)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    tenant_id: UUID
    """The new tenant's id."""
    name: str
    """Its name."""
    validation_mode: ValidationMode
    """Its validation mode."""
    require_purpose: bool = False
    """Whether its reads must name a `purpose`."""
    history_retention_days: int | None = None
    """Days its superseded, deleted and expired versions are kept (null: forever)."""
    api_key: str
    """Its first API key: shown this once, only a hash is stored."""
    key_id: UUID
    """The id of that key (to list or revoke it later)."""


class NewKey(Input):
    """POST /admin/tenants/{tenant_id}/keys body."""

    label: KeyLabel | None = None
    """A name for the key, to tell keys apart in lists (e.g. the service that uses it)."""


class CreatedKey(BaseModel):
    """A new key (shown this once; only its hash is stored)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    key_id: UUID
    """The key's id."""
    label: str | None
    """The label given at creation, if any."""
    api_key: str
    """The key itself: shown this once, only a hash is stored."""
    created_at: datetime
    """When the key was created."""


class SweepCounts(BaseModel):
    """What a sweep changed: updated = fields + assets."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    updated: int
    """Items changed: `fields + assets`."""
    fields: int
    """Field versions changed."""
    assets: int
    """Asset versions changed."""


class JobsAnswer(BaseModel):
    """GET /admin/jobs: counts per state and the most recent jobs."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    counts: dict[str, int]
    """How many jobs are in each state."""
    live_workers: int
    """Workers that sent a heartbeat recently."""
    backlog: int
    """Jobs due and not yet started."""
    items: list[dict[str, Any]]
    """The most recent jobs, newest first."""


@dataclass(frozen=True)
class IssuedKey:
    """A key just issued: the only time it is known in clear."""

    key_id: UUID
    label: str | None
    api_key: str = field(repr=False)
    created_at: datetime
