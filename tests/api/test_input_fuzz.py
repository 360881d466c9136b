"""Generated field writes: arbitrary JSON values, value types, timestamps (any offset, any
year, any text) and metadata never answer 5xx, and every read afterwards answers 200."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccvault.domain.models import ValueType

# Text PostgreSQL cannot store, and JSON text that spells it, among ordinary text.
NASTY_TEXT = ["\x00", "\ud800", "\udfff", '{"a": "\\u0000"}', '["\\ud800"]', "[1e999]", "١٢"]
text = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(codec=None, categories=["Cs", "Cc", "Nd"]), max_size=5),
    st.sampled_from(NASTY_TEXT),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),  # NaN and infinities included
    text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


# The ends of the years every reader parses: with an offset, one step past either end.
EDGES = [
    datetime(1, 1, 1),
    datetime(1, 1, 1, 23, 59, 59),
    datetime(1, 1, 2),
    datetime(9999, 12, 30, 23, 59, 59, 999999),
    datetime(9999, 12, 31),
    datetime(9999, 12, 31, 23, 59, 59, 999999),
]


@st.composite
def timestamps(draw: st.DrawFn) -> Any:
    """Any instant (often one at the ends of the range), any offset up to +-23:59, or not a
    timestamp at all."""
    moment = draw(
        st.sampled_from(EDGES)
        | st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))
    )
    minutes = draw(st.integers(min_value=-1439, max_value=1439))
    sign = "-" if minutes < 0 else "+"
    offset = f"{sign}{abs(minutes) // 60:02}:{abs(minutes) % 60:02}"
    return draw(
        st.sampled_from(
            [
                moment.isoformat() + offset,
                moment.isoformat() + "Z",
                moment.isoformat(),
                moment.date().isoformat(),
            ]
        )
        | st.integers()
        | text
    )


# Numbers as text, in ASCII and other scripts' digits, with any exponent.
numeric_text = st.from_regex(
    r"[+-]?[0-9\u0660-\u0669\uff10-\uff19]{1,12}(\.[0-9]{0,4})?([eE][+-]?[0-9]{1,4})?",
    fullmatch=True,
)
# JSON text, often with escapes that spell NUL, lone surrogates or an infinity.
json_text = st.one_of(
    json_values.map(lambda v: json.dumps(v, ensure_ascii=True)),
    st.sampled_from(NASTY_TEXT),
    st.lists(st.sampled_from(['"\\u0000"', '"\\ud83d"', "1e400", "-1e999", "[]", "{}"])).map(
        lambda items: "[" + ",".join(items) + "]"
    ),
)
# The value and its declared type drawn together, so each normalizer sees its own edge cases.
typed_values = st.one_of(
    st.fixed_dictionaries({"value": json_values}),
    st.fixed_dictionaries(
        {"value": json_values, "value_type": st.sampled_from([t.value for t in ValueType])}
    ),
    st.fixed_dictionaries({"value": timestamps(), "value_type": st.just("datetime")}),
    st.fixed_dictionaries({"value": json_text, "value_type": st.just("json")}),
    st.fixed_dictionaries(
        {"value": numeric_text, "value_type": st.sampled_from(["number", "integer"])}
    ),
)
provenance = st.fixed_dictionaries(
    {"source": st.just("user_provided")},
    optional={
        "expires_at": timestamps(),
        "verified_at": timestamps(),
        "verified": st.booleans() | st.integers(0, 1),
        "source_metadata": st.dictionaries(text, json_values, max_size=3),
    },
)
bodies = st.builds(lambda typed, rest: {**typed, **rest}, typed_values, provenance)


@pytest.fixture
async def tenant_in_mode(
    request: pytest.FixtureRequest,
    api: httpx.AsyncClient,
    http: httpx.AsyncClient,
    admin_headers: dict[str, str],
    tenant_id: uuid.UUID,
) -> httpx.AsyncClient:
    """The test tenant in the requested validation mode, with a profile to write under."""
    resp = await http.patch(
        f"/admin/tenants/{tenant_id}",
        json={"validation_mode": request.param},
        headers=admin_headers,
    )
    assert resp.status_code == 200, resp.text
    first = {"value": "a@example.com", "source": "user_provided"}
    assert (await api.put("/v1/profiles/c1/fields/seed", json=first)).status_code == 201
    return api


@pytest.mark.parametrize("tenant_in_mode", ["warn", "strict", "disabled"], indirect=True)
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
async def test_a_generated_field_write_never_answers_5xx_and_reads_stay_200(
    tenant_in_mode: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    api = tenant_in_mode
    raw = json.dumps(body, ensure_ascii=True).encode()
    resp = await api.put(
        "/v1/profiles/c1/fields/fuzzed",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code < 500, resp.text
    assert resp.status_code in (201, 400, 422), resp.text
    for url in (
        "/v1/profiles/c1",
        "/v1/profiles/c1?include=history",
        "/v1/profiles/c1/fields/fuzzed/history",
    ):
        read = await api.get(url)
        assert read.status_code == 200, (url, read.text)
    current = await api.get("/v1/profiles/c1/fields/fuzzed")
    assert current.status_code in (200, 404), current.text  # 404: never written, or expired
    if resp.status_code == 201 and current.status_code == 200:
        assert current.json()["id"] == resp.json()["id"]
