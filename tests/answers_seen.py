"""Every answer the suite's in-process client gets must be declared in the OpenAPI document.

conftest.py wraps the app of the `http` fixture (and so of `api` and `other_api`) in
AnswerRecorder; at the end of the session the recorder names every (method, path
template, status) the document does not declare for that operation, and the session
fails with that list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class AnswerRecorder:
    """ASGI wrapper noting (method, path, status) of each response."""

    app: ASGIApp
    seen: set[tuple[str, str, int]] = field(default_factory=set)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def noting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.seen.add((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, noting_send)

    def undeclared(self, document: dict[str, Any]) -> list[str]:
        """What was answered but is not in the document, as `METHOD /template STATUS`."""
        templates = [
            (compile_path(path)[0], path, operations)
            for path, operations in document["paths"].items()
        ]
        missing = set()
        for method, path, status in self.seen:
            operation = _operation(templates, method.lower(), path)
            if operation is None:
                continue  # not an operation: 405/OPTIONS, /docs, unknown paths (404)
            template, responses = operation
            if str(status) not in responses and "default" not in responses:
                missing.add(f"{method} {template} {status}")
        return sorted(missing)


def _operation(
    templates: list[tuple[re.Pattern[str], str, dict[str, Any]]], method: str, path: str
) -> tuple[str, dict[str, Any]] | None:
    """The operation routing picks for the request: the first template, in document (that
    is, route) order, that matches the path and has the method."""
    for pattern, template, operations in templates:
        if method in operations and pattern.match(path):
            return template, operations[method]["responses"]
    return None
