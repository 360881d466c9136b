"""Retries (DESIGN §8): GET, PUT and DELETE are tried again on connection errors and
502/503/504, with capped, jittered backoff and Retry-After honoured up to a cap; a POST
never is. Through a real proxy that answers 503 twice, then passes."""

from __future__ import annotations

import random

import httpx
import pytest
from flaky_proxy import flaky_proxy

from ccvault.client import AsyncVault, RetryPolicy, ServerError, Unreachable, Vault
from ccvault.client._core import Call, nothing

FAST = RetryPolicy(retries=3, backoff_base=0.01, backoff_cap=0.05, retry_after_cap=0.05)


def test_a_get_is_retried_through_two_503s_and_succeeds(live: str, key: str) -> None:
    with Vault(live, key) as direct:
        direct.fields.put("r1", "name", value="Ada", source="user_provided")
    with flaky_proxy(live, failures=2) as (url, proxy), Vault(url, key, retry_policy=FAST) as vault:
        assert vault.fields.get("r1", "name").value == "Ada"
    assert proxy.seen == [("GET", "/v1/profiles/r1/fields/name")] * 3


async def test_an_async_get_and_put_are_retried_too(live: str, key: str) -> None:
    with flaky_proxy(live, failures=2) as (url, proxy):
        async with AsyncVault(url, key, retry_policy=FAST) as vault:
            written = await vault.fields.put("r2", "name", value="Ada", source="user_provided")
    assert written.value == "Ada"
    assert [m for m, _ in proxy.seen] == ["PUT"] * 3


def test_a_post_is_never_retried(live: str, key: str) -> None:
    with flaky_proxy(live, failures=2) as (url, proxy), Vault(url, key, retry_policy=FAST) as vault:
        with pytest.raises(ServerError) as failed:
            vault.profiles.create(customer_id="r3")
        assert failed.value.status == 503
        assert proxy.seen == [("POST", "/v1/profiles")]
        # The proxy has one failure left: a GET retries through it, then the POST passes.
        assert vault.profiles.list().items == []
        assert vault.profiles.create(customer_id="r3").customer_id == "r3"
    assert [m for m, _ in proxy.seen] == ["POST", "GET", "GET", "POST"]


async def test_an_async_post_is_never_retried(live: str, key: str) -> None:
    with flaky_proxy(live, failures=1) as (url, proxy):
        async with AsyncVault(url, key, retry_policy=FAST) as vault:
            with pytest.raises(ServerError):
                await vault.profiles.merge("r4", source_customer_id="r5")
    assert len(proxy.seen) == 1


def test_retries_run_out_and_the_last_answer_is_raised(live: str, key: str) -> None:
    policy = RetryPolicy(retries=2, backoff_base=0.01, backoff_cap=0.02)
    with (
        flaky_proxy(live, failures=100, retry_after=None) as (url, proxy),
        Vault(url, key, retry_policy=policy) as vault,
        pytest.raises(ServerError),
    ):
        vault.fields.delete("r6", "name")
    assert len(proxy.seen) == 3


def test_retries_zero_tries_once(live: str, key: str) -> None:
    with (
        flaky_proxy(live, failures=1) as (url, proxy),
        Vault(url, key, retries=0) as vault,
        pytest.raises(ServerError),
    ):
        vault.profiles.get("r7")
    assert len(proxy.seen) == 1


class Refusing(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A network where nothing answers: every attempt fails to connect."""

    def __init__(self) -> None:
        self.attempts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        raise httpx.ConnectError("connection refused", request=request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self.handle_request(request)


def test_connection_errors_retry_idempotent_calls_then_raise_unreachable() -> None:
    network = Refusing()
    with Vault("http://vault", "k", retry_policy=FAST, transport=network) as vault:
        with pytest.raises(Unreachable) as failed:
            vault.profiles.get("c1")
        assert failed.value.status is None
        assert isinstance(failed.value.__cause__, httpx.ConnectError)
        assert network.attempts == 4
        with pytest.raises(Unreachable):
            vault.profiles.create(customer_id="c1")
        assert network.attempts == 5


async def test_an_unreachable_vault_is_unreachable_for_the_async_client_too() -> None:
    network = Refusing()
    async with AsyncVault("http://vault", "k", retry_policy=FAST, transport=network) as vault:
        with pytest.raises(Unreachable):
            await vault.fields.delete("c1", "name")
    assert network.attempts == 4


def answer(status: int, **headers: str) -> httpx.Response:
    """An answer as httpx hands it over."""
    return httpx.Response(status, headers=headers)


GET: Call[None] = Call("GET", "/x", nothing)
POST: Call[None] = Call("POST", "/x", nothing)


def test_backoff_is_jittered_below_a_capped_exponential() -> None:
    policy = RetryPolicy(retries=10, backoff_base=0.1, backoff_cap=1.0, rng=random.Random(7))
    waits = [policy.after_answer(GET, attempt, answer(503)) for attempt in range(10)]
    for attempt, wait in enumerate(waits):
        assert wait is not None
        assert 0 <= wait <= min(1.0, 0.1 * 2**attempt)
    assert len(set(waits)) == len(waits)  # jittered, not a fixed schedule


def test_retry_after_is_honoured_up_to_its_cap() -> None:
    policy = RetryPolicy(retry_after_cap=10.0)
    assert policy.after_answer(GET, 0, answer(503, **{"Retry-After": "3"})) == 3.0
    assert policy.after_answer(GET, 0, answer(503, **{"Retry-After": "3600"})) == 10.0
    dated = answer(503, **{"Retry-After": "Fri, 31 Dec 1999 23:59:59 GMT"})
    assert policy.after_answer(GET, 0, dated) == 0.0


def test_only_502_503_504_of_idempotent_calls_are_retried() -> None:
    policy = RetryPolicy()
    for status in (502, 503, 504):
        assert policy.after_answer(GET, 0, answer(status)) is not None
        assert policy.after_answer(POST, 0, answer(status)) is None
    for status in (200, 404, 409, 422, 500):
        assert policy.after_answer(GET, 0, answer(status)) is None
    assert policy.after_answer(GET, 3, answer(503)) is None  # retries=3 are used up
    timeout = httpx.ReadTimeout("slow")
    assert policy.after_error(GET, 0, timeout) is not None
    assert policy.after_error(Call("PUT", "/x", nothing), 0, timeout) is None
