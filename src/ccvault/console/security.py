"""The console's protections: the session cookie (encrypted and signed), CSRF tokens,
the Content-Security-Policy and other headers on every answer, and the sign-in limit.

The cookie holds the key the person signed in with, encrypted with Fernet (AES-CBC plus
HMAC-SHA256, with its issue time): the key is resolved again on every request, so a
revoked key ends its console sessions as it ends API access, and nothing about a session
is kept on the server (any process of `ccv serve --workers N` can answer it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "ccv_console"
COOKIE_PATH = "/console"
# A console session lasts a working day; signing in again is one paste.
SESSION_SECONDS = 8 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

# Only our own origin, no inline script or style (htmx is told not to add its own style,
# see base.html), no framing, forms only to us.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass
class Session:
    """What the cookie carries: the key signed in with (None before sign-in), whether it
    is the admin key, and the CSRF token every state-changing request must echo."""

    key: str | None = None
    admin: bool = False
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def signed_in(self) -> bool:
        """Whether a key was accepted for this session."""
        return self.key is not None


class SessionCodec:
    """Turns sessions into cookie values and back (refusing altered or stale ones)."""

    def __init__(self, secret: str) -> None:
        # Fernet wants 32 url-safe base64 bytes; any secret is stretched to that.
        digest = hashlib.sha256(b"ccv-console-session:" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def dumps(self, session: Session) -> str:
        """The cookie value for a session."""
        body = {"k": session.key, "a": session.admin, "c": session.csrf}
        return self._fernet.encrypt(json.dumps(body).encode()).decode()

    def loads(self, value: str | None) -> Session | None:
        """The session a cookie value carries; None when absent, altered or expired."""
        if not value:
            return None
        try:
            body = json.loads(self._fernet.decrypt(value.encode(), ttl=SESSION_SECONDS))
            return Session(key=body["k"], admin=bool(body["a"]), csrf=str(body["c"]))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None


def tokens_match(sent: str | None, expected: str) -> bool:
    """Whether a CSRF token sent with a request is the session's (constant time)."""
    return sent is not None and secrets.compare_digest(sent.encode(), expected.encode())


class SignInLimiter:
    """At most `limit` sign-in attempts per client address in any `window` seconds (in
    this process: with N workers an address gets at most N times as many)."""

    def __init__(self, limit: int = 10, window: float = 60.0, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._seen: dict[str, deque[float]] = {}

    def allow(self, client: str) -> bool:
        """Count one attempt; False when the address is over its limit."""
        now = time.monotonic()
        if len(self._seen) >= self.max_clients:
            # Forget addresses whose window has passed; memory stays bounded under a flood.
            self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - self.window}
        attempts = self._seen.setdefault(client, deque())
        while attempts and attempts[0] <= now - self.window:
            attempts.popleft()
        if len(attempts) >= self.limit:
            return False
        attempts.append(now)
        return True

    def retry_after(self, client: str) -> int:
        """Seconds until the address may try again."""
        attempts = self._seen.get(client)
        if not attempts:
            return 0
        return max(1, int(attempts[0] + self.window - time.monotonic()) + 1)


class SecurityHeaders:
    """Adds the CSP and its companions to every answer of the console, errors included;
    pages (not the static files) are never stored by caches."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = "/static/" in scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name.decode()] = value.decode()
                if not static:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
