"""Integer bounds in the OpenAPI document as integers: FastAPI's schema model types every
minimum/maximum as a float, so `size_bytes` announced `maximum: 9.007199254740991e+15`
and `minimum: 0.0`, which generated clients turn into floats or reject."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def integer_bounds(node: Any) -> None:
    """Rewrite, in place, the whole-number bounds of every integer schema as integers."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in _BOUNDS:
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = int(value)
        for child in node.values():
            integer_bounds(child)
    elif isinstance(node, list):
        for child in node:
            integer_bounds(child)


def install_integer_bounds(app: FastAPI) -> None:
    """Fix the document once, when FastAPI first builds (and caches) it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        integer_bounds(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
