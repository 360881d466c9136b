"""405 and OPTIONS name every method a path answers.

Routing picks the first route whose path matches and, when none takes the method, lets
that one route refuse it, so `Allow` listed only that route's methods (PUT for a field,
whose GET and DELETE are other routes). Here the refusal is rewritten from the published
document: the methods of every path template the request path matches, which is what
routing would accept, plus OPTIONS, which this module answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Scope

from ccvault.api.errors import problem

# The order methods are listed in, as RFC 9110 lists them.
ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class MethodIndex:
    """The methods of each path template of the OpenAPI document, matched like routing."""

    def __init__(self, paths: Mapping[str, Mapping[str, Any]]) -> None:
        self._templates: list[tuple[re.Pattern[str], frozenset[str]]] = []
        for template, operations in paths.items():
            methods = frozenset(m.upper() for m in operations if m.upper() in ORDER)
            self._templates.append((compile_path(template)[0], methods))

    def allowed(self, path: str) -> set[str]:
        """Every method some template matching `path` answers (empty: not a published path)."""
        found: set[str] = set()
        for pattern, methods in self._templates:
            if pattern.match(path):
                found |= methods
        return found


def allow_header(methods: Iterable[str]) -> str:
    """`Allow` in a stable order, OPTIONS included (every published path answers it)."""
    wanted = {*methods, "OPTIONS"}
    return ", ".join(m for m in ORDER if m in wanted)


def _route_path(scope: Scope) -> str:
    """The path routing matched: without the prefix a proxy mounts the API under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path


def _index(app: FastAPI) -> MethodIndex:
    # Built once per app from the document, which is itself built once.
    index: MethodIndex | None = getattr(app.state, "method_index", None)
    if index is None:
        index = MethodIndex(app.openapi()["paths"])
        app.state.method_index = index
    return index


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    methods = _index(request.app).allowed(_route_path(request.scope))
    if not methods:
        # An unpublished route (/docs, its assets): its own Allow is the whole story.
        allow = (exc.headers or {}).get("Allow", "")
        methods = {m.strip() for m in allow.split(",") if m.strip()}
    allow = allow_header(methods)
    if request.method == "OPTIONS":
        return Response(status_code=204, headers={"Allow": allow})
    detail = f"{request.method} is not allowed here; this path answers {allow}."
    return problem(405, detail, headers={"Allow": allow})


def install_method_handling(app: FastAPI) -> None:
    """Answer OPTIONS (204) and 405 (problem+json) with every method the path supports."""
    app.add_exception_handler(405, _method_not_allowed)
