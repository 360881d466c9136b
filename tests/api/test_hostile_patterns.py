"""A tenant's `validation_regex` cannot take the server down: hostile patterns are refused
at the definition PUT (422 config_error) without the process growing, other requests keep
answering meanwhile, long values are checked in bounded work, and a pattern stored before
RE2 answers a config_error on writes instead of a 500."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from api_support import assert_problem
from ccvault.domain.patterns import PATTERNS
from ccvault.storage.db import Pool

AGENT = "agent-hostile"
CUSTOMER = "c-hostile"

HOSTILE = [
    "((((a{100}){100}){100}){100}){100}",  # grew the process to 18.9 GB before RE2
    "a{1000000}",  # blocked every request for 0.4 s
    "(?:(?:a{30}){30}){30}",
    r"\p{L}{1,200}",
    r"[\p{L}\p{N}\p{P}\p{S}]{1,100}",
    r"(\w+)\1",
    r"(?=x)(?<!y)x",
]

# Accepted, but each takes the matcher to a limit: a huge class, nested quantifiers, and
# a DFA of 2**999 states. (pattern, a long value)
# Values as long as one value may be (64 KiB as compact JSON, which escapes the CJK
# characters to six bytes each).
HARD_BUT_ACCEPTED = [
    ("[" + "".join(chr(0x4E00 + 7 * i) for i in range(900)) + "]+", "一" * 10_000 + "a"),
    ("(a+)+$", "a" * 65_000 + "!"),
    ("(x+x+)+y", "x" * 65_000),
    ("[ab]*a[ab]{999}", "ab" * 32_500),
]


def _status_kib(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{key} not in /proc/self/status")


def _reset_peak_rss() -> None:
    """Make VmHWM (the peak resident size) start again from the current size."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")


async def define(api: httpx.AsyncClient, name: str, pattern: str) -> httpx.Response:
    """PUT a string definition with the pattern."""
    doc = {"display_name": name, "value_type": "string", "validation_regex": pattern}
    return await api.put(f"/v1/agents/{AGENT}/field-definitions/{name}", json=doc)


async def write(api: httpx.AsyncClient, name: str, value: Any) -> httpx.Response:
    """PUT a value for the agent's field."""
    doc = {"value": value, "source": "user_provided", "agent_id": AGENT}
    return await api.put(f"/v1/profiles/{CUSTOMER}/fields/{name}", json=doc)


async def set_mode(
    http: httpx.AsyncClient, admin_headers: dict[str, str], tenant_id: uuid.UUID, mode: str
) -> None:
    """Switch the tenant's validation mode."""
    resp = await http.patch(
        f"/admin/tenants/{tenant_id}", json={"validation_mode": mode}, headers=admin_headers
    )
    assert resp.status_code == 200, resp.text


def config_error(resp: httpx.Response) -> str:
    """The message of the one config_error a refused definition answers."""
    body = assert_problem(resp, 422)
    [error] = body["errors"]
    assert error["code"] == "config_error"
    assert error["loc"] == ["body", "validation_regex"]
    message: str = error["msg"]
    return message


@pytest.mark.parametrize(("pattern", "value"), HARD_BUT_ACCEPTED)
async def test_hard_pattern_is_accepted_and_a_long_value_gets_an_answer(
    api: httpx.AsyncClient, pattern: str, value: str
) -> None:
    assert (await define(api, "hard", pattern)).status_code == 201
    resp = await write(api, "hard", value)
    assert resp.status_code == 201, resp.text
    assert [w["code"] for w in resp.json()["validation_warnings"]] == ["regex_error"]


@pytest.mark.parametrize("pattern", HOSTILE)
async def test_hostile_pattern_is_refused_at_put_and_nothing_is_stored(
    api: httpx.AsyncClient, pattern: str
) -> None:
    message = config_error(await define(api, "code", pattern))
    assert "b'" not in message  # RE2's bytes messages are never passed on
    assert (await api.get(f"/v1/agents/{AGENT}/field-definitions/code")).status_code == 404


async def test_pattern_over_the_length_cap_is_a_422(api: httpx.AsyncClient) -> None:
    body = assert_problem(await define(api, "code", "a" * 1001), 422)
    assert [e["loc"] for e in body["errors"]] == [["body", "validation_regex"]]
    assert (await define(api, "code", "a" * 1000)).status_code == 201


async def test_memory_stays_bounded_through_hostile_and_large_patterns(
    api: httpx.AsyncClient,
) -> None:
    before = _status_kib("VmRSS")
    _reset_peak_rss()
    for round_ in range(3):
        for i, pattern in enumerate(HOSTILE):
            assert (await define(api, f"h{i}", f"{pattern}(?:r{round_})?")).status_code == 422
    # Patterns near the budget are accepted, cached and matched: the cache's bound holds.
    for i in range(120):
        resp = await define(api, f"big{i}", rf"\pL{{1,20}}(?:-{i})?")
        assert resp.status_code == 201, resp.text
        assert (await write(api, f"big{i}", "é" * 20)).status_code == 201
    grown_mib = (_status_kib("VmHWM") - before) / 1024
    assert grown_mib < 200, f"peak RSS grew by {grown_mib:.0f} MiB"
    assert PATTERNS.bytes <= PATTERNS.max_bytes


async def test_other_requests_answer_while_hostile_puts_are_processed(
    api: httpx.AsyncClient,
) -> None:
    assert (await define(api, "ok", "[a-z]+")).status_code == 201

    async def read() -> int:
        return (await api.get(f"/v1/agents/{AGENT}/field-definitions/ok")).status_code

    hostile = [define(api, f"h{i}", rf"\p{{L}}{{1,{150 + i}}}") for i in range(20)]
    results = await asyncio.gather(*hostile, *(read() for _ in range(20)))
    puts, reads = results[:20], results[20:]
    assert all(isinstance(r, httpx.Response) and r.status_code == 422 for r in puts)
    assert reads == [200] * 20


async def test_first_use_of_an_uncached_pattern_in_a_write_validates(
    api: httpx.AsyncClient,
) -> None:
    assert (await define(api, "ref", r"[A-Z]{2}\d{3}")).status_code == 201
    PATTERNS.clear()  # as after a restart: the write compiles it (on a worker thread)
    resp = await write(api, "ref", "AB123")
    assert resp.status_code == 201, resp.text
    assert resp.json()["validation_warnings"] == []
    resp = await write(api, "ref", "AB1234")
    assert [w["code"] for w in resp.json()["validation_warnings"]] == ["regex_error"]


async def test_long_values_are_checked_in_bounded_work(
    api: httpx.AsyncClient, http: httpx.AsyncClient, admin_headers: dict[str, str], tenant_id: Any
) -> None:
    await set_mode(http, admin_headers, tenant_id, "strict")
    assert (await define(api, "nested", "(a+)+$")).status_code == 201
    body = assert_problem(await write(api, "nested", "a" * 65_000 + "!"), 422)
    assert [e["code"] for e in body["errors"]] == ["regex_error"]
    assert (await write(api, "nested", "a" * 65_000)).status_code == 201

    # No DFA fits this pattern: a long value is refused before matching, in our words.
    assert (await define(api, "states", "[ab]*a[ab]{999}")).status_code == 201
    body = assert_problem(await write(api, "states", "a" * 60_000), 422)
    [error] = body["errors"]
    assert error["code"] == "regex_error"
    assert "too long" in error["msg"]
    assert (await write(api, "states", "a" * 1000)).status_code == 201


async def _store_pattern_as_before_re2(pool: Pool, tenant_id: Any, name: str, pattern: str) -> None:
    """What a definition saved by the old `regex`-module code may hold."""
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE profile_field_definitions SET validation_regex = %s"
            " WHERE tenant_id = %s AND agent_id = %s AND name = %s",
            (pattern, tenant_id, AGENT, name),
        )


async def test_pattern_stored_before_re2_is_a_config_error_on_writes_not_a_500(
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: Any,
    pool: Pool,
) -> None:
    assert (await define(api, "pair", "[a-z]{2}")).status_code == 201
    await _store_pattern_as_before_re2(pool, tenant_id, "pair", r"(\w)\1")

    warned = await write(api, "pair", "aa")
    assert warned.status_code == 201, warned.text
    [warning] = warned.json()["validation_warnings"]
    assert warning["code"] == "config_error"
    assert "backreferences" in warning["msg"]

    await set_mode(http, admin_headers, tenant_id, "strict")
    body = assert_problem(await write(api, "pair", "bb"), 422)
    assert [e["code"] for e in body["errors"]] == ["config_error"]

    await set_mode(http, admin_headers, tenant_id, "disabled")
    assert (await write(api, "pair", "cc")).status_code == 201

    # The definition still reads, and a PUT with an RE2 pattern repairs it.
    got = await api.get(f"/v1/agents/{AGENT}/field-definitions/pair")
    assert got.json()["validation_regex"] == r"(\w)\1"
    assert (await define(api, "pair", r"([a-z])[a-z]")).status_code == 200
