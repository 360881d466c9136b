"""Shapes of answers shared by every route: lists, pages, validation complaints, and the
answer to a field write."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from ccvault.domain.models import ProfileField

T = TypeVar("T")


class ItemList(BaseModel, Generic[T]):
    """Every list answers {"items": [...]}."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    items: list[T]
    """The entries."""


class Page(BaseModel, Generic[T]):
    """A paged list (DESIGN §8): `next_cursor` is null on the last page."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    items: list[T]
    """The entries of this page."""
    next_cursor: str | None
    """Pass it as `cursor` for the next page; null on the last page."""


class ValidationIssue(BaseModel):
    """One precise complaint about one place of a request, or one warning about a value."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    loc: list[str | int]
    """Where: the part of the request (`body`, `query`, `path`) and the keys or indexes
    leading to the value."""
    msg: str
    """What is wrong, for a person."""
    code: str
    """A stable machine-readable code (`missing`, `string_pattern_mismatch`, `type_error`,
    `format_error`, `regex_error`, `allowed_values_error`, `config_error`, `unknown_field`...)."""


class WrittenField(ProfileField):
    """The new active version, with the validation warnings in warn mode."""

    validation_warnings: list[ValidationIssue] | None = None
    """Only in the tenant's warn mode: what failed validation (the value was stored anyway);
    empty when all is well."""
