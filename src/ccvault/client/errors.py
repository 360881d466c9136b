"""Typed errors: every refusal of the vault is a `VaultError` carrying the problem+json
answer (RFC 9457) it came with, as a subclass chosen by its status."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from ccvault.domain.answers import ValidationIssue


class VaultError(Exception):
    """The vault refused a request, or could not be reached (`status` is None then).

    `problem` is the whole problem+json object; `title`, `detail` and `errors` are its
    members (`errors` holds the precise complaints of a 422)."""

    def __init__(
        self,
        status: int | None,
        title: str,
        detail: str | None = None,
        *,
        errors: list[ValidationIssue] | None = None,
        problem: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.errors: list[ValidationIssue] = errors or []
        self.problem: dict[str, Any] = dict(problem or {})
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self._message())

    def _message(self) -> str:
        head = f"{self.status} {self.title}" if self.status is not None else self.title
        text = f"{head}: {self.detail}" if self.detail else head
        if self.errors:
            listed = "; ".join(
                f"{'.'.join(str(p) for p in issue.loc)}: {issue.msg}" for issue in self.errors
            )
            text = f"{text} ({listed})"
        return text


class Unauthorized(VaultError):
    """401 (no key, or an unknown or revoked one) or 403 (a tenant key on an operator
    route)."""


class Withheld(VaultError):
    """403 from a read naming a purpose: the field exists, but its definition does not
    allow that purpose or needs a consent the customer has not granted."""


class NotFound(VaultError):
    """404: nothing with that id for this tenant (another tenant's items never exist)."""


class Conflict(VaultError):
    """409: the request contradicts what is stored (the profile exists, the identity
    belongs to another profile...)."""


class PreconditionFailed(VaultError):
    """412: the profile changed since the ETag given as `if_match` (read it again)."""


class ValidationFailed(VaultError):
    """422: the request breaks the schema or a rule of the vault; nothing was written.
    `.errors` lists each complaint (`loc`, `msg`, `code`)."""


class ServerError(VaultError):
    """5xx: the vault failed (after the retries an idempotent request is allowed)."""


class Unreachable(VaultError):
    """No answer at all: the connection failed or timed out (after the retries an idempotent
    request is allowed). `status` is None; the httpx error is the `__cause__`."""


_BY_STATUS: dict[int, type[VaultError]] = {
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    422: ValidationFailed,
}


def error_for(status: int, headers: Mapping[str, str], content: bytes) -> VaultError:
    """The typed error for an answer with an error status, from its problem+json body (or
    whatever body a proxy in between sent instead)."""
    try:
        problem = json.loads(content) if content else {}
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else VaultError)
    if status == 403 and problem.get("title") == "Withheld":
        kind = Withheld
    raw_errors = problem.get("errors")
    issues: list[ValidationIssue] = []
    if isinstance(raw_errors, list):
        for raw in raw_errors:
            try:
                issues.append(ValidationIssue.model_validate(raw))
            except ValueError:
                continue  # a complaint of an unknown shape must not hide the error itself
    detail = problem.get("detail")
    if detail is None and not problem and content:
        detail = content[:200].decode("utf-8", "replace")
    return kind(
        status,
        str(problem.get("title") or _phrase(status)),
        None if detail is None else str(detail),
        errors=issues,
        problem=problem,
        headers=headers,
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
