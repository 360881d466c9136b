"""Rules about values that need no schema: the type a bare JSON value implies."""

from __future__ import annotations

from typing import Any

from ccvault.domain.models import ValueType


def infer_value_type(value: Any) -> ValueType:
    """Type of a value written without `value_type` and without an agent definition."""
    if isinstance(value, bool):
        return ValueType.boolean
    if isinstance(value, int | float):
        return ValueType.number
    if isinstance(value, dict | list):
        return ValueType.json
    return ValueType.string
