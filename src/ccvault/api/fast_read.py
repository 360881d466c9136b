"""The hot read, `GET /v1/profiles/{customer_id}`, served as plain ASGI.

An agent reads the profile on every turn, and the warm answer is bytes already in Redis;
FastAPI's routing and dependency solving cost more than that Redis round trip (issue #4).
This middleware answers exactly that request (no query string, a valid id, a known key)
with the bytes and headers the FastAPI route sends, and hands anything else, including
every failure, to the app unchanged, so the route stays the one place that decides
statuses, problem+json bodies and the OpenAPI document. A fall-through repeats the work
(key lookup, read), which only error paths pay.

It sits in front of Starlette's whole stack, ServerErrorMiddleware included (see
`app.VaultApp`), so an unexpected error here is not answered here either: it falls
through, and the route meets it again and answers the 500 as for any other request.
"""

from __future__ import annotations

import re
from typing import Final

import psycopg
from starlette.types import ASGIApp, Receive, Scope, Send

from ccvault.api.auth import parse_bearer
from ccvault.api.errors import database_unavailable
from ccvault.api.observe import ROUTE_KEY
from ccvault.domain.etags import profile_etag
from ccvault.domain.models import CALLER_ID_PATTERN
from ccvault.services import Services

PREFIX: Final = "/v1/profiles/"
# The route this middleware answers for, named in the access log and metrics.
ROUTE: Final = PREFIX + "{customer_id}"
# fullmatch, not match: `$` alone would accept a trailing newline (`%0A`), which the
# route's pydantic check (Rust regex, `$` = end of text) refuses with a 422.
_CUSTOMER_ID: Final = re.compile(CALLER_ID_PATTERN)
_CONTENT_TYPE: Final = (b"content-type", b"application/json")


class FastProfileRead:
    """Serve warm `GET /v1/profiles/{customer_id}` reads without FastAPI's routing.

    In front of every middleware but the request observer, BodyLimitMiddleware included,
    which is why a request declaring a body falls through (the limit must still answer
    413 for it, as it does on the route).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            read = await self._read(scope) if scope["type"] == "http" else None
        except psycopg.OperationalError:
            # The database did not answer in time. Falling through would make the route
            # wait for it a second time; answer the route's 503 here instead.
            await database_unavailable()(scope, receive, send)
            return
        if read is None:
            await self.app(scope, receive, send)
            return
        body, version = read
        # The same messages as starlette's Response(body, media_type="application/json",
        # headers={"ETag": ...}): the route's headers first, then length and type.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"etag", profile_etag(version).encode()),
                    (b"content-length", str(len(body)).encode()),
                    _CONTENT_TYPE,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _read(self, scope: Scope) -> tuple[bytes, int] | None:
        """The profile's JSON and version when this request is the plain hot read and it
        succeeds; None to let the app answer (another request, or any error: its status
        and body are the route's business)."""
        if scope["method"] != "GET" or scope.get("query_string") != b"":
            return None
        # Starlette routes on `path` minus `root_path`, both already percent-decoded;
        # with no root_path the route sees `path` as is, and so do we.
        path: str = scope["path"]
        if scope.get("root_path") or not path.startswith(PREFIX):
            return None
        customer_id = path[len(PREFIX) :]
        if _CUSTOMER_ID.fullmatch(customer_id) is None:  # also refuses a second segment
            return None
        # The route's name in the access log and metrics, also when the read below fails
        # (routing, when it runs after a fall-through, names the request itself).
        scope[ROUTE_KEY] = ROUTE
        authorization: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:  # the first one, as Request.headers.get takes
                    authorization = value.decode("latin-1")
            elif name in (b"content-length", b"transfer-encoding"):
                return None
        key = parse_bearer(authorization)
        if key is None:
            return None
        services: Services | None = getattr(
            getattr(scope.get("app"), "state", None), "services", None
        )
        if services is None:
            return None
        try:
            caller = await services.keys.resolve(key)
            if caller is None:
                return None
            # The audit entry takes the request id from the observer's context (logs.py).
            scope.setdefault("state", {})["caller"] = caller  # as current_caller does
            return await services.profiles.get_json(caller, customer_id)
        except psycopg.OperationalError:
            raise  # the database did not answer: __call__ answers the route's 503
        except Exception:
            # NotFound (unknown id, another tenant's) and kin: the route raises it again
            # and its handler writes the problem+json. Anything unexpected: the route
            # meets it again, and ServerErrorMiddleware answers and logs the 500.
            return None
