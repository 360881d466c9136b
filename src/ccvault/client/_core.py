"""The sans-IO half of the client: what a call sends and how its answer is read, and the
retry decisions. Nothing here does I/O, so `AsyncVault` and `Vault` share all of it and
differ only in how they hand a request to httpx and how they wait between attempts."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel
from pydantic_core import to_json

from ccvault.client.errors import Unreachable, VaultError, error_for

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# Verbs whose repetition leaves the vault as one attempt would (DESIGN §8): a field PUT
# writes a version with the same value again at worst. POST never is (a second merge, a
# second asset): it is never retried.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
# Failures where the request provably never reached the application, or where its answer
# was lost on a keep-alive connection the server had just closed.
_CONNECTION_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)

Parse = Callable[[httpx.Response], T]


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request of the API and the reader of its successful answer."""

    method: str
    path: str
    parse: Parse[T]
    params: Mapping[str, Any] | None = None
    body: Any = None
    if_match: str | None = None

    def request(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """The httpx request (built by the client, so its base URL and headers apply)."""
        headers = {}
        content = None
        if self.body is not None:
            # pydantic's encoder: datetimes, UUIDs, enums and models in a body need no help.
            content = to_json(self.body)
            headers["Content-Type"] = "application/json"
        if self.if_match is not None:
            headers["If-Match"] = self.if_match
        return client.build_request(
            self.method,
            self.path,
            params=_params(self.params),
            content=content,
            headers=headers,
        )

    def answer(self, response: httpx.Response) -> T:
        """The result of a 2xx answer, else the typed error."""
        if response.is_success:
            return self.parse(response)
        raise error_for(response.status_code, response.headers, response.content)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying an idempotent request again.

    Backoff is "full jitter" (a uniform wait in [0, min(cap, base * 2**attempt)]): retries of
    many clients after one outage spread out instead of arriving together. A `Retry-After`
    from the server is honoured, but never beyond `retry_after_cap` seconds."""

    retries: int = 3
    """Further attempts after the first (0: never retry)."""
    backoff_base: float = 0.1
    """The first retry waits up to this many seconds; each later one up to twice as long."""
    backoff_cap: float = 2.0
    """No jittered wait is longer than this."""
    retry_after_cap: float = 10.0
    """The most a server's Retry-After can make the client wait."""
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def after_answer(self, call: Call[Any], attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to take this answer."""
        if (
            response.status_code not in RETRY_STATUSES
            or call.method not in IDEMPOTENT
            or attempt >= self.retries
        ):
            return None
        told = retry_after(response.headers.get("Retry-After"))
        if told is not None:
            return min(told, self.retry_after_cap)
        return self._jittered(attempt)

    def after_error(
        self, call: Call[Any], attempt: int, error: httpx.TransportError
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up."""
        if call.method not in IDEMPOTENT or attempt >= self.retries:
            return None
        # A read timed out: the request may be running still. Reading again is harmless,
        # a second write is not worth the doubt (the server is slow, not gone).
        if isinstance(error, httpx.ReadTimeout) and call.method not in ("GET", "HEAD"):
            return None
        if not isinstance(error, (*_CONNECTION_ERRORS, httpx.ReadTimeout)):
            return None
        return self._jittered(attempt)

    def _jittered(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def unreachable(call: Call[Any], error: httpx.TransportError) -> VaultError:
    """The error raised when no answer came (after the retries allowed)."""
    kind = type(error).__name__
    return Unreachable(None, f"{call.method} {call.path} got no answer", f"{kind}: {error}")


def seg(value: object) -> str:
    """One path segment: ids are the caller's own strings, so nothing in them may be read as
    a separator."""
    return quote(str(value), safe="")


def _params(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        out[key] = str(getattr(value, "value", value))
    return out or None


def body(**keys: Any) -> dict[str, Any]:
    """A request body of the keys the caller gave (None: left out, so the server's default
    applies)."""
    return {key: value for key, value in keys.items() if value is not None}


def model(kind: type[M]) -> Parse[M]:
    """Read the answer as the server's own model."""

    def parse(response: httpx.Response) -> M:
        return kind.model_validate_json(response.content)

    return parse


def items(kind: type[M]) -> Parse[list[Any]]:
    """Read an `{items: [...]}` answer as the list of the server's models."""
    from ccvault.domain.answers import ItemList

    wrapper = ItemList[kind]  # type: ignore[valid-type]

    def parse(response: httpx.Response) -> list[Any]:
        return list(wrapper.model_validate_json(response.content).items)

    return parse


def with_etag(kind: type[M]) -> Parse[tuple[M, str]]:
    """The model and the ETag header naming its version (for a later `if_match`)."""

    def parse(response: httpx.Response) -> tuple[M, str]:
        return kind.model_validate_json(response.content), response.headers.get("ETag", "")

    return parse


def nothing(response: httpx.Response) -> None:
    """A 204 (or any answer whose body says nothing)."""
    return None


def text(response: httpx.Response) -> str:
    """A text answer as it came."""
    return response.text


def jsonable(response: httpx.Response) -> Any:
    """A JSON answer as plain Python values."""
    return response.json()
