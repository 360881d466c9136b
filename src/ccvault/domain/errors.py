"""Domain failures, each mapped to one HTTP status by the API layer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One precise complaint about an input: where, what, and a stable code."""

    loc: tuple[str | int, ...]
    msg: str
    code: str


class VaultError(Exception):
    """Base of the errors callers are expected to handle."""

    title = "Vault error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(VaultError):
    """The thing does not exist for this tenant (other tenants' things never exist)."""

    title = "Not found"


class Conflict(VaultError):
    """The request contradicts what is stored (duplicate id, identity owned elsewhere)."""

    title = "Conflict"


class Withheld(VaultError):
    """The thing exists but this read may not see it: its definition does not allow the
    read's purpose, or needs a consent the customer has not granted."""

    title = "Withheld"


class PreconditionFailed(VaultError):
    """An If-Match named a version the profile no longer has (or it does not exist)."""

    title = "Precondition failed"

    def __init__(self, detail: str, current_version: int | None = None) -> None:
        super().__init__(detail)
        self.current_version = current_version


@dataclass
class InvalidInput(VaultError):
    """The request is well-formed but breaks a rule; nothing was written."""

    detail: str
    errors: list[Problem] = field(default_factory=list)
    title = "Unprocessable input"

    def __post_init__(self) -> None:
        super().__init__(self.detail)
