"""The base of every request body: unknown keys refused, and no text PostgreSQL cannot
store (NUL characters, unpaired surrogates) gets past validation to become a 500."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_text(value: Any, depth: int = 0) -> bool:
    """True when a string anywhere in the value (keys included) cannot be stored."""
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if depth > 64:
        return False  # depth itself is judged by is_json_safe
    if isinstance(value, dict):
        return any(
            unstorable_text(k, depth + 1) or unstorable_text(v, depth + 1) for k, v in value.items()
        )
    if isinstance(value, list):
        return any(unstorable_text(v, depth + 1) for v in value)
    return False


class Input(BaseModel):
    """A request body."""

    # Attribute docstrings become the fields' descriptions in the OpenAPI document.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        if unstorable_text(data):
            raise ValueError("text must not contain NUL characters or unpaired surrogates")
        return data
