"""field_of's shortcut for bare values gives exactly what validating `{"value": raw}` does."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from ccvault.domain.bounds import MAX_VALUE_BYTES
from ccvault.domain.imports import ImportedField, field_of

BARE: list[Any] = [
    "",
    "Ana Lima",
    "\u00e9\u4e2d\U0001f600",
    "\x01" * ((MAX_VALUE_BYTES - 2) // 6),  # the longest string taken by the shortcut
    "\x01" * ((MAX_VALUE_BYTES - 2) // 6 + 1),  # one more: validated
    "x" * (MAX_VALUE_BYTES + 1),  # too large: refused either way
    True,
    False,
    0,
    -7,
    10**18 - 1,
    10**18,
    10**40,
    1.5,
    -0.0,
    1e308,
    [1, "a"],
    {"a": 1},
]


@pytest.mark.parametrize("raw", BARE, ids=lambda r: f"{type(r).__name__}:{str(r)[:12]!r}")
def test_bare_value_same_as_validated(raw: Any) -> None:
    try:
        expected = ImportedField.model_validate({"value": raw})
    except ValidationError as exc:
        with pytest.raises(ValidationError) as got:
            field_of(raw)
        assert got.value.errors(include_url=False) == exc.errors(include_url=False)
        return
    got_field = field_of(raw) if not isinstance(raw, dict) else field_of({"value": raw})
    assert got_field == expected
    assert got_field.model_dump() == expected.model_dump()
    assert type(got_field.value) is type(expected.value)


@pytest.mark.parametrize("raw", [None, math.nan, math.inf, -math.inf])
def test_unstorable_bare_values_still_refused(raw: Any) -> None:
    with pytest.raises(ValidationError):
        field_of(raw)
