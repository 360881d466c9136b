"""Purpose-aware reads (DESIGN §8 "Privacy"): which fields a read naming a purpose may
see. A field is withheld when the definition its version was written under lists
purposes without the read's (`purpose`), or names a consent the customer has not granted
(`consent`). Fields written without a definition, or under one that says neither, are
visible to every purpose."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol
from uuid import UUID

from ccvault.domain.errors import InvalidInput, Problem
from ccvault.domain.models import Consent, Profile, WithheldField


@dataclass(frozen=True)
class ReadRule:
    """What one definition says about reads of its field."""

    purposes: frozenset[str]
    consent_type: str | None


class NamedVersion(Protocol):
    """What deciding on a field version needs: its name and the definition it was written
    under (a ProfileField, or a DefinitionUse when the values are not at hand)."""

    @property
    def name(self) -> str: ...

    @property
    def field_definition_id(self) -> UUID | None: ...


class DefinitionUse(NamedTuple):
    """A definition some version of a field was written under (without the value)."""

    name: str
    field_definition_id: UUID | None


def require_purpose(purpose: str | None, required: bool) -> None:
    """A tenant that requires purposes refuses reads that name none (422)."""
    if required and purpose is None:
        raise InvalidInput(
            "this tenant requires every read to name its purpose",
            [Problem(("query", "purpose"), "name the purpose of this read", "missing")],
        )


def withheld(
    purpose: str,
    fields: Iterable[NamedVersion],
    rules: Mapping[UUID, ReadRule],
    consents: Iterable[Consent],
) -> list[WithheldField]:
    """The fields (by name, once each, in name order) a read for `purpose` may not see."""
    granted = {c.consent_type for c in consents if c.granted}
    reasons: dict[str, WithheldField] = {}
    for field in fields:
        rule = rules.get(field.field_definition_id) if field.field_definition_id else None
        if rule is None or field.name in reasons:
            continue
        if rule.purposes and purpose not in rule.purposes:
            reasons[field.name] = WithheldField(name=field.name, reason="purpose")
        elif rule.consent_type is not None and rule.consent_type not in granted:
            reasons[field.name] = WithheldField(name=field.name, reason="consent")
    return [reasons[name] for name in sorted(reasons)]


def definition_ids(profile: Profile) -> set[UUID]:
    """The definitions the profile's current (and, with history, past) versions name."""
    versions = list(profile.fields.values())
    for history in (profile.field_history or {}).values():
        versions.extend(history)
    return {v.field_definition_id for v in versions if v.field_definition_id is not None}


def for_purpose(profile: Profile, purpose: str, rules: Mapping[UUID, ReadRule]) -> Profile:
    """The profile as a read for `purpose` sees it: withheld fields gone from `fields` and
    `field_history`, and named in `withheld_fields`."""
    versions = list(profile.fields.values())
    for older in (profile.field_history or {}).values():
        versions.extend(older)
    hidden = withheld(purpose, versions, rules, profile.consents)
    names = {w.name for w in hidden}
    past = profile.field_history
    return profile.model_copy(
        update={
            "fields": {n: f for n, f in profile.fields.items() if n not in names},
            "field_history": None
            if past is None
            else {n: h for n, h in past.items() if n not in names},
            "withheld_fields": hidden,
        }
    )
