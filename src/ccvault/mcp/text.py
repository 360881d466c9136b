"""Words for agents: the tool description that lists an agent's definitions, refusals an
agent can act on."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ccvault.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Problem,
    VaultError,
)
from ccvault.domain.schema import FieldDefinition

# What a good value looks like, per declared type: the second half of "ask again".
EXAMPLES = {
    "email": "an email address like name@example.com",
    "phone": "an international phone number like +4930123456",
    "date": "a date like 1990-04-01",
    "datetime": "a date and time like 2026-12-03T14:00:00Z",
    "number": "a number like 12.5",
    "integer": "a whole number like 42",
    "boolean": "yes or no",
    "url": "a web address like https://example.com",
}


def describe_definitions(definitions: list[FieldDefinition]) -> str:
    """One line per field the agent may remember: name, display name, type and meaning."""
    lines = []
    for d in sorted(definitions, key=lambda d: d.name):
        line = f"- {d.name} ({d.display_name}, {d.value_type.value})"
        if d.allowed_values:
            line += f", one of {json.dumps(d.allowed_values)}"
        if d.description:
            line += f": {d.description}"
        lines.append(line)
    return "\n".join(lines)


def _field_label(name: str, definitions: list[FieldDefinition]) -> tuple[str, str | None]:
    """What to call a field when speaking of it, and its declared type."""
    for d in definitions:
        if d.name == name:
            return f"{d.display_name} ({name})", d.value_type.value
    return name, None


def _problem_text(problems: list[Problem]) -> str:
    said = []
    for p in problems:
        where = ".".join(str(part) for part in p.loc if part not in ("body", "path", "query"))
        said.append(f"{where}: {p.msg}" if where and where != "value" else p.msg)
    return "; ".join(said)


def refusal(
    exc: Exception,
    *,
    field_name: str | None = None,
    definitions: Sequence[FieldDefinition] = (),
) -> str:
    """A failure in words an agent can act on: what was wrong and what to do next."""
    defs = list(definitions)
    if isinstance(exc, InvalidInput):
        if field_name is not None and any(p.loc[-1:] == ("value",) for p in exc.errors):
            label, value_type = _field_label(field_name, defs)
            said = _problem_text(exc.errors)
            text = f"{label} was not stored: {said}."
            example = EXAMPLES.get(value_type or "")
            if example and "like " not in said:  # the vault's own words may show one already
                text += f" It must be {example}."
            return text + " Ask the customer for it again."
        if field_name is not None and any(p.code == "unknown_field" for p in exc.errors):
            known = ", ".join(sorted(d.name for d in defs)) or "none"
            return (
                f"{field_name!r} is not a field this agent collects; nothing was stored. "
                f"Use one of: {known}."
            )
        details = _problem_text(exc.errors)
        return f"Refused: {exc.detail}" + (f" ({details})." if details else ".")
    if isinstance(exc, NotFound):
        return f"Not found: {exc.detail}. Check the id, or create the customer first."
    if isinstance(exc, Conflict):
        return f"Conflict: {exc.detail}."
    if isinstance(exc, PreconditionFailed):
        return f"The profile changed meanwhile ({exc.detail}); read it again and retry."
    if isinstance(exc, VaultError):
        return f"The vault refused: {exc.detail}."
    return f"The vault could not answer: {exc}"
