"""Rules about values that need no schema: the type a bare JSON value implies."""

from __future__ import annotations

import math
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


def is_json_safe(value: Any, depth: int = 0) -> bool:
    """True when PostgreSQL's jsonb can store the value: finite numbers only (Python's
    JSON parser lets NaN and Infinity through) and nesting no deeper than 64 levels."""
    if depth > 64:
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(is_json_safe(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(is_json_safe(v, depth + 1) for v in value)
    return True
